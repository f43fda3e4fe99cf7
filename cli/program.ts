/**
 * The whole `mq` command tree (commander), for help, completions and every
 * command the fast path (`fast_path.ts`) leaves to it.
 *
 * @module
 */
import { Command, type Command as CommandType, CommanderError } from "commander";
import { MqError } from "../core/errors.ts";
import { EXIT_USAGE, reportError } from "./exit_codes.ts";
import { colorOnStderr, noColorFlag, paint } from "./output.ts";
import { GLOBAL_OPTIONS } from "./runtime.ts";
import { registerPub } from "./commands/pub.ts";
import { registerSub } from "./commands/sub.ts";
import { registerTopics } from "./commands/topics.ts";
import { registerInfo } from "./commands/info.ts";
import { registerWork } from "./commands/work.ts";
import { registerTake } from "./commands/take.ts";
import { registerPeek } from "./commands/peek.ts";
import { registerDlq } from "./commands/dlq.ts";
import { registerGroups } from "./commands/groups.ts";
import { registerExchange } from "./commands/exchange.ts";
import { registerRequest } from "./commands/request.ts";
import { registerBridge } from "./commands/bridge.ts";
import { registerContext } from "./commands/context.ts";
import { registerCompletions } from "./commands/completions.ts";
import { registerBench } from "./commands/bench.ts";
import { registerMetrics } from "./commands/metrics.ts";
import { registerTop } from "./commands/top.ts";
import { registerUi } from "./commands/ui.ts";
import { VERSION } from "./version.ts";

const EXAMPLES = `
Examples:
  seq 3 | mq pub demo            publish three messages (one per line)
  mq sub demo -e                 print them and exit
  mq topics                      list topics
  MQ_URL=file:./data mq pub t x  use another backend
  mq help topics create          help for a subcommand

Backends: file:<dir> (default: file:$MQ_HOME), kv:<path>, nats://host:port, memory:
Backend resolution: --url, MQ_URL, --context / MQ_CONTEXT, MQ_ENV (mq.json), the
current context (mq context use), file:$MQ_HOME.
Exit codes: 0 ok, 1 failure, 2 usage or invalid input, 3 nothing arrived in time.`;

const HELP_EXAMPLES = `
Examples:
  mq help pub                    same as mq pub --help
  mq help topics create          help for a subcommand`;

/** Builds the command tree. */
export function buildProgram(): Command {
  const program = new Command("mq")
    .description(
      "Message queues from the shell: publish lines into topics, read them back, share work.",
    )
    .version(VERSION, "-V, --version", "print the version");
  for (const [flags, help] of GLOBAL_OPTIONS) program.option(flags, help);
  program.showSuggestionAfterError(true).addHelpText("after", EXAMPLES);
  registerPub(program);
  registerSub(program);
  registerWork(program);
  registerTake(program);
  registerPeek(program);
  registerTopics(program);
  registerGroups(program);
  registerDlq(program);
  registerExchange(program);
  registerRequest(program);
  registerBridge(program);
  registerBench(program);
  registerUi(program);
  registerTop(program);
  registerMetrics(program);
  registerContext(program);
  registerCompletions(program);
  registerInfo(program);
  program.command("help")
    .summary("show help for a command or subcommand")
    .description("Show help for a command or subcommand.")
    .argument("[command...]", "a command and its subcommand, e.g. topics create")
    .addHelpText("after", HELP_EXAMPLES)
    .action((path: string[]) => {
      commandAt(program, path).outputHelp();
    });
  program.addHelpCommand(false);
  for (const c of program.commands) guardSubcommandTypos(c);
  applyErrorHandling(program);
  return program;
}

/** The command a path of names leads to; an unknown name is an error with a suggestion. */
export function commandAt(program: Command, path: readonly string[]): Command {
  let at = program;
  for (const name of path) {
    const next = at.commands.find((c) => c.name() === name || c.aliases().includes(name));
    if (!next) {
      const where = at === program ? "mq" : `mq ${pathOf(at)}`;
      const close = closest(name, at.commands.map((c) => c.name()));
      throw new MqError(
        "INVALID_ARGUMENT",
        `unknown command ${JSON.stringify(name)} for ${where}${
          close ? ` (did you mean ${close}?)` : ""
        }; see ${where} --help`,
      );
    }
    at = next;
  }
  return at;
}

function pathOf(cmd: CommandType): string {
  const names: string[] = [];
  for (let c: CommandType | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(" ");
}

/**
 * The candidate within edit distance 2 of `word` (at most a third of its
 * length), nearest first.
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined, bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestDistance && d <= Math.max(1, Math.min(2, Math.floor(c.length / 3)))) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

/** Damerau-Levenshtein distance (adjacent transpositions count once). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/**
 * A command with subcommands and an action of its own (`mq topics` lists,
 * `mq groups <topic>` shows groups): a mistyped subcommand would otherwise be
 * taken as its arguments ("too many arguments"); name the close match instead.
 */
function guardSubcommandTypos(cmd: Command): void {
  for (const sub of cmd.commands) guardSubcommandTypos(sub);
  const hasAction = (cmd as unknown as { _actionHandler?: unknown })._actionHandler;
  const specs = cmd.registeredArguments;
  if (cmd.commands.length === 0 || !hasAction || specs.at(-1)?.variadic) return;
  cmd.allowExcessArguments(true);
  cmd.hook("preAction", (_hooked, actionCommand) => {
    if (actionCommand !== cmd || cmd.args.length <= specs.length) return;
    const close = closest(cmd.args[0], cmd.commands.map((c) => c.name()));
    if (close) {
      cmd.error(
        `error: unknown command '${cmd.args[0]}' for 'mq ${pathOf(cmd)}' (Did you mean ${close}?)`,
        { code: "commander.unknownCommand", exitCode: EXIT_USAGE },
      );
    }
    const n = specs.length;
    cmd.error(
      `error: too many arguments for '${cmd.name()}'. Expected ${n} argument${
        n === 1 ? "" : "s"
      } but got ${cmd.args.length}.`,
      { code: "commander.excessArguments", exitCode: EXIT_USAGE },
    );
  });
}

function applyErrorHandling(cmd: Command, color = false): void {
  cmd.exitOverride();
  cmd.configureOutput({
    writeErr: (s) => Deno.stderr.writeSync(new TextEncoder().encode(s)),
    outputError: (s, write) => {
      const line = s.trim().replace(/\s*\n\s*/g, " ").replace(/^error:/, "")
        .trimStart();
      write(`mq: ${paint(color, "31", "error")}: ${line}\n`);
    },
  });
  for (const sub of cmd.commands) applyErrorHandling(sub, color);
}

/** Runs mq with `args` on the whole command tree; resolves to the exit code. */
export async function runProgram(args: readonly string[]): Promise<number> {
  const program = buildProgram();
  if (colorOnStderr(!noColorFlag(args))) applyErrorHandling(program, true);
  try {
    await program.parseAsync([...args], { from: "user" });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (
        e.code === "commander.helpDisplayed" || e.code === "commander.version" ||
        e.code === "commander.help"
      ) return 0;
      return e.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    return reportError(e, args);
  }
}
