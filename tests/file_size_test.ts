/**
 * The core and the adapters stay split by job (issue 12): no source file
 * under `core/` or `adapters/` is over 500 lines.
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

/** The source files under `dir` over {@link MAX_LINES}, as `path: lines`, and how many there are. */
async function oversized(dir: string): Promise<{ files: number; over: Map<string, number> }> {
  const over = new Map<string, number>();
  let files = 0;
  for await (const f of sources(new URL(dir, root))) {
    files++;
    const lines = (await Deno.readTextFile(f)).split("\n").length - 1;
    if (lines > MAX_LINES) over.set(f.pathname.slice(root.pathname.length), lines);
  }
  return { files, over };
}

Deno.test(`no source file under adapters/ is over ${MAX_LINES} lines`, async () => {
  const { files, over } = await oversized("adapters/");
  eq(files > 10, true, "the adapters were found");
  eq([...over].map(([f, n]) => `${f}: ${n}`), []);
});

Deno.test(`no source file under core/ is over ${MAX_LINES} lines`, async () => {
  const { files, over } = await oversized("core/");
  eq(files > 30, true, "the core was found");
  eq([...over].map(([f, n]) => `${f}: ${n}`), []);
});
