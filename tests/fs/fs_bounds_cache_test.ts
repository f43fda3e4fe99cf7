/**
 * What the fs backend keeps between looks (a partition folder's listing, a
 * state folder's entries, the end of the last segment) never hides a change
 * another process made: folders are given an old modification time first, so
 * that the kept listing is trusted, and the change must still show.
 */
import { deepStrictEqual as eq } from "node:assert/strict";
import { FsAdapter } from "../../adapters/fs/mod.ts";
import { batchOf } from "../../core/record.ts";

const enc = new TextEncoder();
const HOUR_AGO = () => new Date(Date.now() - 3600_000);

async function withTwo(fn: (a: FsAdapter, b: FsAdapter, dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "mq-fs-cache-" });
  const a = await FsAdapter.open(dir, { fsync: "never" });
  const b = await FsAdapter.open(dir, { fsync: "never" });
  try {
    await fn(a, b, dir);
  } finally {
    await a.close();
    await b.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

const three = () => batchOf(["a", "b", "c"].map((t) => enc.encode(t)));

Deno.test("fs cache: a trim and appends by another process show in bounds and stored bytes", async () => {
  await withTwo(async (a, b, dir) => {
    await b.append("t", 0, three());
    const part = `${dir}/log/t/0`;
    await Deno.utime(part, HOUR_AGO(), HOUR_AGO());
    eq(await a.bounds("t", 0), { start: 0, end: 3 });
    eq(await a.bounds("t", 0), { start: 0, end: 3 }); // from what it kept
    const bytes = await a.storedBytes("t", 0);
    await b.append("t", 0, three());
    eq(await a.bounds("t", 0), { start: 0, end: 6 });
    eq(await a.storedBytes("t", 0) > bytes, true);
    await Deno.utime(part, HOUR_AGO(), HOUR_AGO());
    eq(await a.bounds("t", 0), { start: 0, end: 6 });
    await b.trim("t", 0, 6); // a purge: a start file and a fresh segment
    eq(await a.bounds("t", 0), { start: 6, end: 6 });
    eq(await a.storedBytes("t", 0), 0);
    await b.append("t", 0, three());
    eq(await a.bounds("t", 0), { start: 6, end: 9 });
  });
});

Deno.test("fs cache: a topic removed and made again by another process shows afresh", async () => {
  await withTwo(async (a, b, dir) => {
    await b.append("t", 0, three());
    await Deno.utime(`${dir}/log/t/0`, HOUR_AGO(), HOUR_AGO());
    eq(await a.bounds("t", 0), { start: 0, end: 3 });
    await b.dropLog("t");
    eq(await a.bounds("t", 0), { start: 0, end: 0 });
    await b.append("t", 0, batchOf([enc.encode("x")]));
    eq(await a.bounds("t", 0), { start: 0, end: 1 });
  });
});

Deno.test("fs cache: state folders known missing show once another process makes them", async () => {
  await withTwo(async (a, b, dir) => {
    await b.compareAndSet(["groups", "other", "g"], null, enc.encode("{}"));
    for (const d of [`${dir}/state`, `${dir}/state/groups`]) {
      await Deno.utime(d, HOUR_AGO(), HOUR_AGO());
    }
    eq(await a.listState(["groups", "t"]), []);
    eq(await a.listState(["groups", "t"]), []); // known from the parent's entries
    eq(await a.listState(["nothing", "here"]), []); // its parent is missing too
    await b.compareAndSet(["groups", "t", "g1"], null, enc.encode("{}"));
    eq(await a.listState(["groups", "t"]), ["g1"]);
    await b.compareAndSet(["nothing", "here", "d"], null, enc.encode("{}"));
    eq(await a.listState(["nothing", "here"]), ["d"]);
    await b.deleteState(["groups", "t"]);
    eq(await a.listState(["groups", "t"]), []);
    eq(await a.listState(["groups", "other"]), ["g"]);
  });
});

/** Runs `fn` counting the synchronous stats that found nothing. */
async function countingFailedStats(fn: () => Promise<void>): Promise<number> {
  const statSync = Deno.statSync;
  let failed = 0;
  Deno.statSync = (path) => {
    try {
      return statSync(path);
    } catch (e) {
      failed++;
      throw e;
    }
  };
  try {
    await fn();
  } finally {
    Deno.statSync = statSync;
  }
  return failed;
}

Deno.test("fs cache: groups of a store without any are listed without a failed call per topic, and show once made", async () => {
  await withTwo(async (a, b, dir) => {
    await b.compareAndSet(["topics", "t"], null, enc.encode("{}"));
    await Deno.utime(`${dir}/state`, HOUR_AGO(), HOUR_AGO());
    eq(await a.listState(["groups", "t"]), []); // finds `groups/` missing
    const failed = await countingFailedStats(async () => {
      for (let i = 0; i < 20; i++) eq(await a.listState(["groups", `t${i}`]), []);
    });
    eq(failed, 0); // from the listing of `state/`, not a stat of `groups/` each time
    await b.compareAndSet(["groups", "t", "g"], null, enc.encode("{}"));
    eq(await a.listState(["groups", "t"]), ["g"]);
    eq(await a.listState(["groups", "u"]), []);
    await b.deleteState(["groups", "t"]);
    await Deno.remove(`${dir}/state/groups`, { recursive: true });
    eq(await a.listState(["groups", "t"]), []);
    await b.compareAndSet(["groups", "t", "h"], null, enc.encode("{}"));
    eq(await a.listState(["groups", "t"]), ["h"]);
  });
});

Deno.test("fs cache: bounds read the high-water mark where the folder has one, and skip it where not", async () => {
  await withTwo(async (a, b, dir) => {
    await b.append("t", 0, three());
    const part = `${dir}/log/t/0`;
    // Acknowledged offsets past the frames on disk (frames lost to damage): the mark counts.
    await Deno.writeTextFile(`${part}/hwm`, String(5).padStart(20, "0") + "\n");
    await Deno.utime(part, HOUR_AGO(), HOUR_AGO());
    eq(await a.bounds("t", 0), { start: 0, end: 5 });
    await Deno.remove(`${part}/hwm`);
    const c = await FsAdapter.open(dir, { fsync: "never" });
    try {
      const readText = Deno.readTextFileSync;
      const read: string[] = [];
      Deno.readTextFileSync = (path) => {
        read.push(String(path));
        return readText(path);
      };
      try {
        eq(await c.bounds("t", 0), { start: 0, end: 3 });
      } finally {
        Deno.readTextFileSync = readText;
      }
      eq(read.filter((p) => p.endsWith("/hwm")), []);
    } finally {
      await c.close();
    }
    await b.append("t", 0, three());
    eq(await a.bounds("t", 0), { start: 0, end: 6 });
  });
});

Deno.test("fs cache: stored bytes right after bounds use their listing, not after this process trimmed or wrote", async () => {
  await withTwo(async (a, _b, dir) => {
    await a.append("t", 0, three());
    const part = `${dir}/log/t/0`;
    eq(await a.bounds("t", 0), { start: 0, end: 3 });
    const statSync = Deno.statSync;
    const stats: string[] = [];
    Deno.statSync = (path) => (stats.push(String(path)), statSync(path));
    let bytes: number;
    try {
      bytes = await a.storedBytes("t", 0);
    } finally {
      Deno.statSync = statSync;
    }
    eq(stats.includes(part), false);
    eq(bytes > 0, true);
    await a.trim("t", 0, 3); // a purge: a fresh, empty segment
    eq(await a.storedBytes("t", 0), 0);
    await a.append("t", 0, three());
    eq(await a.storedBytes("t", 0), bytes);
  });
});

Deno.test("fs cache: the first look at a purged partition reads no empty segment, and sees what comes after", async () => {
  await withTwo(async (a, b, dir) => {
    await b.append("t", 0, three());
    await b.trim("t", 0, 3); // a purge: a fresh, empty segment
    const readFileSync = Deno.readFileSync;
    const read: string[] = [];
    Deno.readFileSync = (path) => (read.push(String(path)), readFileSync(path));
    try {
      eq(await a.bounds("t", 0), { start: 3, end: 3 });
    } finally {
      Deno.readFileSync = readFileSync;
    }
    eq(read.filter((p) => p.startsWith(`${dir}/log/t/0/`) && p.endsWith(".log")), []);
    await b.append("t", 0, three());
    eq(await a.bounds("t", 0), { start: 3, end: 6 });
    eq(await a.storedBytes("t", 0) > 0, true);
  });
});
