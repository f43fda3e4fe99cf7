/** Conformance cases: groups, leases, retries, dead letters, delay, TTL, dedup, retention, ordering. Run against every adapter by `conformance.ts`. */
import { deepStrictEqual as eq, ok, rejects } from "node:assert/strict";
import { Mq } from "../../core/client.ts";
import { ManualClock } from "../../core/clock.ts";
import type { ReceivedMessage } from "../../core/message.ts";
import { batchOf } from "../../core/record.ts";
import { code, dec, type DefineCase, drain, type Features, texts, topicName } from "./_helpers.ts";
import { adapterOf } from "../../core/internal.ts";

/** Registers the cases. */
export function groupCases(test: DefineCase): void {
  // --- groups -----------------------------------------------------------------
  test("competing consumers of one group split the messages, none twice, none missing", async (mq) => {
    const t = topicName("compete");
    await mq.publishBatch(t, Array.from({ length: 300 }, (_, i) => String(i)));
    const seen: string[] = [];
    const worker = async () => {
      const sub = mq.subscribe(t, { group: "g", follow: false, batchSize: 7 });
      for await (const b of sub.batches()) {
        for (const m of b) {
          seen.push(m.text());
          m.ack();
        }
        await new Promise((r) => setTimeout(r, 1));
      }
    };
    await Promise.all([worker(), worker(), worker()]);
    eq(seen.length, 300);
    eq(new Set(seen).size, 300);
  });

  test("every group gets every message (fan-out)", async (mq) => {
    const t = topicName("fanout");
    await mq.publishBatch(t, ["a", "b"]);
    eq((await drain(mq, t, "g1")).map((m) => m.text()), ["a", "b"]);
    eq((await drain(mq, t, "g2")).map((m) => m.text()), ["a", "b"]);
    eq(await drain(mq, t, "g1"), []);
  });

  test("unacked messages of a closed subscription go to the next consumer at once", async (mq) => {
    const t = topicName("release");
    await mq.publishBatch(t, ["a", "b", "c"]);
    const sub = mq.subscribe(t, { group: "g" });
    const first = await sub.take(3);
    first![0].ack();
    await sub.close();
    const again = await drain(mq, t, "g");
    eq(again.map((m) => [m.text(), m.attempt]), [["b", 1], ["c", 1]]);
  });

  test("an expired lease is delivered again with the next attempt", async (_mq, features) => {
    const clock = new ManualClock(1_000_000);
    const mq = new Mq(await features.open(), { clock });
    try {
      const t = topicName("lease");
      await mq.publish(t, "x");
      const s1 = mq.subscribe(t, { group: "g", visibilityMs: 1000, follow: false });
      const [m1] = (await s1.take(1))!;
      await s1.detach();
      eq(m1.attempt, 1);
      eq(await mq.peek(t, { group: "g" }), [], "leased: not offered to others");
      await clock.advance(1001);
      const [m2] = await drain(mq, t, "g");
      eq([m2.text(), m2.attempt], ["x", 2]);
    } finally {
      await mq.close();
    }
  });

  test("out-of-order acks move the group only over what is settled", async (mq) => {
    const t = topicName("ooo");
    await mq.publishBatch(t, ["0", "1", "2", "3"]);
    const sub = mq.subscribe(t, { group: "g" });
    const ms = (await sub.take(4))!;
    for (const i of [3, 1, 2]) ms[i].ack();
    await sub.commit();
    eq((await mq.topics.groups(t))[0].lag, 1);
    ms[0].ack();
    await sub.commit();
    const [g] = await mq.topics.groups(t);
    eq([g.lag, g.inFlight, g.partitions[0].floor], [0, 0, 4]);
    await sub.close();
  });

  test("nack redelivers after the delay; after max attempts the message is dead-lettered with headers", async (mq) => {
    const t = topicName("dlq");
    await mq.topics.create(t, { maxAttempts: 2 });
    await mq.publish(t, "bad", { key: "k" });
    await mq.publish(t, "good");
    const seen: string[] = [];
    const r = await mq.consume(
      t,
      { group: "g", follow: false, backoff: { baseMs: 5, maxMs: 10 } },
      (m) => {
        seen.push(`${m.text()}#${m.attempt}`);
        if (m.text() === "bad") throw new Error("boom");
      },
    );
    eq(r, { acked: 1, failed: 2 });
    eq(seen.sort(), ["bad#1", "bad#2", "good#1"]);
    const [d] = await texts(mq, `${t}.dlq`).then(async (x) => {
      const out: ReceivedMessage[] = [];
      for await (const m of mq.subscribe(`${t}.dlq`, { follow: false })) out.push(m);
      eq(x, ["bad"]);
      return out;
    });
    eq(d.key, "k");
    eq(
      [
        d.headers["mq-dlq-reason"],
        d.headers["mq-dlq-attempts"],
        d.headers["mq-dlq-topic"],
        d.headers["mq-dlq-offset"],
      ],
      ["boom", "2", t, "0"],
    );
    const [g] = await mq.topics.groups(t);
    eq([g.lag, g.deadLettered], [0, 1]);
  });

  test("delayed messages wait; a cancelled one is never delivered", async (_mq, features) => {
    // On a clock of the test's: an hour's delay, no real waiting.
    const clock = new ManualClock(Date.now());
    const mq = new Mq(await features.open(), { clock });
    try {
      const t = topicName("delay");
      await mq.publish(t, "later", { delayMs: 3_600_000, id: "d1" });
      await mq.publish(t, "never", { delayMs: 3_600_000, id: "d2" });
      await mq.publish(t, "now");
      eq((await drain(mq, t, "g")).map((m) => m.text()), ["now"]);
      eq(await mq.cancel(t, "d2"), true);
      eq(await mq.cancel(t, "d2"), false);
      eq((await mq.topics.groups(t))[0].delayed, 2);
      await clock.advance(3_600_000 - 1);
      eq((await drain(mq, t, "g")).map((m) => m.text()), [], "not yet");
      await clock.advance(1);
      eq((await drain(mq, t, "g")).map((m) => m.text()), ["later"]);
    } finally {
      await mq.close();
    }
  });

  test("an expired message is never delivered and is counted", async (_mq, features) => {
    const clock = new ManualClock(Date.now());
    const mq = new Mq(await features.open(), { clock });
    try {
      const t = topicName("ttl");
      await mq.publish(t, "short", { ttlMs: 60_000 });
      await mq.publish(t, "long", { ttlMs: 3_600_000 });
      await clock.advance(60_000);
      eq((await drain(mq, t, "g")).map((m) => m.text()), ["long"]);
      eq((await mq.topics.groups(t))[0].expired, 1);
    } finally {
      await mq.close();
    }
  });

  test("an id seen within the dedup window is stored once, and again after it", async (mq) => {
    const t = topicName("dedup");
    await mq.topics.create(t, { dedupWindowMs: 200 });
    eq((await mq.publish(t, "a", { id: "x" })).duplicate, false);
    eq((await mq.publish(t, "b", { id: "x" })).duplicate, true);
    eq(
      (await mq.publishBatch(t, [{ payload: "c", id: "y" }, { payload: "d", id: "y" }])).duplicates,
      1,
    );
    await new Promise((r) => setTimeout(r, 250));
    eq((await mq.publish(t, "e", { id: "x" })).duplicate, false);
    eq(await texts(mq, t), ["a", "c", "e"]);
  });

  test("retention by count: drop-oldest keeps the newest, reject refuses with TOPIC_FULL", async (mq) => {
    const t = topicName("keep");
    await mq.topics.create(t, { maxMessages: 3 });
    await mq.publishBatch(t, ["1", "2", "3", "4", "5"]);
    const got = await texts(mq, t);
    ok(got.length >= 3 && got.slice(-3).join() === "3,4,5", got.join());
    const r = topicName("reject");
    await mq.topics.create(r, { maxMessages: 2, overflow: "reject" });
    await mq.publishBatch(r, ["1", "2"]);
    await rejects(mq.publish(r, "3"), code("TOPIC_FULL"));
    eq(await texts(mq, r), ["1", "2"]);
  });

  test("receipts: ack once; a second ack or a garbage receipt is refused and changes nothing", async (mq) => {
    const t = topicName("receipt");
    await mq.publishBatch(t, ["a", "b"]);
    const sub = mq.subscribe(t, { group: "g", follow: false });
    const [m] = (await sub.take(1))!;
    await sub.detach();
    eq((await mq.peek(t, { group: "g" })).map((x) => x.text()), ["b"]);
    await mq.ack(t, m.receipt!);
    const before = JSON.stringify(await mq.topics.groups(t));
    await rejects(mq.ack(t, m.receipt!), code("INVALID_ARGUMENT"));
    await rejects(mq.nack(t, "garbage"), code("INVALID_ARGUMENT"));
    eq(JSON.stringify(await mq.topics.groups(t)), before);
    const s2 = mq.subscribe(t, { group: "g", follow: false });
    const [n] = (await s2.take(1))!;
    await s2.detach();
    await mq.nack(t, n.receipt!, { delayMs: 0 });
    eq((await drain(mq, t, "g")).map((x) => [x.text(), x.attempt]), [["b", 2]]);
  });

  test("ordered: one message per key in flight, keys in parallel, order kept", async (mq) => {
    const t = topicName("ordered");
    await mq.publishBatch(
      t,
      Array.from({ length: 30 }, (_, i) => ({ payload: String(i), key: `k${i % 3}` })),
    );
    const busy = new Set<string>();
    const seen: Record<string, number[]> = {};
    let overlap = 0;
    await mq.consume(
      t,
      { group: "g", concurrency: 4, prefetch: 6, follow: false, ordered: true },
      async (m) => {
        if (busy.has(m.key!)) overlap++;
        busy.add(m.key!);
        await new Promise((r) => setTimeout(r, 2));
        busy.delete(m.key!);
        (seen[m.key!] ??= []).push(Number(m.text()));
      },
    );
    eq(overlap, 0);
    for (const k of ["k0", "k1", "k2"]) eq(seen[k], [...seen[k]].sort((a, b) => a - b));
    eq(Object.values(seen).flat().length, 30);
  });

  test("group reset moves a group back", async (mq) => {
    const t = topicName("reset");
    await mq.publishBatch(t, ["a", "b"]);
    await drain(mq, t, "g");
    await mq.topics.resetGroup(t, "g", "beginning");
    eq((await drain(mq, t, "g")).map((m) => m.text()), ["a", "b"]);
    await mq.topics.resetGroup(t, "g", 1);
    eq((await drain(mq, t, "g")).map((m) => m.text()), ["b"]);
  });
  // --- time rules, on an injected clock -----------------------------------------
  test(
    "ttl: an expired message is dead-lettered when the topic says so, and counted",
    async (_mq, f) => {
      const { mq, clock } = await clocked(f);
      try {
        const t = topicName("ttl-dlq");
        await mq.topics.create(t, { deadLetterExpired: true });
        await mq.publish(t, "short", { ttlMs: 1000, id: "s1", key: "k" });
        await mq.publish(t, "long", { ttlMs: 60_000 });
        const plain = topicName("ttl-plain");
        await mq.publish(plain, "short", { ttlMs: 1000 });
        clock.now += 999;
        eq(await peekTexts(mq, t), ["short", "long"]);
        clock.now += 1;
        eq((await drainNow(mq, t, "g")).map((m) => m.text()), ["long"]);
        const [d, ...more] = await readAll(mq, `${t}.dlq`);
        eq(more, []);
        eq([d.text(), d.id, d.key], ["short", "s1", "k"]);
        eq(dlqHeaders(d), {
          "mq-dlq-reason": "expired (ttl)",
          "mq-dlq-attempts": "0",
          "mq-dlq-topic": t,
          "mq-dlq-partition": "0",
          "mq-dlq-offset": "0",
          "mq-dlq-first-failure": iso(clock.now),
          "mq-dlq-last-failure": iso(clock.now),
        });
        const [g] = await mq.topics.groups(t);
        eq([g.lag, g.expired, g.deadLettered], [0, 1, 1]);
        // Without the setting an expired message is counted, not dead-lettered.
        eq(await drainNow(mq, plain, "g"), []);
        eq((await mq.topics.groups(plain))[0].expired, 1);
        eq(await mq.topicConfig(`${plain}.dlq`), undefined);
      } finally {
        await mq.close();
      }
    },
  );

  test(
    "retention by age: older messages are neither read, peeked nor delivered, before any trim",
    async (_mq, f) => {
      const { mq, clock } = await clocked(f);
      try {
        const t = topicName("age");
        const t0 = clock.now;
        await mq.topics.create(t, { retentionAgeMs: 10_000 });
        clock.now += 5000;
        await mq.publishBatch(t, [
          { payload: "old", timestamp: t0 },
          { payload: "new", timestamp: t0 + 5000 },
        ]);
        eq(await texts(mq, t), ["old", "new"]);
        clock.now = t0 + 10_001; // no publish since: nothing was trimmed
        eq(await texts(mq, t), ["new"]);
        eq(await peekTexts(mq, t), ["new"]);
        eq((await drainNow(mq, t, "g")).map((m) => m.text()), ["new"]);
        clock.now = t0 + 15_001;
        eq(await texts(mq, t), []);
        eq(await peekTexts(mq, t, "g2"), []);
        eq(await drainNow(mq, t, "g2"), []);
        const [, g2] = await mq.topics.groups(t);
        eq([g2.name, g2.lag, g2.expired], ["g2", 0, 0]);
      } finally {
        await mq.close();
      }
    },
  );

  test("the default dedup window is 2 minutes", async (_mq, f) => {
    const { mq, clock } = await clocked(f);
    try {
      const t = topicName("dedup-default");
      // Two partitions: the core keeps the window (a broker's own dedup runs on its clock).
      await mq.topics.create(t, { partitions: 2 });
      eq((await mq.topicConfig(t))!.dedupWindowMs, 120_000);
      eq((await mq.publish(t, "a", { id: "x", partition: 0 })).duplicate, false);
      clock.now += 119_999;
      eq((await mq.publish(t, "b", { id: "x", partition: 0 })).duplicate, true);
      clock.now += 1;
      eq((await mq.publish(t, "c", { id: "x", partition: 0 })).duplicate, false);
      eq(await texts(mq, t), ["a", "c"]);
    } finally {
      await mq.close();
    }
  });

  test("an expired receipt is refused and changes nothing", async (_mq, f) => {
    const { mq, clock } = await clocked(f);
    try {
      const t = topicName("receipt-expired");
      await mq.publish(t, "x");
      const [m] = await takeNow(mq, t, "g", { visibilityMs: 1000 });
      clock.now += 1000;
      const before = await groupDoc(mq, t, "g");
      await rejects(
        mq.ack(t, m.receipt!),
        (e) => code("INVALID_ARGUMENT")(e) && /expired/.test((e as Error).message),
      );
      await rejects(mq.nack(t, m.receipt!, { delayMs: 0 }), code("INVALID_ARGUMENT"));
      eq(await groupDoc(mq, t, "g"), before);
      const [again] = await takeNow(mq, t, "g");
      eq([again.text(), again.attempt], ["x", 2]);
    } finally {
      await mq.close();
    }
  });

  test(
    "nack with a delay holds the message back until then (in a subscription and by receipt)",
    async (_mq, f) => {
      const { mq, clock } = await clocked(f);
      try {
        const t = topicName("nack-delay");
        await mq.publish(t, "x");
        const sub = mq.subscribe(t, { group: "g", follow: false, awaitInFlight: false });
        const [m] = (await sub.take(1))!;
        m.nack({ delayMs: 5000 });
        await sub.close();
        clock.now += 4999;
        eq(await peekTexts(mq, t), []);
        eq(await takeNow(mq, t, "g"), []);
        clock.now += 1;
        const [m2] = await takeNow(mq, t, "g");
        eq([m2.text(), m2.attempt], ["x", 2]);
        await mq.nack(t, m2.receipt!, { delayMs: 3000 });
        clock.now += 2999;
        eq(await takeNow(mq, t, "g"), []);
        clock.now += 1;
        eq((await takeNow(mq, t, "g")).map((x) => [x.text(), x.attempt]), [["x", 3]]);
      } finally {
        await mq.close();
      }
    },
  );

  test("backoff grows exponentially, with jitter, within its bounds", async (_mq, f) => {
    const { mq, clock } = await clocked(f);
    try {
      const t = topicName("backoff");
      await mq.publish(t, "x");
      const backoff = { baseMs: 1000, maxMs: 4000 };
      const delays: number[] = [];
      for (let attempt = 1; attempt <= 5; attempt++) {
        const sub = mq.subscribe(t, {
          group: "g",
          follow: false,
          awaitInFlight: false,
          backoff,
          maxAttempts: 10,
        });
        const [m] = (await sub.take(1))!;
        eq(m.attempt, attempt);
        const failedAt = clock.now;
        m.nack();
        await sub.close();
        // The earliest time it is offered again (binary search over the clock).
        let lo = failedAt, hi = failedAt + 60_000;
        while (lo < hi) {
          clock.now = Math.floor((lo + hi) / 2);
          if ((await mq.peek(t, { group: "g" })).length > 0) hi = clock.now;
          else lo = clock.now + 1;
        }
        clock.now = lo;
        delays.push(lo - failedAt);
      }
      const caps = [1000, 2000, 4000, 4000, 4000];
      delays.forEach((d, i) => ok(d >= caps[i] / 2 && d <= caps[i], `delays ${delays}`));
      ok(delays.some((d, i) => d < caps[i]), `jitter: delays ${delays}`);
    } finally {
      await mq.close();
    }
  });

  test("dead letter headers say why, how often, where from and when", async (_mq, f) => {
    const { mq, clock } = await clocked(f);
    try {
      const t = topicName("dlq-headers");
      await mq.topics.create(t, { partitions: 2, maxAttempts: 2 });
      await mq.publishBatch(t, [
        { payload: "pad", partition: 1 },
        { payload: "x", partition: 1, key: "k", headers: { trace: "abc" } },
      ]);
      const options = {
        group: "g",
        follow: false,
        awaitInFlight: false,
        backoff: { baseMs: 1000, maxMs: 1000 },
      };
      const s1 = mq.subscribe(t, options);
      const [pad, x] = (await s1.take(2))!;
      const firstFailure = clock.now += 10;
      pad.ack();
      x.nack({ reason: "exit code 3" });
      await s1.close();
      clock.now += 1000;
      const s2 = mq.subscribe(t, options);
      const [x2] = (await s2.take(1))!;
      eq([x2.text(), x2.attempt], ["x", 2]);
      const lastFailure = clock.now += 4000;
      x2.nack({ reason: "exit code 4" });
      await s2.close();
      const [d, ...more] = await readAll(mq, `${t}.dlq`);
      eq(more, []);
      eq([d.text(), d.id, d.key, d.headers.trace], ["x", "1-1", "k", "abc"]);
      eq(dlqHeaders(d), {
        "mq-dlq-reason": "exit code 4",
        "mq-dlq-attempts": "2",
        "mq-dlq-topic": t,
        "mq-dlq-partition": "1",
        "mq-dlq-offset": "1",
        "mq-dlq-first-failure": iso(firstFailure),
        "mq-dlq-last-failure": iso(lastFailure),
      });
      const [g] = await mq.topics.groups(t);
      eq([g.lag, g.inFlight, g.retrying, g.deadLettered], [0, 0, 0, 1]);
    } finally {
      await mq.close();
    }
  });

  test("an expired lease on the last attempt goes to the dead-letter topic", async (_mq, f) => {
    const { mq, clock } = await clocked(f);
    try {
      const t = topicName("lease-dlq");
      await mq.topics.create(t, { maxAttempts: 2 });
      await mq.publish(t, "x");
      const t0 = clock.now;
      eq((await takeNow(mq, t, "g", { visibilityMs: 1000 })).map((m) => m.attempt), [1]);
      clock.now += 1000;
      eq((await takeNow(mq, t, "g", { visibilityMs: 1000 })).map((m) => m.attempt), [2]);
      clock.now += 1000;
      eq(await drainNow(mq, t, "g"), []);
      const [d, ...more] = await readAll(mq, `${t}.dlq`);
      eq(more, []);
      eq(d.text(), "x");
      eq(dlqHeaders(d), {
        "mq-dlq-reason": "lease expired (visibility timeout) on the last attempt",
        "mq-dlq-attempts": "2",
        "mq-dlq-topic": t,
        "mq-dlq-partition": "0",
        "mq-dlq-offset": "0",
        "mq-dlq-first-failure": iso(t0 + 1000),
        "mq-dlq-last-failure": iso(t0 + 2000),
      });
      const [g] = await mq.topics.groups(t);
      eq([g.lag, g.inFlight, g.deadLettered], [0, 0, 1]);
    } finally {
      await mq.close();
    }
  });

  test("a dead letter that fails again after a replay is dead-lettered again, not dropped as a duplicate", async (mq) => {
    const t = topicName("dlq-twice");
    await mq.topics.create(t, { maxAttempts: 1 });
    await mq.publish(t, "x", { id: "job-1" });
    const fail = () => {
      throw new Error("boom");
    };
    await mq.consume(t, { group: "g", follow: false }, fail);
    const [d] = await readAll(mq, `${t}.dlq`);
    eq(d.id, "job-1");
    // A replay keeps the id, and is not taken for a duplicate of the original.
    const replay = await mq.publishRecords(
      t,
      batchOf([d.payload], [{ id: d.id, key: d.key }]),
      { deduplicate: false },
    );
    eq(replay.count, 1);
    await mq.consume(t, { group: "g", follow: false }, fail);
    eq((await readAll(mq, `${t}.dlq`)).map((m) => [m.text(), m.id]), [["x", "job-1"], [
      "x",
      "job-1",
    ]]);
  });

  test("take without waiting: nothing deliverable now ends at once", async (_mq, f) => {
    const { mq } = await clocked(f);
    try {
      const t = topicName("take-now");
      await mq.publish(t, "x");
      const [m] = await takeNow(mq, t, "g");
      // Leased to someone else.
      eq(await within(2000, takeNow(mq, t, "g")), []);
      // Waiting for its retry.
      await mq.nack(t, m.receipt!, { delayMs: 60_000 });
      eq(await within(2000, takeNow(mq, t, "g")), []);
      // Delayed.
      const d = topicName("take-delayed");
      await mq.publish(d, "later", { delayMs: 60_000 });
      eq(await within(2000, takeNow(mq, d, "g")), []);
    } finally {
      await mq.close();
    }
  });

  test("groups count as delayed only messages whose time has not come", async (_mq, f) => {
    const { mq, clock } = await clocked(f);
    try {
      const t = topicName("delayed-count");
      await mq.publish(t, "later", { delayMs: 5000 });
      await mq.publish(t, "now");
      const sub = mq.subscribe(t, { group: "g", follow: false, awaitInFlight: false });
      eq((await sub.take(10))!.map((m) => m.text()), ["now"]);
      await sub.close(); // "now" released unsettled: waiting, but not delayed
      let [g] = await mq.topics.groups(t);
      eq([g.lag, g.inFlight, g.retrying, g.delayed], [2, 0, 0, 1]);
      clock.now += 5000;
      [g] = await mq.topics.groups(t);
      eq([g.lag, g.delayed], [2, 0]);
    } finally {
      await mq.close();
    }
  });

  test("group reset --to end and --to a time", async (_mq, f) => {
    const { mq, clock } = await clocked(f);
    try {
      const t = topicName("reset-to");
      const t0 = clock.now;
      await mq.publishBatch(t, [
        { payload: "a", timestamp: t0 },
        { payload: "b", timestamp: t0 + 500 },
        { payload: "c", timestamp: t0 + 1000 },
        { payload: "d", timestamp: t0 + 2000 },
      ]);
      await mq.topics.resetGroup(t, "g", new Date(t0 + 1000));
      eq((await drainNow(mq, t, "g")).map((m) => m.text()), ["c", "d"]);
      await mq.topics.resetGroup(t, "g", new Date(t0 + 600));
      eq((await drainNow(mq, t, "g")).map((m) => m.text()), ["c", "d"]);
      await mq.topics.resetGroup(t, "g", "beginning");
      await mq.topics.resetGroup(t, "g", "end");
      eq(await drainNow(mq, t, "g"), []);
      await mq.publish(t, "e");
      eq((await drainNow(mq, t, "g")).map((m) => m.text()), ["e"]);
      const [g] = await mq.topics.groups(t);
      eq([g.lag, g.partitions[0].floor], [0, 5]);
    } finally {
      await mq.close();
    }
  });

  test("peek skips cancelled delayed messages", async (_mq, f) => {
    const { mq, clock } = await clocked(f);
    try {
      const t = topicName("peek-cancel");
      await mq.publish(t, "cancelled", { delayMs: 1000, id: "d1" });
      await mq.publish(t, "kept", { delayMs: 1000, id: "d2" });
      await mq.publish(t, "now");
      eq(await peekTexts(mq, t), ["now"]);
      eq(await mq.cancel(t, "d1"), true);
      clock.now += 1000;
      eq(await peekTexts(mq, t), ["kept", "now"]);
      eq(await peekTexts(mq, t, "g", 1), ["kept"]);
      eq((await drainNow(mq, t, "g")).map((m) => m.text()), ["now", "kept"].sort());
    } finally {
      await mq.close();
    }
  });

  test("a cancel holds for a delay of more than a day", async (_mq, f) => {
    const { mq, clock } = await clocked(f);
    try {
      const t = topicName("cancel-far");
      const hour = 3_600_000;
      await mq.publish(t, "far", { delayMs: 48 * hour, id: "far" });
      clock.now += hour;
      eq(await mq.cancel(t, "far"), true);
      // A day and more later, other delays and cancels come and go.
      clock.now += 25 * hour;
      await mq.publish(t, "near", { delayMs: hour, id: "near" });
      await mq.publish(t, "other", { delayMs: hour, id: "other" });
      eq(await mq.cancel(t, "other"), true);
      clock.now += 48 * hour;
      eq((await drainNow(mq, t, "g")).map((m) => m.text()), ["near"]);
      eq(await mq.cancel(t, "far"), false);
    } finally {
      await mq.close();
    }
  });

  // --- retention by bytes ---------------------------------------------------------
  test("retention by bytes: drop-oldest keeps the newest that fit, reject refuses what would not", async (mq) => {
    ok(adapterOf(mq).storedBytes, "retention by bytes needs the backend's storedBytes");
    const payload = (i: number) => `m${String(i).padStart(2, "0")}`.padEnd(100, ".");
    const ten = Array.from({ length: 10 }, (_, i) => payload(i));
    const last5 = ten.slice(5);
    // What one such record takes in this backend, published alone and in a batch.
    const one = topicName("bytes-ref1"), many = topicName("bytes-ref10");
    for (const p of ten) await mq.publish(one, p);
    await mq.publishBatch(many, ten);
    const sizeOne = (await adapterOf(mq).storedBytes!(one, 0)) / 10;
    const sizeInBatch = (await adapterOf(mq).storedBytes!(many, 0)) / 10;
    ok(sizeOne >= 100 && sizeInBatch >= 100, `${sizeOne}, ${sizeInBatch} bytes a record`);

    const t = topicName("bytes-drop");
    const limit = Math.floor(5.5 * sizeOne); // room for 5
    await mq.topics.create(t, { maxBytes: limit });
    for (const p of ten) await mq.publish(t, p);
    eq(await texts(mq, t), last5, "one at a time");
    const stored = await adapterOf(mq).storedBytes!(t, 0);
    ok(stored <= limit && stored + sizeOne > limit, `${stored} of ${limit}`);

    const b = topicName("bytes-batch");
    await mq.topics.create(b, { maxBytes: Math.floor(5.5 * sizeInBatch) });
    await mq.publishBatch(b, ten);
    eq(await texts(mq, b), last5, "in one batch");

    const r = topicName("bytes-reject");
    await mq.topics.create(r, { maxBytes: limit, overflow: "reject" });
    for (let i = 0; i < 5; i++) await mq.publish(r, payload(i));
    await rejects(mq.publish(r, payload(5)), code("TOPIC_FULL"));
    await rejects(mq.publishBatch(r, ["x"]), code("TOPIC_FULL"));
    eq(await texts(mq, r), ten.slice(0, 5));
  });
}

/** A second client on the backend, on a clock the case moves (a whole second to start). */
async function clocked(f: Features): Promise<{ mq: Mq; clock: { now: number } }> {
  const clock = { now: Math.floor(Date.now() / 1000) * 1000 };
  return { mq: new Mq(await f.open(), { now: () => clock.now }), clock };
}

/** Takes up to 10 messages deliverable now, leaving them leased (as `mq take` does). */
async function takeNow(
  mq: Mq,
  topic: string,
  group: string,
  options: { visibilityMs?: number } = {},
): Promise<ReceivedMessage[]> {
  const sub = mq.subscribe(topic, { group, follow: false, awaitInFlight: false, ...options });
  const got = (await within(10_000, sub.take(10))) ?? [];
  await sub.detach();
  return got;
}

/** Everything a group gets now, acked; without waiting for what is in flight or due later. */
async function drainNow(mq: Mq, topic: string, group: string): Promise<ReceivedMessage[]> {
  const out: ReceivedMessage[] = [];
  const sub = mq.subscribe(topic, { group, follow: false, awaitInFlight: false });
  await within(
    10_000,
    (async () => {
      for await (const b of sub.batches()) {
        out.push(...b);
        sub.ackAll(b);
      }
    })(),
  );
  return out.sort((a, b) => a.text() < b.text() ? -1 : 1);
}

/** What `mq peek` would show. */
async function peekTexts(mq: Mq, topic: string, group = "g", count = 10): Promise<string[]> {
  return (await mq.peek(topic, { group, count })).map((m) => m.text());
}

/** Every message of a topic, read without a group. */
async function readAll(mq: Mq, topic: string): Promise<ReceivedMessage[]> {
  const out: ReceivedMessage[] = [];
  for await (const m of mq.subscribe(topic, { follow: false })) out.push(m);
  return out;
}

/** The headers mq sets on a dead letter. */
function dlqHeaders(m: ReceivedMessage): Record<string, string> {
  return Object.fromEntries(Object.entries(m.headers).filter(([k]) => k.startsWith("mq-dlq-")));
}

/** A group's stored state document, as text. */
async function groupDoc(mq: Mq, topic: string, group: string): Promise<string> {
  const doc = await adapterOf(mq).getState(["groups", topic, group]);
  return doc ? dec.decode(doc.value) : "";
}

const iso = (ms: number) => new Date(ms).toISOString();

/** `p`, or a failure when it takes longer than `ms` (instead of a hang). */
function within<T>(ms: number, p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still waiting after ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
