/**
 * The `mq` command: a thin layer over the library in `mod.ts`.
 *
 * Start-up matters in shell loops, so this entry loads little: the commands
 * used in loops (`pub`, `sub`, `take`, `ack`, ...) run through the fast path
 * (`fast_path.ts`), which imports only that command's module; help, errors and
 * every other command load the whole command tree (commander) from
 * `program.ts`. Both are imported with a computed specifier, so that Deno
 * does not read them before it starts (see `importLazily`). `deno task mq`
 * and the installed `mq` run the same code bundled (`cli/mq.js`, see
 * `bundle_entry.ts`).
 *
 * @module
 */
import { runMq } from "./fast_path.ts";

/** Runs mq with `args`; resolves to the exit code. */
export function main(args: readonly string[]): Promise<number> {
  return runMq(args);
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
