/** Conformance cases: transactions (`mq.transaction`). Run against every adapter by `conformance.ts`. */
import { deepStrictEqual as eq, rejects } from "node:assert/strict";
import { Mq } from "../../core/client.ts";
import { code, type DefineCase, drain, texts, topicName } from "./_helpers.ts";
import { adapterOf } from "../../core/internal.ts";

/** Registers the cases. */
export function transactionCases(test: DefineCase): void {
  test(
    "the declared transaction capability matches the adapter; an empty transaction writes nothing",
    async (mq) => {
      // Declared atomic exactly where the adapter commits transactions itself.
      const declared = mq.capabilities.transactions;
      if (declared !== undefined) {
        eq(declared, adapterOf(mq).commitTransaction ? "atomic" : "effectively-once");
      }
      const empty = await mq.transaction(() => {});
      eq([empty.published, empty.acked, empty.written], [0, 0, []]);
    },
  );

  test("a transaction publishes to several topics and partitions and acks its inputs, together", async (mq) => {
    const input = topicName("tx-in"), a = topicName("tx-a"), b = topicName("tx-b");
    await mq.topics.create(b, { partitions: 3 });
    await mq.publishBatch(input, ["1", "2", "3"]);
    const sub = mq.subscribe(input, { group: "g", follow: false });
    const ms = (await sub.take(3))!;
    eq(ms.length, 3);
    const r = await mq.transaction((tx) => {
      for (const m of ms) {
        tx.publish(a, `a${m.text()}`);
        tx.publish(b, `b${m.text()}`, { key: `k${m.text()}` });
        tx.ack(m);
      }
    });
    await sub.close();
    eq([r.published, r.acked, r.nacked, r.duplicates], [6, 3, 0, 0]);
    eq(await texts(mq, a), ["a1", "a2", "a3"]);
    eq((await texts(mq, b)).sort(), ["b1", "b2", "b3"]);
    eq(new Set(r.written.filter((w) => w.topic === b).map((w) => w.partition)).size > 1, true);
    eq(await drain(mq, input, "g"), [], "the inputs are acked");
    const info = await mq.topics.info(input);
    eq(info.groups.map((g) => [g.name, g.lag, g.inFlight]), [["g", 0, 0]]);
  });

  test("a transaction whose callback throws writes nothing and gives its deliveries back", async (mq) => {
    const input = topicName("tx-abort-in"), out = topicName("tx-abort-out");
    await mq.publishBatch(input, ["x", "y"]);
    const sub = mq.subscribe(input, { group: "g", follow: false });
    const ms = (await sub.take(2))!;
    await rejects(
      mq.transaction((tx) => {
        tx.publish(out, "never");
        tx.ack(ms[0]);
        tx.ack(ms[1]);
        throw new Error("changed my mind");
      }),
      /changed my mind/,
    );
    eq(await texts(mq, out), []);
    // Given back: the consumer settles them itself.
    ms[0].ack();
    ms[1].nack({ delayMs: 0 });
    await sub.close();
    eq((await drain(mq, input, "g")).map((m) => [m.text(), m.attempt]), [["y", 2]]);
  });

  test("a refused message makes the whole transaction write nothing", async (mq) => {
    const input = topicName("tx-bad-in"),
      out = topicName("tx-bad-out"),
      out2 = topicName("tx-bad2");
    await mq.topics.create(out2, { maxMessageBytes: 10 });
    await mq.publish(input, "job");
    const sub = mq.subscribe(input, { group: "g", follow: false });
    const [m] = (await sub.take(1))!;
    await rejects(
      mq.transaction((tx) => {
        tx.publish(out, "fine");
        tx.publish(out2, "far more than ten bytes");
        tx.ack(m);
      }),
      (e: unknown) =>
        code("MESSAGE_TOO_LARGE")(e) && /message 2 of the transaction/.test(String(e)),
    );
    eq(await texts(mq, out), []);
    eq(await texts(mq, out2), []);
    await sub.close();
    eq((await drain(mq, input, "g")).map((m) => m.text()), ["job"], "not acked");
    await rejects(
      mq.transaction((tx) => tx.publish("../x", "y")),
      code("INVALID_NAME"),
    );
  });

  test("a transaction settles a delivery once: a second ack of it is refused", async (mq) => {
    const input = topicName("tx-twice");
    await mq.publish(input, "once");
    const sub = mq.subscribe(input, { group: "g", follow: false });
    const [m] = (await sub.take(1))!;
    await mq.transaction((tx) => tx.ack(m));
    await rejects(mq.transaction((tx) => tx.ack(m)), code("INVALID_ARGUMENT"));
    const plain = (await texts(mq, input)).length;
    eq(plain, 1);
    await sub.close();
    eq(await drain(mq, input, "g"), []);
  });

  test(
    "a transaction whose lease went to another consumer: one output per input all the same",
    async (_mq, f) => {
      let now = 1_000_000;
      const mq = new Mq(await f.open(), { now: () => now });
      try {
        const input = topicName("tx-lease-in"), out = topicName("tx-lease-out");
        await mq.publish(input, "job");
        const s1 = mq.subscribe(input, { group: "g", visibilityMs: 1000, follow: false });
        const [m1] = (await s1.take(1))!;
        now += 1001;
        const s2 = mq.subscribe(input, { group: "g", visibilityMs: 1000, follow: false });
        const [m2] = (await s2.take(1))!;
        eq([m2.text(), m2.attempt], ["job", 2]);
        await rejects(
          mq.transaction((tx) => {
            tx.publish(out, "result");
            tx.ack(m1);
          }),
          code("LEASE_EXPIRED"),
        );
        // Atomic: nothing was written. Effectively once: the output went out
        // with an id derived from the input, so the second one is a duplicate.
        const r = await mq.transaction((tx) => {
          tx.publish(out, "result");
          tx.ack(m2);
        });
        eq(r.published + r.duplicates, 1);
        eq(await texts(mq, out), ["result"]);
        await s1.close();
        await s2.close();
        eq(await drain(mq, input, "g"), []);
      } finally {
        await mq.close();
      }
    },
  );

  test(
    "readers and groups see nothing of a transaction before its commit, then all of it",
    async (mq) => {
      const t = topicName("tx-isolation");
      await mq.topics.create(t, { partitions: 2 });
      let release!: () => void;
      const gate = new Promise<void>((r) => release = r);
      const running = mq.transaction(async (tx) => {
        for (let i = 0; i < 10; i++) tx.publish(t, String(i), { key: String(i) });
        await gate;
      });
      await new Promise((r) => setTimeout(r, 20));
      eq(await texts(mq, t), []);
      eq(await drain(mq, t, "early", false), []);
      release();
      eq((await running).published, 10);
      eq((await texts(mq, t)).sort(), ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
      eq((await drain(mq, t, "late")).length, 10);
    },
    { atomicTransactions: true },
  );

  test(
    "a nack in a transaction retries; on the last attempt it dead-letters in the same commit",
    async (mq) => {
      const input = topicName("tx-nack"), out = topicName("tx-nack-out");
      await mq.publish(input, "bad");
      for (let attempt = 1; attempt <= 2; attempt++) {
        const sub = mq.subscribe(input, { group: "g", follow: false, maxAttempts: 2 });
        const [m] = (await sub.take(1))!;
        eq(m.attempt, attempt);
        const r = await mq.transaction((tx) => {
          tx.publish(out, `tried ${attempt}`);
          tx.nack(m, { delayMs: 0, reason: "no good" });
        });
        eq([r.published, r.nacked], [1, 1]);
        await sub.close();
      }
      eq(await texts(mq, out), ["tried 1", "tried 2"]);
      const dead = await drain(mq, `${input}.dlq`, "x");
      eq(dead.map((m) => [m.text(), m.headers["mq-dlq-reason"], m.headers["mq-dlq-attempts"]]), [
        ["bad", "no good", "2"],
      ]);
      eq(await drain(mq, input, "g"), []);
    },
    { atomicTransactions: true },
  );

  test(
    "ids in a transaction are deduplicated within the window, in the same commit",
    async (mq) => {
      const t = topicName("tx-dedup");
      await mq.publish(t, "first", { id: "a" });
      const r = await mq.transaction((tx) => {
        tx.publish(t, "again", { id: "a" });
        tx.publish(t, "new", { id: "b" });
        tx.publish(t, "new twice", { id: "b" });
      });
      eq([r.published, r.duplicates], [1, 2]);
      eq(await texts(mq, t), ["first", "new"]);
    },
    { atomicTransactions: true },
  );

  test(
    "a transaction too large for the backend is refused before anything is written",
    async (mq) => {
      const input = topicName("tx-large-in"), out = topicName("tx-large-out");
      const small = topicName("tx-large-small");
      await mq.publish(input, "job");
      const sub = mq.subscribe(input, { group: "g", follow: false });
      const [m] = (await sub.take(1))!;
      const limit = mq.capabilities.maxTransactionBytes!;
      const size = 60_000;
      const n = Math.ceil(limit / size) + 2;
      await rejects(
        mq.transaction((tx) => {
          tx.publish(small, "small");
          for (let i = 0; i < n; i++) tx.publish(out, new Uint8Array(size).fill(97));
          tx.ack(m);
        }),
        code("TRANSACTION_TOO_LARGE"),
      );
      eq(await texts(mq, out), []);
      eq(await texts(mq, small), []);
      await sub.close();
      eq((await drain(mq, input, "g")).map((x) => x.text()), ["job"]);
    },
    { atomicTransactions: true, transactionLimit: true },
  );
}
