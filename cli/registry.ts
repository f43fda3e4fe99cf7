/**
 * Every command of `mq`, in the order `mq --help` lists them, and the global
 * options. Adding a command: its definition file in `definitions/` (which
 * exports it as `command`) and one line in {@link COMMANDS}. A definition is
 * loaded only when its command runs (or for help and completions, which
 * load them all), so that `mq pub` reads one definition, not every one.
 *
 * @module
 */
import { type CommandDefinition, load, type OptionDefinition } from "./definition.ts";
import type { Program } from "./parse.ts";

/** Each command's name and definition file, in the order of `mq --help`. */
export const COMMANDS: readonly (readonly [name: string, file: string])[] = [
  ["pub", "./definitions/pub.ts"],
  ["sub", "./definitions/sub.ts"],
  ["work", "./definitions/work.ts"],
  ["take", "./definitions/take.ts"],
  ["ack", "./definitions/ack.ts"],
  ["nack", "./definitions/nack.ts"],
  ["peek", "./definitions/peek.ts"],
  ["cancel", "./definitions/cancel.ts"],
  ["topics", "./definitions/topics.ts"],
  ["groups", "./definitions/groups.ts"],
  ["dlq", "./definitions/dlq.ts"],
  ["exchange", "./definitions/exchange.ts"],
  ["bind", "./definitions/bind.ts"],
  ["unbind", "./definitions/unbind.ts"],
  ["request", "./definitions/request.ts"],
  ["reply", "./definitions/reply.ts"],
  ["bridge", "./definitions/bridge.ts"],
  ["bench", "./definitions/bench.ts"],
  ["ui", "./definitions/ui.ts"],
  ["top", "./definitions/top.ts"],
  ["metrics", "./definitions/metrics.ts"],
  ["doctor", "./definitions/doctor.ts"],
  ["context", "./definitions/context.ts"],
  ["completions", "./definitions/completions.ts"],
  ["info", "./definitions/info.ts"],
  ["help", "./definitions/help.ts"],
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

/** The definition of one command. */
async function definitionOf(file: string): Promise<CommandDefinition> {
  return (await load<{ command: CommandDefinition }>(import.meta.url, file)).command;
}

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
    commands: await Promise.all(wanted.map(([, file]) => definitionOf(file))),
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
