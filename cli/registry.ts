/**
 * Every command of `mq`, in the order `mq --help` lists them, and the global
 * options. Adding a command: its definition file in `definitions/` (which
 * exports it as `command`) and one line in {@link COMMANDS}. A definition is
 * evaluated only when its command runs (or for help and completions, which
 * load them all), so that `mq pub` reads one definition, not every one.
 *
 * @module
 */
import type { CommandDefinition, OptionDefinition } from "./definition.ts";
import type { Program } from "./parse.ts";

/**
 * Each command's name and the import of its definition, in the order of `mq
 * --help`. The imports are literal: Deno reads these small files when `mq`
 * starts (not evaluating them), so that loading one is a module already in
 * the graph, not a new graph of its own (which a computed specifier costs,
 * about 1 ms a command, and 26 of them for `mq --help`).
 */
export const COMMANDS: readonly (readonly [
  name: string,
  definition: () => Promise<{ command: CommandDefinition }>,
])[] = [
  ["pub", () => import("./definitions/pub.ts")],
  ["sub", () => import("./definitions/sub.ts")],
  ["work", () => import("./definitions/work.ts")],
  ["take", () => import("./definitions/take.ts")],
  ["ack", () => import("./definitions/ack.ts")],
  ["nack", () => import("./definitions/nack.ts")],
  ["peek", () => import("./definitions/peek.ts")],
  ["cancel", () => import("./definitions/cancel.ts")],
  ["topics", () => import("./definitions/topics.ts")],
  ["groups", () => import("./definitions/groups.ts")],
  ["dlq", () => import("./definitions/dlq.ts")],
  ["exchange", () => import("./definitions/exchange.ts")],
  ["bind", () => import("./definitions/bind.ts")],
  ["unbind", () => import("./definitions/unbind.ts")],
  ["request", () => import("./definitions/request.ts")],
  ["reply", () => import("./definitions/reply.ts")],
  ["bridge", () => import("./definitions/bridge.ts")],
  ["bench", () => import("./definitions/bench.ts")],
  ["ui", () => import("./definitions/ui.ts")],
  ["top", () => import("./definitions/top.ts")],
  ["metrics", () => import("./definitions/metrics.ts")],
  ["doctor", () => import("./definitions/doctor.ts")],
  ["context", () => import("./definitions/context.ts")],
  ["completions", () => import("./definitions/completions.ts")],
  ["info", () => import("./definitions/info.ts")],
  ["help", () => import("./definitions/help.ts")],
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

/** The examples of `mq --help`. */
const EXAMPLES: Program["examples"] = [
  ["seq 3 | mq pub demo", "publish three messages (one per line)"],
  ["mq sub demo -e", "print them and exit"],
  ["mq topics", "list topics"],
  ["MQ_URL=file:./data mq pub t x", "use another backend"],
  ["mq help topics create", "help for a subcommand"],
];

const NOTES = `
Backends: file:<dir> (default: file:$MQ_HOME), kv:<path>, nats://host:port, memory:
Backend resolution: --url, MQ_URL, --context / MQ_CONTEXT, MQ_ENV (mq.json), the
current context (mq context use), file:$MQ_HOME.
Exit codes: 0 ok, 1 failure, 2 usage or invalid input, 3 nothing arrived in time.`;

/**
 * `mq` itself with the commands `names` (default: every one), their
 * definitions loaded.
 *
 * @example
 * ```ts
 * import { loadProgram } from "./registry.ts";
 * const program = await loadProgram();
 * program.commands.map((c) => c.name); // ["pub", "sub", ...]
 * ```
 */
export async function loadProgram(names?: readonly string[]): Promise<Program> {
  const wanted = names ? COMMANDS.filter(([n]) => names.includes(n)) : COMMANDS;
  return {
    commands: await Promise.all(wanted.map(async ([, definition]) => (await definition()).command)),
    globals: GLOBAL_OPTIONS,
    examples: EXAMPLES,
    notes: NOTES,
  };
}

/**
 * The command `args` name: the first word that is neither an option nor the
 * value of a global option; undefined when there is none or it is no command.
 */
export function commandNamed(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") return undefined;
    if (a.startsWith("-") && a.length > 1) {
      const opt = GLOBAL_OPTIONS.find((o) =>
        a === `--${o.long}` || (o.short !== undefined && a === `-${o.short}`)
      );
      if (opt?.value !== undefined) i++;
      continue;
    }
    return COMMANDS.some(([n]) => n === a) ? a : undefined;
  }
  return undefined;
}
