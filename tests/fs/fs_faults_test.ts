/** The fs backend's own fault regressions: torn tails, flipped bytes, seeking. */
import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { FsAdapter } from "../../adapters/fs/mod.ts";
import { Mq } from "../../core/client.ts";

const dec = new TextDecoder();

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "mq-fs-faults-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

async function segment(dir: string, topic: string): Promise<string> {
  for await (const e of Deno.readDir(`${dir}/log/${topic}/0`)) {
    if (e.name.endsWith(".log")) return `${dir}/log/${topic}/0/${e.name}`;
  }
  throw new Error("no segment");
}

async function readAll(
  dir: string,
  topic: string,
  onCorrupt?: (w: string) => void,
): Promise<{ offset: number; text: string }[]> {
  const mq = new Mq(await FsAdapter.open(dir, { onCorrupt }));
  const out: { offset: number; text: string }[] = [];
  try {
    for await (const m of mq.subscribe(topic, { follow: false })) {
      out.push({ offset: m.offset, text: m.text() });
    }
  } finally {
    await mq.close();
  }
  return out;
}

Deno.test("fs: a torn tail is cut off on the next write; the valid prefix stays and offsets go on", () =>
  withDir(async (dir) => {
    const mq = new Mq(await FsAdapter.open(dir));
    await mq.publishBatch("t", ["a", "b", "c"]);
    await mq.close();
    const path = await segment(dir, "t");
    const size = (await Deno.stat(path)).size;
    // A crash in the middle of a batch: a frame header and part of its body.
    const torn = new Uint8Array(40).fill(7);
    new DataView(torn.buffer).setUint32(0, 500, true);
    await Deno.writeFile(path, torn, { append: true });
    eq((await readAll(dir, "t")).map((r) => r.text), ["a", "b", "c"]);
    const again = new Mq(await FsAdapter.open(dir));
    await again.publish("t", "d");
    await again.close();
    eq((await Deno.stat(path)).size > size, true);
    eq(await readAll(dir, "t"), [
      { offset: 0, text: "a" },
      { offset: 1, text: "b" },
      { offset: 2, text: "c" },
      { offset: 3, text: "d" },
    ]);
  }));

Deno.test("fs: with random bytes flipped, a reader never crashes and never returns a corrupt record", async () => {
  for (const seed of [1, 7, 42, 1234, 99991]) {
    await withDir(async (dir) => {
      const mq = new Mq(await FsAdapter.open(dir));
      const sent = Array.from({ length: 2000 }, (_, i) => `record-${i}-${"x".repeat(i % 50)}`);
      for (let i = 0; i < sent.length; i += 100) await mq.publishBatch("t", sent.slice(i, i + 100));
      await mq.close();
      const path = await segment(dir, "t");
      const bytes = await Deno.readFile(path);
      let s = seed;
      for (let k = 0; k < 20; k++) {
        s = (s * 1103515245 + 12345) & 0x7fffffff;
        bytes[s % bytes.length] ^= 1 << (s % 8);
      }
      await Deno.writeFile(path, bytes);
      const warnings: string[] = [];
      const got = await readAll(dir, "t", (w) => warnings.push(w));
      for (const r of got) eq(r.text, sent[r.offset], `seed ${seed}: offset ${r.offset}`);
      const offsets = got.map((r) => r.offset);
      eq(offsets, [...offsets].sort((a, b) => a - b), "in order");
      ok(got.length < sent.length, `seed ${seed}: some frames were damaged`);
      ok(got.length > 0 || warnings.length > 0);
    });
  }
});

Deno.test("fs: opening a reader deep in a large partition starts at that offset", () =>
  withDir(async (dir) => {
    const mq = new Mq(await FsAdapter.open(dir));
    const payloads = Array.from({ length: 10_000 }, (_, i) => `m${i}`);
    for (let i = 0; i < 20; i++) await mq.publishBatch("t", payloads.map((p) => `${i}-${p}`));
    const [m] = (await mq.subscribe("t", { from: 150_000, count: 1, follow: false }).take(1))!;
    eq([m.offset, m.text()], [150_000, "15-m0"]);
    const last = (await mq.subscribe("t", { from: 199_999, follow: false }).take(10))!;
    eq(last.map((x) => x.text()), ["19-m9999"]);
    await mq.close();
  }));

Deno.test("fs: several processes' state writes and appends interleave safely (in-process writers)", () =>
  withDir(async (dir) => {
    const a = new Mq(await FsAdapter.open(dir)), b = new Mq(await FsAdapter.open(dir));
    await Promise.all([
      (async () => {
        for (let i = 0; i < 50; i++) await a.publishBatch("t", [`a${i}`]);
      })(),
      (async () => {
        for (let i = 0; i < 50; i++) await b.publishBatch("t", [`b${i}`]);
      })(),
    ]);
    await a.close();
    await b.close();
    const got = (await readAll(dir, "t")).map((r) => r.text);
    eq(got.length, 100);
    eq(got.filter((x) => x[0] === "a"), Array.from({ length: 50 }, (_, i) => `a${i}`));
  }));

export { dec };
