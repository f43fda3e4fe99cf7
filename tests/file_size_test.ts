/**
 * Adapters stay split by job (issue 12): no source file under `adapters/` is
 * over 500 lines. (`core/` joins once `core/client.ts` is a facade.)
 */
import { deepStrictEqual as eq } from "node:assert/strict";

const MAX_LINES = 500;
const root = new URL("../", import.meta.url);

async function* sources(dir: URL): AsyncGenerator<URL> {
  for await (const e of Deno.readDir(dir)) {
    if (e.isDirectory) yield* sources(new URL(`${e.name}/`, dir));
    else if (e.name.endsWith(".ts") && !e.name.endsWith("_test.ts")) yield new URL(e.name, dir);
  }
}

Deno.test(`no source file under adapters/ is over ${MAX_LINES} lines`, async () => {
  const over: string[] = [];
  let files = 0;
  for await (const f of sources(new URL("adapters/", root))) {
    files++;
    const lines = (await Deno.readTextFile(f)).split("\n").length - 1;
    if (lines > MAX_LINES) over.push(`${f.pathname.slice(root.pathname.length)}: ${lines}`);
  }
  eq(files > 10, true, "the adapters were found");
  eq(over, []);
});
