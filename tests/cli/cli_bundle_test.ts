/** `cli/mq.js`, the bundle `deno task mq` and the installed `mq` run, is built from the sources as they are. */
import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { bundle, HEADER, ROOT } from "../../scripts/bundle.ts";

Deno.test("cli: cli/mq.js is up to date with the sources (else: deno task bundle)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mq-bundle-" });
  try {
    await bundle(`${dir}/mq.js`);
    const fresh = await Deno.readTextFile(`${dir}/mq.js`);
    const committed = await Deno.readTextFile(`${ROOT}cli/mq.js`);
    ok(committed.startsWith(HEADER));
    eq(
      committed === fresh,
      true,
      "cli/mq.js differs from a fresh bundle of the sources: run `deno task bundle` and commit cli/mq.js",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: the bundle reads no commander, no kv and no nats module when it starts", async () => {
  const code = await Deno.readTextFile(`${ROOT}cli/mq.js`);
  eq(code.match(/^import\b.*$/gm) ?? [], [], "no static imports");
  eq([...code.matchAll(/\bimport\("([^"]+)"\)/g)].map((m) => m[1]), ["node:zlib"]);
});
