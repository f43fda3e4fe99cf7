/**
 * The examples of the library's entry points are run by `deno task test:doc`
 * (in `.ci/run`); this keeps that honest: the task covers every entry point,
 * and at most three of their examples are marked `ignore` (those that need
 * something a test cannot have, such as a NATS server on its default port).
 */
import { deepStrictEqual as eq } from "node:assert/strict";

const root = new URL("../", import.meta.url);
const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)));

/** The entry points: the export subpaths, and every adapter's `mod.ts`. */
async function entryPoints(): Promise<string[]> {
  const out = new Set<string>(
    Object.values(config.exports as Record<string, string>).map((p) => p.replace(/^\.\//, "")),
  );
  for await (const e of Deno.readDir(new URL("adapters/", root))) {
    if (!e.isDirectory) continue;
    const mod = `adapters/${e.name}/mod.ts`;
    if (await Deno.stat(new URL(mod, root)).then(() => true, () => false)) out.add(mod);
  }
  return [...out].sort();
}

Deno.test("deno task test:doc runs the examples of every entry point", async () => {
  const task = (config.tasks["test:doc"] as string).split(/\s+/);
  eq(task.slice(0, 3), ["deno", "test", "--doc"]);
  const missing = (await entryPoints()).filter((p) => !task.includes(p));
  eq(missing, [], "entry points whose examples the task does not run");
});

Deno.test("at most three examples of the entry points are marked ignore", async () => {
  const ignored: string[] = [];
  let examples = 0;
  for (const p of await entryPoints()) {
    const text = await Deno.readTextFile(new URL(p, root));
    for (const m of text.matchAll(/^\s*\*?\s*```(ts|typescript)([^\n]*)$/gm)) {
      examples++;
      if (/\bignore\b/.test(m[2])) ignored.push(p);
    }
  }
  eq(examples > 0, true, "the entry points have examples");
  eq(ignored.length <= 3, true, `ignored examples: ${ignored.join(", ")}`);
});
