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
import { PROGRAM } from "./registry.ts";
import { reportError } from "./exit_codes.ts";
import { load } from "./definition.ts";
import type * as Help from "./help.ts";
import type * as FastPath from "./fast_path.ts";
import { VERSION } from "./version.ts";

/** Runs mq with `args`; resolves to the exit code. */
export async function main(args: readonly string[]): Promise<number> {
  try {
    // Commands not moved to definitions yet run on the old command tree.
    const first = args.find((a, i) =>
      !a.startsWith("-") && args[i - 1] !== "--url" && args[i - 1] !== "--context"
    );
    if (first !== undefined && !PROGRAM.commands.some((c) => c.name === first)) {
      const { runMq } = await load<typeof FastPath>(import.meta.url, "./fast_path.ts");
      return await runMq(args);
    }
    const parsed = parse(PROGRAM, args);
    if (parsed.kind === "version") {
      await write(`${VERSION}\n`);
      return 0;
    }
    if (parsed.kind === "help") {
      const { helpText } = await load<typeof Help>(import.meta.url, "./help.ts");
      await write(helpText(PROGRAM, parsed.path));
      return 0;
    }
    await parsed.command.run!(parsed.call);
    return 0;
  } catch (e) {
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
