/**
 * The fs backend's transactions after a crash (faults injected at the commit
 * point and half-way through applying): what was committed is rolled forward
 * once, by the next process to open the folder or to write what it touches;
 * what was never committed leaves nothing.
 */
import { deepStrictEqual as eq, rejects } from "node:assert/strict";
import { FsAdapter } from "../../adapters/fs/mod.ts";
import { TX_FAULTS } from "../../adapters/fs/_transactions.ts";
import { Mq } from "../../core/client.ts";
import { batchOf } from "../../core/record.ts";
import { partitionDir, segmentName } from "../../adapters/fs/_paths.ts";
import { readHighWater } from "../../adapters/fs/_recovery.ts";
import { adapterOf } from "../../core/internal.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "mq-fs-tx-" });
  try {
    await fn(dir);
  } finally {
    TX_FAULTS.crashAt = undefined;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

async function texts(mq: Mq, topic: string): Promise<string[]> {
  const out: string[] = [];
  for await (const m of mq.subscribe(topic, { follow: false })) out.push(m.text());
  return out;
}

async function journals(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(`${dir}/tx`)) out.push(e.name.replace(/^.*\./, "."));
  } catch { /* none */ }
  return out.sort();
}

/**
 * Commits one transaction that crashes at `at`: two outputs to `a` (one
 * large enough for several frames), one to `b`, and the ack of the input.
 */
async function crashedTransaction(dir: string, at: "commit-point" | "first-part"): Promise<Mq> {
  const mq = new Mq(await FsAdapter.open(dir));
  await mq.publish("in", "job");
  const sub = mq.subscribe("in", { group: "g", follow: false });
  const [m] = (await sub.take(1))!;
  TX_FAULTS.crashAt = at;
  await rejects(
    mq.transaction((tx) => {
      tx.publish("a", "a1");
      tx.publish("a", new Uint8Array(300_000).fill(120));
      tx.publish("b", "b1");
      tx.ack(m);
    }),
    /crash \(test\)/,
  );
  TX_FAULTS.crashAt = undefined;
  await sub.detach();
  return mq;
}

for (const at of ["commit-point", "first-part"] as const) {
  Deno.test(`fs transactions: a crash at the ${at} is rolled forward by the next open, once`, () =>
    withDir(async (dir) => {
      const crashed = await crashedTransaction(dir, at);
      eq(await journals(dir), [".commit"]);
      // Readers before the roll-forward: at most what the crash left.
      eq((await texts(crashed, "b")).length, 0);
      const mq = new Mq(await FsAdapter.open(dir));
      try {
        eq(await journals(dir), []);
        eq((await texts(mq, "a")).map((t) => t.length), [2, 300_000]);
        eq(await texts(mq, "b"), ["b1"]);
        const info = await mq.topics.info("in");
        eq(info.groups.map((g) => [g.name, g.lag, g.inFlight]), [["g", 0, 0]]);
        // Opening again changes nothing.
        const again = new Mq(await FsAdapter.open(dir));
        eq((await texts(again, "a")).length, 2);
        await again.close();
      } finally {
        await mq.close();
        await crashed.close();
      }
    }));
}

Deno.test("fs transactions: a writer that meets a crashed commit finishes it first (same folder, no reopen)", () =>
  withDir(async (dir) => {
    const crashed = await crashedTransaction(dir, "first-part");
    // Another client already open (as another process would be) appends to b
    // and acks in the group: the journal is finished first, then its write.
    const other = new Mq(await FsAdapter.open(`${dir}/`));
    try {
      await crashed.publish("b", "b2");
      eq(await texts(other, "b"), ["b1", "b2"]);
      eq(await journals(dir), []);
      eq((await texts(other, "a")).length, 2);
      const g = (await other.topics.info("in")).groups[0];
      eq([g.lag, g.inFlight], [0, 0]);
    } finally {
      await other.close();
      await crashed.close();
    }
  }));

Deno.test("fs transactions: a journal never committed (a crash before the commit point) leaves nothing", () =>
  withDir(async (dir) => {
    const mq = new Mq(await FsAdapter.open(dir));
    await mq.publish("a", "before");
    await Deno.mkdir(`${dir}/tx`, { recursive: true });
    await Deno.writeFile(`${dir}/tx/0-1-0-x.tmp`, new Uint8Array([1, 2, 3]));
    await mq.close();
    const again = new Mq(await FsAdapter.open(dir));
    try {
      eq(await texts(again, "a"), ["before"]);
      await again.publish("a", "after");
      eq(await texts(again, "a"), ["before", "after"]);
      eq(await journals(dir), [".tmp"]);
    } finally {
      await again.close();
    }
  }));

Deno.test("fs transactions: a rolled-forward commit keeps the high-water mark; its offsets are never handed out again", () =>
  withDir(async (dir) => {
    const crashed = await crashedTransaction(dir, "first-part");
    const adapter = await FsAdapter.open(dir);
    const mq = new Mq(adapter);
    try {
      eq(await journals(dir), []);
      // The marks cover every record the commit wrote (a: 2, b: 1).
      eq(await readHighWater(partitionDir(dir, "a", 0)), 2);
      eq(await readHighWater(partitionDir(dir, "b", 0)), 1);
      // The segment of b is lost after the commit (cut to nothing): the
      // next append goes on after the mark instead of reusing offset 0.
      await Deno.truncate(`${partitionDir(dir, "b", 0)}/${segmentName(0)}`, 0);
      const fresh = new Mq(await FsAdapter.open(dir));
      try {
        const first = await adapterOf(fresh).append(
          "b",
          0,
          batchOf([new TextEncoder().encode("b2")]),
        );
        eq(first, 1);
      } finally {
        await fresh.close();
      }
    } finally {
      await mq.close();
      await crashed.close();
    }
  }));
