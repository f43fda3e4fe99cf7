/** Plain reads (no group): several topics and patterns, last N, until, partitions, filters, idle. */
import { deepStrictEqual as eq, ok, throws } from "node:assert/strict";
import { Mq } from "../../core/client.ts";
import type { SubscribeOptions } from "../../core/subscription.ts";
import { code, dec, type DefineCase, type Features, topicName } from "./_helpers.ts";

/** What a plain read of `topics` shows, as `topic:partition:offset:payload`. */
async function read(
  mq: Mq,
  topics: string | string[],
  options: SubscribeOptions = {},
): Promise<string[]> {
  const out: string[] = [];
  const sub = mq.subscribe(topics, { follow: false, ...options });
  for await (const b of sub.batches()) {
    for (const m of b) out.push(`${m.topic}:${m.partition}:${m.offset}:${m.text()}`);
  }
  return out;
}

/** The same through `blocks()`, the columns a raw `mq sub` prints from. */
async function readBlocks(
  mq: Mq,
  topics: string | string[],
  options: SubscribeOptions = {},
): Promise<string[]> {
  const out: string[] = [];
  for await (const b of mq.subscribe(topics, { follow: false, ...options }).blocks()) {
    for (let i = 0; i < b.count; i++) {
      const payload = dec.decode(b.data.subarray(b.starts[i], b.ends[i]));
      out.push(`${b.topic}:${b.partition}:${b.offsets[i]}:${payload}`);
    }
  }
  return out;
}

async function clocked(f: Features): Promise<{ mq: Mq; clock: { now: number } }> {
  const clock = { now: Math.floor(Date.now() / 1000) * 1000 };
  return { mq: new Mq(await f.open(), { now: () => clock.now }), clock };
}

/** Registers the cases of plain reads. */
export function readingCases(test: DefineCase): void {
  test("plain read of several topics and patterns (* one word, # any words)", async (mq) => {
    const base = topicName("rd");
    for (const t of ["orders.eu", "orders.us", "orders.eu.x", "logs", "logs.app.err", "other"]) {
      await mq.publish(`${base}.${t}`, t);
    }
    const got = await read(mq, [`${base}.orders.*`, `${base}.logs.#`, `${base}.other`]);
    eq(got.sort(), [
      `${base}.logs.app.err:0:0:logs.app.err`,
      `${base}.logs:0:0:logs`,
      `${base}.orders.eu:0:0:orders.eu`,
      `${base}.orders.us:0:0:orders.us`,
      `${base}.other:0:0:other`,
    ]);
    eq((await readBlocks(mq, [`${base}.orders.*`])).sort(), [
      `${base}.orders.eu:0:0:orders.eu`,
      `${base}.orders.us:0:0:orders.us`,
    ]);
    throws(() => mq.subscribe(["a/b"]), code("INVALID_NAME"));
    throws(() => mq.subscribe([`${base}.*`], { group: "g" }), code("INVALID_ARGUMENT"));
    throws(() => mq.subscribe(`${base}.other`, { group: "g", last: 1 }), code("INVALID_ARGUMENT"));
  });

  test("following a pattern picks up a topic made later", async (mq) => {
    const base = topicName("rdnew");
    await mq.publish(`${base}.a`, "first");
    const got: string[] = [];
    const sub = mq.subscribe([`${base}.*`], { count: 3 });
    const done = (async () => {
      for await (const m of sub) got.push(`${m.topic}:${m.text()}`);
    })();
    await mq.topics.create(`${base}.b`, { partitions: 2 });
    await mq.publishBatch(`${base}.b`, [{ payload: "b0", partition: 1 }]);
    await mq.publish(`${base}.c`, "c0");
    const timer = setTimeout(() => sub.close(), 15_000);
    await done;
    clearTimeout(timer);
    eq(got.sort(), [`${base}.a:first`, `${base}.b:b0`, `${base}.c:c0`]);
  });

  test("last N over all partitions by time; then following; until; partitions", async (mq) => {
    const t = topicName("rdlast");
    await mq.topics.create(t, { partitions: 3 });
    const t0 = Date.now() - 10_000;
    // Six messages in time order, spread over the partitions out of order.
    const spread = [2, 0, 1, 2, 0, 1];
    for (let i = 0; i < 6; i++) {
      await mq.publishBatch(t, [{
        payload: `m${i}`,
        timestamp: t0 + i * 100,
        partition: spread[i],
      }]);
    }
    const payloads = (lines: string[]) => lines.map((l) => l.split(":").at(-1));
    eq(payloads(await read(mq, t, { last: 4 })), ["m2", "m3", "m4", "m5"]);
    eq(payloads(await readBlocks(mq, t, { last: 2 })), ["m4", "m5"]);
    eq(payloads(await read(mq, t, { last: 4, count: 2, batchSize: 1 })), ["m2", "m3"]);
    eq(payloads(await read(mq, t, { last: 100 })), ["m0", "m1", "m2", "m3", "m4", "m5"]);
    eq(await read(mq, t, { last: 0 }), []);
    // The last 2 of partition 0 only; then, following, what comes next.
    eq(payloads(await read(mq, t, { last: 1, partitions: [0] })), ["m4"]);
    const follow = mq.subscribe(t, { last: 1, count: 2, partitions: [1] });
    const later = (async () => {
      const out: string[] = [];
      for await (const m of follow) out.push(m.text());
      return out;
    })();
    await mq.publishBatch(t, [{ payload: "skipped", partition: 0 }]);
    await mq.publishBatch(t, [{ payload: "new", partition: 1 }]);
    eq(await later, ["m5", "new"]);
    // until: an offset per partition (exclusive), a time, a span ago.
    eq(
      (await read(mq, t, { until: 1 })).sort(),
      [`${t}:0:0:m1`, `${t}:1:0:m2`, `${t}:2:0:m0`],
    );
    eq(payloads(await read(mq, t, { until: new Date(t0 + 250), partitions: [2, 0] })).sort(), [
      "m0",
      "m1",
    ]);
    eq(
      payloads(await read(mq, t, { from: new Date(t0 + 150), until: new Date(t0 + 350) })).sort(),
      [
        "m2",
        "m3",
      ],
    );
    eq(await read(mq, t, { until: { agoMs: 60_000 } }), []);
    // A following read ends by itself once every partition reached --until.
    const ended = await read(mq, t, { follow: true, until: 1, partitions: [1] });
    eq(ended, [`${t}:1:0:m2`]);
  });

  test("filters: key, headers (all must match), grep, invert", async (mq) => {
    const t = topicName("rdfilter");
    await mq.publishBatch(t, [
      { payload: "boot ok", key: "a", headers: { level: "info", app: "x" } },
      { payload: "disk error", key: "b", headers: { level: "error", app: "x" } },
      { payload: "net error", key: "a", headers: { level: "error", app: "y" } },
      { payload: Uint8Array.of(0xff, 0x65, 0x72, 0x72), key: "a" },
      { payload: "caf\u00e9 error" },
    ]);
    const p = (lines: string[]) => lines.map((l) => l.split(":").slice(3).join(":"));
    eq(p(await read(mq, t, { filter: { key: "a" } })), ["boot ok", "net error", "\ufffderr"]);
    eq(p(await read(mq, t, { filter: { headers: { level: "error", app: "x" } } })), [
      "disk error",
    ]);
    eq(p(await readBlocks(mq, t, { filter: { grep: /error$/ } })), [
      "disk error",
      "net error",
      "caf\u00e9 error",
    ]);
    eq(p(await read(mq, t, { filter: { grep: /^caf./ } })), ["caf\u00e9 error"]);
    eq(p(await read(mq, t, { filter: { grep: /err/g, key: "a" } })), ["net error", "\ufffderr"]);
    eq(p(await read(mq, t, { filter: { grep: /error/, invert: true } })), [
      "boot ok",
      "\ufffderr",
    ]);
    eq(p(await read(mq, t, { filter: { key: "a", headers: { level: "error" }, invert: true } })), [
      "boot ok",
      "disk error",
      "\ufffderr",
      "caf\u00e9 error",
    ]);
    throws(() => mq.subscribe(t, { group: "g", filter: { key: "a" } }), code("INVALID_ARGUMENT"));
  });

  test("a plain read skips cancelled and expired messages unless all", async (_mq, f) => {
    const { mq, clock } = await clocked(f);
    try {
      const t = topicName("rdskip");
      const t0 = clock.now;
      await mq.publish(t, "cancelled", { delayMs: 60_000, id: "c1" });
      await mq.publish(t, "delayed", { delayMs: 60_000, id: "d1" });
      await mq.publish(t, "short", { ttlMs: 1000 });
      await mq.publish(t, "plain");
      eq(await mq.cancel(t, "c1"), true);
      const p = (lines: string[]) => lines.map((l) => l.split(":").at(-1));
      eq(p(await read(mq, t)), ["delayed", "short", "plain"], "a delayed one keeps its place");
      clock.now += 1000;
      eq(p(await read(mq, t)), ["delayed", "plain"]);
      eq(p(await readBlocks(mq, t)), ["delayed", "plain"]);
      eq(p(await read(mq, t, { all: true })), ["cancelled", "delayed", "short", "plain"]);
      const [m] = await Array.fromAsync(mq.subscribe(t, { follow: false, count: 1, from: 1 }));
      eq([m.record.deliverAt, m.record.expiresAt], [t0 + 60_000, undefined]);
    } finally {
      await mq.close();
    }
  });

  test("idle ends a following read after that long with nothing new", async (mq) => {
    const t = topicName("rdidle");
    await mq.publish(t, "one");
    const started = performance.now();
    const got = await read(mq, t, { follow: true, idleMs: 300 });
    const took = performance.now() - started;
    eq(got, [`${t}:0:0:one`]);
    ok(took >= 290 && took < 5000, `ended after ${Math.round(took)} ms`);
    const empty = await read(mq, [`${t}-nothing.*`], { follow: true, idleMs: 200 });
    eq(empty, []);
  });
}
