/** Conformance cases: groups, leases, retries, dead letters, delay, TTL, dedup, retention, ordering. Run against every adapter by `conformance.ts`. */
import { deepStrictEqual as eq, ok, rejects } from "node:assert/strict";
import { Mq } from "../../core/client.ts";
import type { ReceivedMessage } from "../../core/message.ts";
import { code, type DefineCase, drain, texts, topicName } from "./_helpers.ts";

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
    let now = 1_000_000;
    const mq = new Mq(await features.open(), { now: () => now });
    try {
      const t = topicName("lease");
      await mq.publish(t, "x");
      const s1 = mq.subscribe(t, { group: "g", visibilityMs: 1000, follow: false });
      const [m1] = (await s1.take(1))!;
      await s1.detach();
      eq(m1.attempt, 1);
      eq(await mq.peek(t, { group: "g" }), [], "leased: not offered to others");
      now += 1001;
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

  test("delayed messages wait; a cancelled one is never delivered", async (mq) => {
    const t = topicName("delay");
    await mq.publish(t, "later", { delayMs: 300, id: "d1" });
    await mq.publish(t, "never", { delayMs: 300, id: "d2" });
    await mq.publish(t, "now");
    eq((await drain(mq, t, "g")).map((m) => m.text()), ["now"]);
    eq(await mq.cancel(t, "d2"), true);
    eq(await mq.cancel(t, "d2"), false);
    eq((await mq.topics.groups(t))[0].delayed, 2);
    await new Promise((r) => setTimeout(r, 350));
    eq((await drain(mq, t, "g")).map((m) => m.text()), ["later"]);
  });

  test("an expired message is never delivered and is counted", async (mq) => {
    const t = topicName("ttl");
    await mq.publish(t, "short", { ttlMs: 1 });
    await mq.publish(t, "long", { ttlMs: 60_000 });
    await new Promise((r) => setTimeout(r, 20));
    eq((await drain(mq, t, "g")).map((m) => m.text()), ["long"]);
    eq((await mq.topics.groups(t))[0].expired, 1);
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
}
