/**
 * The `mq` command: a thin layer over the library in `mod.ts`.
 *
 * @module
 */
import { Command, CommanderError } from "commander";
import { MqError } from "../core/errors.ts";
import { redactUrl } from "../core/backend_url.ts";
import { EXIT_FAILURE, EXIT_USAGE, exitCodeOf } from "./exit_codes.ts";
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
import { note } from "./runtime.ts";
import { VERSION } from "./version.ts";

const EXAMPLES = `
Examples:
  seq 3 | mq pub demo            publish three messages (one per line)
  mq sub demo -e                 print them and exit
  mq topics                      list topics
  MQ_URL=file:./data mq pub t x  use another backend

Backends: file:<dir> (default: file:$MQ_HOME), memory:
Exit codes: 0 ok, 1 failure, 2 usage or invalid input, 3 nothing arrived in time.`;

/** Builds the command tree. */
export function buildProgram(): Command {
  const program = new Command("mq")
    .description(
      "Message queues from the shell: publish lines into topics, read them back, share work.",
    )
    .version(VERSION, "-V, --version", "print the version")
    .option("--url <url>", "backend URL (overrides MQ_URL and contexts)")
    .option("--context <name>", "use a named backend URL (see MQ_CONTEXT)")
    .option("-q, --quiet", "no summaries or progress on stderr")
    .option("--no-color", "no colour")
    .showSuggestionAfterError(true)
    .addHelpText("after", EXAMPLES);
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
  registerContext(program);
  registerCompletions(program);
  registerInfo(program);
  program.command("help [command]").description("show help for a command").action(
    (name?: string) => {
      const target = name ? program.commands.find((c) => c.name() === name) : program;
      if (!target) {
        throw new MqError(
          "INVALID_ARGUMENT",
          `unknown command ${JSON.stringify(name)}: see mq --help`,
        );
      }
      target.outputHelp();
    },
  );
  program.addHelpCommand(false);
  applyErrorHandling(program);
  return program;
}

function applyErrorHandling(cmd: Command): void {
  cmd.exitOverride();
  cmd.configureOutput({
    writeErr: (s) => Deno.stderr.writeSync(new TextEncoder().encode(s)),
    outputError: (s, write) => write(`mq: ${s.trim().replace(/\s*\n\s*/g, " ")}\n`),
  });
  for (const sub of cmd.commands) applyErrorHandling(sub);
}

/** Runs mq with `args`; resolves to the exit code. */
export async function main(args: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(args, { from: "user" });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (
        e.code === "commander.helpDisplayed" || e.code === "commander.version" ||
        e.code === "commander.help"
      ) return 0;
      return e.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    if (e instanceof MqError) {
      note(`mq: error: ${redactSecrets(e.message)}`);
      return exitCodeOf(e.code);
    }
    if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable) {
      note(`mq: error: ${(e as Error).message}`);
      return EXIT_FAILURE;
    }
    note(`mq: error: ${(e as Error)?.message ?? String(e)}`);
    if (Deno.env.get("MQ_DEBUG")) console.error(e);
    return EXIT_FAILURE;
  }
}

function redactSecrets(text: string): string {
  return text.replace(/[a-z][a-z0-9+.-]*:\/\/[^\s"']+/gi, (u) => redactUrl(u));
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
