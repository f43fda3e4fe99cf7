/**
 * The `mq` command: a thin layer over the library in `mod.ts`.
 *
 * Every command is one definition (`definition.ts`, listed in
 * `registry.ts`); the parser (`parse.ts`) finds the command a command line
 * names and its values, and only then is the command's own code imported, so
 * that `mq pub t x` loads what publishing needs and nothing else. Help comes
 * from the same definitions (`help.ts`). `deno task mq` and the installed
 * `mq` run this file.
 *
 * @module
 */
import { parse } from "./parse.ts";
import { commandNamed, loadProgram } from "./registry.ts";
import { reportError } from "./exit_codes.ts";
import { load } from "./definition.ts";
import type * as Help from "./help.ts";
import type * as Complete from "./complete.ts";
import { VERSION } from "./version.ts";

/**
 * The folder relative paths are relative to: the caller's. `deno task mq`
 * runs in the checkout's folder and says where it was called from in
 * `INIT_CWD`; only then (the process in the checkout's folder) is it used, so
 * that a stale `INIT_CWD` inherited from elsewhere changes nothing.
 */
export function callerFolder(
  cwd: string,
  initCwd: string | undefined,
  checkout: string = new URL("..", import.meta.url).pathname,
): string {
  const strip = (p: string) => p.replace(/\/+$/, "") || "/";
  if (!initCwd || strip(cwd) !== strip(checkout)) return cwd;
  return initCwd;
}

/** Runs mq with `args`; resolves to the exit code. */
export async function main(args: readonly string[]): Promise<number> {
  try {
    // Relative paths (file:./data, kv:./x.sqlite, mq work -- ./handle.sh, the
    // mq.json lookup) resolve against the caller's folder.
    const folder = callerFolder(Deno.cwd(), Deno.env.get("INIT_CWD"));
    if (folder !== Deno.cwd()) Deno.chdir(folder);
    if (args[0] === "__complete") {
      const { runComplete } = await load<typeof Complete>(import.meta.url, "./complete.ts");
      await runComplete(await loadProgram(), args.slice(1));
      return 0;
    }
    // Only the definition of the command named is loaded (every one for
    // `mq --help` and mistakes, which list or suggest them).
    const name = commandNamed(args);
    const program = await loadProgram(name === undefined ? undefined : [name]);
    const parsed = parse(program, args);
    if (parsed.kind === "version") {
      await write(`${VERSION}\n`);
      return 0;
    }
    if (parsed.kind === "help") {
      const { helpText } = await load<typeof Help>(import.meta.url, "./help.ts");
      await write(helpText(program, parsed.path));
      return 0;
    }
    await parsed.command.run!(parsed.call);
    return 0;
  } catch (e) {
    // Reported at once: an awaited import here would let a failing socket's
    // error (a refused NATS connection) surface as a second stderr line.
    return reportError(e, args);
  }
}

async function write(text: string): Promise<void> {
  const bytes = new TextEncoder().encode(text);
  let n = 0;
  while (n < bytes.length) n += await Deno.stdout.write(bytes.subarray(n));
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
