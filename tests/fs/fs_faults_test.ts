/** The fs backend's own fault regressions: torn tails, flipped bytes, seeking. */
import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { FsAdapter } from "../../adapters/fs/mod.ts";
import { Mq } from "../../core/client.ts";
import type { CorruptionReport } from "../../core/adapter.ts";

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
  onCorrupt?: (r: CorruptionReport) => void,
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
      const warnings: CorruptionReport[] = [];
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

const MAIN = new URL("../../cli/main.ts", import.meta.url).pathname;
const has = (bin: string) =>
  new Deno.Command("sh", { args: ["-c", `command -v ${bin}`], stdout: "null" }).outputSync()
    .success;

/** Runs mq under strace; how many fsync/fdatasync calls it made. */
async function syncCalls(dir: string, fsync: string, args: string[]): Promise<number> {
  const trace = `${dir}/trace.${fsync}`;
  const out = await new Deno.Command("strace", {
    args: [
      "-f",
      "-qq",
      // -y: each descriptor with its path, so that only the store's syncs
      // count (not Deno's own, of its caches, after a source changed).
      "-y",
      "-e",
      "trace=fsync,fdatasync",
      "-o",
      trace,
      Deno.execPath(),
      "run",
      "-A",
      "--quiet",
      MAIN,
      "--url",
      `file:${dir}/data-${fsync}?fsync=${fsync}`,
      ...args,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  ok(out.success, dec.decode(out.stderr));
  const text = await Deno.readTextFile(trace);
  const store = `${dir}/data-${fsync}`;
  return text.split("\n").filter((l) => /\b(fsync|fdatasync)\(/.test(l) && l.includes(store))
    .length;
}

Deno.test({
  name: "fs: ?fsync=never syncs nothing, batch syncs data and state, always syncs more",
  ignore: !has("strace"),
  fn: () =>
    withDir(async (dir) => {
      const counts: Record<string, number> = {};
      for (const policy of ["never", "batch", "always"]) {
        // one append (a batch), then one group commit (a state document)
        await syncCalls(dir, policy, ["pub", "t", "-q", "a", "b", "c"]);
        counts[policy] = await syncCalls(dir, policy, ["sub", "t", "-e", "-g", "g"]);
        counts[`${policy}-pub`] = await syncCalls(dir, policy, ["pub", "t", "-q", "d"]);
      }
      eq([counts.never, counts["never-pub"]], [0, 0], JSON.stringify(counts));
      ok(counts.batch >= 1, `a group commit syncs its document: ${JSON.stringify(counts)}`);
      ok(counts["batch-pub"] >= 1, `a publish syncs its batch: ${JSON.stringify(counts)}`);
      ok(counts.always > counts.batch, `always syncs folders too: ${JSON.stringify(counts)}`);
    }),
});

Deno.test("fs: a state document is replaced whole; a killed writer's temporary file changes nothing", () =>
  withDir(async (dir) => {
    const mq = new Mq(await FsAdapter.open(dir));
    try {
      await mq.publishBatch("t", ["1", "2", "3"]);
      const sub = mq.subscribe("t", { group: "g", follow: false, count: 2 });
      for await (const m of sub) m.ack();
      const doc = `${dir}/state/groups/t/g.doc`;
      const before = await Deno.readFile(doc);
      // what a writer killed between write and rename leaves behind
      await Deno.writeTextFile(`${dir}/state/groups/t/g.4242.abc.tmp`, "9\n{torn");
      eq(await Deno.readFile(doc), before);
      eq((await mq.topics.info("t")).groups.map((g) => [g.name, g.lag]), [["g", 1]]);
      const rest: string[] = [];
      for await (const m of mq.subscribe("t", { group: "g", follow: false })) {
        rest.push(m.text());
        m.ack();
      }
      eq(rest, ["3"]);
      eq((await mq.topics.info("t")).groups.map((g) => [g.name, g.lag]), [["g", 0]]);
    } finally {
      await mq.close();
    }
  }));

Deno.test({
  name: "fs: readers never wait for a writer's lock (sub -e and topics while a lock is held)",
  ignore: !has("flock"),
  fn: () =>
    withDir(async (dir) => {
      const mq = new Mq(await FsAdapter.open(dir));
      await mq.publishBatch("t", ["a", "b"]);
      await mq.close();
      // Another process holds the partition's write lock for 30 s.
      const holder = new Deno.Command("flock", {
        args: ["-x", `${dir}/log/t/0/.lock`, "sleep", "30"],
      }).spawn();
      try {
        await new Promise((r) => setTimeout(r, 300));
        const run = (args: string[]) =>
          new Deno.Command(Deno.execPath(), {
            args: ["run", "-A", "--quiet", MAIN, "--url", `file:${dir}`, ...args],
            stdout: "piped",
            stderr: "piped",
          }).output();
        const started = Date.now();
        const [sub, topics] = await Promise.all([run(["sub", "t", "-e"]), run(["topics"])]);
        eq(dec.decode(sub.stdout), "a\nb\n", dec.decode(sub.stderr));
        ok(dec.decode(topics.stdout).includes("t"), dec.decode(topics.stderr));
        ok(Date.now() - started < 15_000, "readers did not wait for the lock");
      } finally {
        holder.kill("SIGKILL");
        await holder.status;
      }
    }),
});
