/**
 * The fs backend bounds its open files: one process writing to more
 * partitions than `ulimit -n` allows keeps working (the least recently used
 * idle writers close their files and reopen them on demand), and appends and
 * reads that run meanwhile stay correct.
 */
import { deepStrictEqual as eq } from "node:assert/strict";
import { FsAdapter } from "../../adapters/fs/mod.ts";
import { batchOf as recordBatch, type RecordBatch } from "../../core/record.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function batchOf(texts: string[]): RecordBatch {
  return recordBatch(texts.map((t) => enc.encode(t)));
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "mq-fs-open-files-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Every record of a partition, as text. */
async function texts(fs: FsAdapter, topic: string): Promise<string[]> {
  const r = await fs.openReader(topic, 0, 0);
  const out: string[] = [];
  try {
    for (;;) {
      const got = await r.read(1000);
      if (got.length === 0) return out;
      for (const m of got) out.push(dec.decode(m.payload));
    }
  } finally {
    r.close();
  }
}

Deno.test("fs: writers beyond maxOpenPartitions close and reopen their files, appends and reads stay right", async () => {
  await withDir(async (dir) => {
    const fs = await FsAdapter.open(dir, { fsync: "never", maxOpenPartitions: 3 });
    const topics = Array.from({ length: 20 }, (_, i) => `t${i}`);
    // Eight rounds over twenty partitions from eight concurrent writers, with
    // readers going through the same partitions meanwhile: every writer is
    // closed and reopened several times, some while others are busy.
    const rounds = 8;
    let next = 0;
    const reads: Promise<string[]>[] = [];
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < rounds * topics.length) {
        const i = next++;
        const topic = topics[i % topics.length], round = Math.floor(i / topics.length);
        const first = await fs.append(
          topic,
          0,
          batchOf([`${topic} ${round} a`, `${topic} ${round} b`]),
        );
        if (i % 7 === 0) reads.push(texts(fs, topic));
        eq(first % 2, 0);
      }
    }));
    for (const r of await Promise.all(reads)) eq(r.length % 2, 0);
    for (const topic of topics) {
      const got = await texts(fs, topic);
      eq(got.length, rounds * 2);
      // Each pair stays whole and in order (a round's two records side by side).
      for (let k = 0; k < got.length; k += 2) {
        eq(got[k].replace(/ a$/, ""), got[k + 1].replace(/ b$/, ""));
      }
      eq((await fs.bounds(topic, 0)).end, rounds * 2);
    }
    await fs.close();
    // Another process (here: a second adapter) sees the same ends and goes on from them.
    const again = await FsAdapter.open(dir, { fsync: "never", maxOpenPartitions: 2 });
    for (const topic of topics) eq(await again.append(topic, 0, batchOf(["last"])), rounds * 2);
    await again.close();
  });
});

Deno.test("fs: one process writes to 600 topics under ulimit -n 256 (EMFILE without the bound)", async () => {
  await withDir(async (dir) => {
    const child = `${dir}/child.ts`;
    const adapter = new URL("../../adapters/fs/mod.ts", import.meta.url).href;
    const record = new URL("../../core/record.ts", import.meta.url).href;
    await Deno.writeTextFile(
      child,
      `import { FsAdapter } from ${JSON.stringify(adapter)};
const enc = new TextEncoder();
import { batchOf } from ${JSON.stringify(record)};
const fs = await FsAdapter.open(Deno.args[0] + "/data", { fsync: "never" });
const n = 600;
let next = 0;
await Promise.all(Array.from({ length: 16 }, async () => {
  while (next < n * 2) {
    const i = next++;
    const topic = "topic-" + (i % n);
    await fs.append(topic, 0, batchOf([enc.encode(topic + " " + i)]));
    if (i % 50 === 0) {
      const r = await fs.openReader(topic, 0, 0);
      await r.read(10);
      r.close();
    }
  }
}));
let total = 0;
for (let i = 0; i < n; i++) total += (await fs.bounds("topic-" + i, 0)).end;
await fs.close();
console.log(total);
`,
    );
    const out = await new Deno.Command("bash", {
      args: [
        "-c",
        `ulimit -n 256 && exec "$0" run --quiet --allow-read --allow-write "$1" "$2"`,
        Deno.execPath(),
        child,
        dir,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = dec.decode(out.stderr);
    eq({ code: out.code, err: err.trim().split("\n").slice(0, 3).join("\n") }, {
      code: 0,
      err: "",
    });
    eq(dec.decode(out.stdout).trim(), "1200");
  });
});

Deno.test("fs: 600 readers kept open under ulimit -n 256, with appends to their 600 partitions, read on where they were (EMFILE without the bound)", async () => {
  await withDir(async (dir) => {
    const n = 600;
    const fs = await FsAdapter.open(`${dir}/data`, { fsync: "never" });
    for (let i = 0; i < n; i++) await fs.append(`topic-${i}`, 0, batchOf([`first ${i}`]));
    await fs.close();
    const child = `${dir}/child.ts`;
    const adapter = new URL("../../adapters/fs/mod.ts", import.meta.url).href;
    const record = new URL("../../core/record.ts", import.meta.url).href;
    await Deno.writeTextFile(
      child,
      `import { FsAdapter } from ${JSON.stringify(adapter)};
import { batchOf } from ${JSON.stringify(record)};
const enc = new TextEncoder(), dec = new TextDecoder();
const fs = await FsAdapter.open(Deno.args[0] + "/data", { fsync: "never" });
const n = ${n};
const readers = [];
for (let i = 0; i < n; i++) readers.push(await fs.openReader("topic-" + i, 0, 0));
const got = [];
// Reads of all the readers, two rounds, with appends to the same partitions
// running meanwhile: each reader's file is closed and reopened in between.
for (let round = 0; round < 2; round++) {
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < n) {
      const i = next++;
      const [texts] = await Promise.all([
        readers[i].read(10).then((ms) => ms.map((m) => dec.decode(m.payload))),
        fs.append("topic-" + i, 0, batchOf([enc.encode("more " + round + " " + i)])),
      ]);
      (got[i] ??= []).push(...texts);
    }
  }));
}
for (let i = 0; i < n; i++) {
  for (const m of await readers[i].read(10)) got[i].push(dec.decode(m.payload));
  readers[i].close();
}
await fs.close();
const bad = got.findIndex((g, i) => g.join("|") !== ["first " + i, "more 0 " + i, "more 1 " + i].join("|"));
console.log(bad === -1 ? "all read" : "topic " + bad + ": " + JSON.stringify(got[bad]));
`,
    );
    const out = await new Deno.Command("bash", {
      args: [
        "-c",
        `ulimit -n 256 && exec "$0" run --quiet --allow-read --allow-write "$1" "$2"`,
        Deno.execPath(),
        child,
        dir,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = dec.decode(out.stderr);
    eq({ code: out.code, err: err.trim().split("\n").slice(0, 3).join("\n") }, {
      code: 0,
      err: "",
    });
    eq(dec.decode(out.stdout).trim(), "all read");
  });
});
