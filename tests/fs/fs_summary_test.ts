/**
 * The fs store's summary (`<root>/summary`, `adapters/fs/_summary.ts`): a
 * view's first pass takes each partition's listing and end and each topic's
 * settings from it, with stats only, where the files did not change since;
 * and never shows anything else than the files do: a change another process
 * made since, a torn, foreign or missing summary all give what the files
 * hold. Files are given an old modification time before the summary is
 * written, so that its rows are trusted, and a change must still show.
 */
import { deepStrictEqual as eq } from "node:assert/strict";
import { FsAdapter } from "../../adapters/fs/mod.ts";
import { SAVE_AFTER, STALE_TEMP_MS } from "../../adapters/fs/_summary.ts";
import { batchOf } from "../../core/record.ts";
import { Mq } from "../../core/client.ts";
import { overview } from "../../core/overview.ts";

const enc = new TextEncoder();
const TOPICS = SAVE_AFTER + 16;
const name = (i: number) => `t-${String(i).padStart(3, "0")}`;

/** Every file and folder of `dir` an hour old (so that a summary's rows are trusted). */
async function age(dir: string): Promise<void> {
  const old = new Date(Date.now() - 3600_000);
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      if (e.isDirectory) await walk(`${d}/${e.name}`);
      await Deno.utime(`${d}/${e.name}`, old, old);
    }
  };
  await walk(dir);
  await Deno.utime(dir, old, old);
}

/** A store of {@link TOPICS} topics, aged, and the summary its writer left on close. */
async function store(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "mq-fs-summary-" });
  const mq = new Mq(await FsAdapter.open(dir, { fsync: "never" }));
  for (let i = 0; i < TOPICS; i++) {
    await mq.publishBatch(name(i), Array.from({ length: i % 5 + 1 }, () => "m"));
  }
  await age(dir);
  await mq.close();
  await Deno.stat(`${dir}/summary`); // a writer of that many partitions leaves one
  return dir;
}

interface Look {
  settings: string | undefined;
  bounds: { start: number; end: number };
  bytes: number;
}

/**
 * What a fresh adapter sees of every topic, and the `read` calls it made
 * for it: a view's pass (the topics listed first, which reads the summary),
 * or (`view` false) each topic looked at alone, from the files only.
 */
async function look(dir: string, view = true): Promise<{ seen: Look[]; reads: number }> {
  const a = await FsAdapter.open(dir, { fsync: "never" });
  const dec = new TextDecoder();
  const before = reads();
  const names = view ? (await a.listState(["topics"])).sort() : [];
  if (!view) { for (let i = 0; i < TOPICS; i++) names.push(name(i)); }
  const seen: Look[] = [];
  for (const n of names) {
    const doc = await a.getState(["topics", n]);
    const bounds = await a.bounds(n, 0);
    seen.push({ settings: doc && dec.decode(doc.value), bounds, bytes: await a.storedBytes(n, 0) });
  }
  const made = reads() - before;
  await a.close();
  return { seen, reads: made };
}

/**
 * Files of a test store opened or read whole so far: Deno's file-reading
 * calls are counted for paths in a store of this file's (the test runner
 * allows no read of /proc/self/io, which would count the system calls).
 */
let opened = 0;
for (
  const fn of ["open", "openSync", "readFile", "readFileSync", "readTextFile", "readTextFileSync"]
) {
  const real = (Deno as any)[fn];
  (Deno as any)[fn] = (path: string | URL, ...rest: unknown[]) => {
    if (String(path).includes("mq-fs-summary-")) opened++;
    return real(path, ...rest);
  };
}
function reads(): number {
  return opened;
}

Deno.test("fs summary: a view's first pass reads no segment, mark or settings file where nothing changed, and sees what the files hold", async () => {
  const dir = await store();
  try {
    const truth = await look(dir, false);
    eq(truth.reads >= TOPICS * 3, true); // each topic's settings, segment and mark read
    const first = await look(dir);
    eq(first.seen, truth.seen);
    // The summary and the topics' listing: a few reads for them all.
    eq(first.reads < TOPICS / 4, true, `${first.reads} reads for ${TOPICS} topics`);
    // Written again on close, and still good for the next one.
    const again = await look(dir);
    eq(again.seen, truth.seen);
    eq(again.reads < TOPICS / 4, true, `${again.reads} reads for ${TOPICS} topics`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fs summary: what another process changed since shows on the first pass (appends, a trim, a purge, settings, a topic made again, a new segment written)", async () => {
  const dir = await store();
  try {
    const b = await FsAdapter.open(dir, { fsync: "never" });
    await b.append(name(0), 0, batchOf([enc.encode("more")]));
    await b.trim(name(1), 0, 1);
    await b.trim(name(2), 0, 100); // a purge: a fresh segment
    const doc = (await b.getState(["topics", name(3)]))!;
    const changed = { ...JSON.parse(new TextDecoder().decode(doc.value)), partitions: 2 };
    eq(
      await b.compareAndSet(["topics", name(3)], doc.version, enc.encode(JSON.stringify(changed))),
      true,
    );
    const made = (await b.getState(["topics", name(4)]))!.value;
    await b.dropLog(name(4));
    await b.deleteState(["topics", name(4)]);
    eq(await b.compareAndSet(["topics", name(4)], null, made), true);
    await b.append(name(4), 0, batchOf([enc.encode("again")]));
    // Purged, then written to: its first segment gone, a new one with two records.
    await b.trim(name(5), 0, 100);
    await b.append(name(5), 0, batchOf([enc.encode("x"), enc.encode("y")]));
    await b.close();
    const d5 = `${dir}/log/${name(5)}/0`;
    eq([...Deno.readDirSync(d5)].filter((e) => e.name.endsWith(".log")).length, 1);
    const truth = await look(dir, false);
    const first = await look(dir);
    eq(first.seen, truth.seen);
    eq(first.seen[0].bounds, { start: 0, end: 2 });
    eq(first.seen[1].bounds, { start: 1, end: 2 });
    eq(first.seen[2].bounds, { start: 3, end: 3 });
    eq(JSON.parse(first.seen[3].settings!).partitions, 2);
    eq(first.seen[4].bounds, { start: 0, end: 1 });
    eq(first.seen[5].bounds, { start: 1, end: 3 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fs summary: a torn, foreign or missing summary is read as none: the files are, and a whole one is written again", async () => {
  const dir = await store();
  try {
    const truth = await look(dir, false);
    const whole = Deno.readFileSync(`${dir}/summary`);
    const damaged: [string, Uint8Array | undefined][] = [
      ["cut in half", whole.subarray(0, whole.length >> 1)],
      ["cut to its first line", whole.subarray(0, whole.indexOf(10) + 1)],
      ["empty", new Uint8Array(0)],
      ["zeros (a power loss after the rename)", new Uint8Array(whole.length)],
      ["another version", enc.encode("mq-summary 9\n{}")],
      [
        "rows of the wrong shape",
        enc.encode('mq-summary 1\n{"parts":{"t-000/0":[1,2]},"docs":[]}'),
      ],
      ["missing", undefined],
    ];
    for (const [what, bytes] of damaged) {
      if (bytes) Deno.writeFileSync(`${dir}/summary`, bytes);
      else Deno.removeSync(`${dir}/summary`);
      const first = await look(dir);
      eq(first.seen, truth.seen, what);
      eq(first.reads >= TOPICS * 3, true, `${what}: the files read`);
      // The pass wrote a whole summary again on close (the files are aged
      // again first, as they were for the one it replaced).
      await age(dir);
      const text = Deno.readTextFileSync(`${dir}/summary`);
      eq(text.startsWith("mq-summary 1\n") && JSON.parse(text.slice(13)).parts !== undefined, true);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fs summary: the overview of a store from its summary is the overview from its files, and appends after it show", async () => {
  const dir = await store();
  try {
    const fromFiles = async () => {
      const summary = Deno.readFileSync(`${dir}/summary`);
      Deno.removeSync(`${dir}/summary`);
      const mq = new Mq(await FsAdapter.open(dir));
      const o = await overview(mq);
      await mq.close();
      Deno.writeFileSync(`${dir}/summary`, summary); // as it was (this pass wrote its own)
      return o.topics;
    };
    const truth = await fromFiles();
    const mq = new Mq(await FsAdapter.open(dir));
    const first = await overview(mq);
    eq(first.topics, truth);
    await mq.publish(name(7), "later");
    const next = await overview(mq, { previous: first });
    eq(next.topics.find((t) => t.name === name(7))!.messages, truth[7].messages + 1);
    await mq.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fs summary: a command about a few topics, and a reading one on a new folder, write none", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mq-fs-summary-" });
  try {
    const a = await FsAdapter.open(`${dir}/new`);
    eq(await a.listState(["topics"]), []);
    await a.close();
    eq([...Deno.readDirSync(dir)].length, 0); // no folder made
    const w = await FsAdapter.open(`${dir}/few`, { fsync: "never" });
    for (let i = 0; i < 3; i++) await w.append(name(i), 0, batchOf([enc.encode("m")]));
    await w.close();
    eq([...Deno.readDirSync(`${dir}/few`)].map((e) => e.name).sort(), ["log"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fs summary: a temporary summary a killed writer left is removed by the next writer once stale; a fresh one is kept", async () => {
  const dir = await store();
  try {
    // One left by a process killed between its write and its rename, long ago;
    // one of a writer at work now; and files that only look alike.
    const stale = `${dir}/summary.4242.tmp`, fresh = `${dir}/summary.4343.tmp`;
    const others = [`${dir}/summary.x.tmp`, `${dir}/summary.4444.tmp.keep`];
    for (const f of [stale, fresh, ...others]) Deno.writeTextFileSync(f, "mq-summary 1\n{");
    const old = new Date(Date.now() - STALE_TEMP_MS - 60_000);
    for (const f of [stale, ...others]) Deno.utimeSync(f, old, old);
    await look(dir); // a view's pass: it writes the summary on close
    const left = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n !== "log").sort();
    eq(left.includes("summary.4242.tmp"), false, left.join(" "));
    eq(
      ["summary.4343.tmp", "summary.4444.tmp.keep", "summary.x.tmp"].every((n) => left.includes(n)),
      true,
      left.join(" "),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
