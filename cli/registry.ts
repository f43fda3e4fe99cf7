/**
 * Every command of `mq`, in the order `mq --help` lists them, and the global
 * options. Adding a command: its definition file in `definitions/` and one
 * line in {@link COMMANDS}.
 *
 * @module
 */
import type { CommandDefinition, OptionDefinition } from "./definition.ts";
import type { Program } from "./parse.ts";
import { pub } from "./definitions/pub.ts";
import { sub } from "./definitions/sub.ts";
import { work } from "./definitions/work.ts";
import { ack, nack, take } from "./definitions/take.ts";
import { cancel, peek } from "./definitions/peek.ts";
import { topics } from "./definitions/topics.ts";
import { groups } from "./definitions/groups.ts";
import { dlq } from "./definitions/dlq.ts";
import { bind, exchange, unbind } from "./definitions/exchange.ts";
import { reply, request } from "./definitions/request.ts";
import { bridge } from "./definitions/bridge.ts";
import { bench } from "./definitions/bench.ts";
import { context } from "./definitions/context.ts";
import { completions } from "./definitions/completions.ts";
import { info } from "./definitions/info.ts";
import { help } from "./definitions/help.ts";

/** The commands, in the order of `mq --help`. */
export const COMMANDS: readonly CommandDefinition[] = [
  pub,
  sub,
  work,
  take,
  ack,
  nack,
  peek,
  cancel,
  topics,
  groups,
  dlq,
  exchange,
  bind,
  unbind,
  request,
  reply,
  bridge,
  bench,
  context,
  completions,
  info,
  help,
];

/** Options every command takes. */
export const GLOBAL_OPTIONS: readonly OptionDefinition[] = [
  {
    long: "url",
    value: "url",
    help: "backend URL (overrides MQ_URL, contexts and MQ_ENV)",
  },
  {
    long: "context",
    value: "name",
    help: "use a named backend URL (see MQ_CONTEXT and mq context)",
    complete: "context",
  },
  { long: "quiet", short: "q", help: "no summaries or progress on stderr" },
  { long: "no-color", help: "no colour (also NO_COLOR=1)" },
];

/** `mq` itself: its commands, global options and the examples of `mq --help`. */
export const PROGRAM: Program = {
  commands: COMMANDS,
  globals: GLOBAL_OPTIONS,
  examples: [
    ["seq 3 | mq pub demo", "publish three messages (one per line)"],
    ["mq sub demo -e", "print them and exit"],
    ["mq topics", "list topics"],
    ["MQ_URL=file:./data mq pub t x", "use another backend"],
    ["mq help topics create", "help for a subcommand"],
  ],
  notes: `
Backends: file:<dir> (default: file:$MQ_HOME), kv:<path>, nats://host:port, memory:
Backend resolution: --url, MQ_URL, --context / MQ_CONTEXT, MQ_ENV (mq.json), the
current context (mq context use), file:$MQ_HOME.
Exit codes: 0 ok, 1 failure, 2 usage or invalid input, 3 nothing arrived in time.`,
};
