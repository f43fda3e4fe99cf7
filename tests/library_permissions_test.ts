/**
 * The library on the memory backend needs no permission at all: the parts
 * the client loads on first use are dynamic imports Deno knows of, not
 * computed specifiers (which need read access to the library's own files).
 */
import { deepStrictEqual as eq } from "node:assert/strict";

const root = new URL("../", import.meta.url);

Deno.test("library: memory publish, read, group, peek and consume with no permission granted", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mq-perm-" });
  try {
    const script = `${dir}/use.ts`;
    await Deno.writeTextFile(
      script,
      `import { connect } from "${new URL("mod.ts", root).href}";
const mq = await connect("memory:");
await mq.publishBatch("t", ["a", "b"]);
const plain = mq.subscribe("t", { follow: false });
const read = (await plain.take(2))!.map((m) => m.text());
await plain.close();
const peeked = (await mq.peek("t", { group: "g" })).length;
const done = await mq.consume("t", { group: "g", follow: false }, () => {});
const tx = await mq.transaction((t) => t.publish("u", "c"));
console.log(JSON.stringify({ read, peeked, acked: done.acked, published: tx.published }));
await mq.close();
`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", "--config", new URL("deno.json", root).pathname, script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(out.stderr);
    eq([out.code, err], [0, ""]);
    eq(JSON.parse(new TextDecoder().decode(out.stdout)), {
      read: ["a", "b"],
      peeked: 2,
      acked: 2,
      published: 1,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
