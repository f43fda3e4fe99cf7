/** Conformance cases: publishing and reading, persistence. Run against every adapter by `conformance.ts`. */
import { deepStrictEqual as eq, ok, rejects } from "node:assert/strict";
import { MqError } from "../../core/errors.ts";
import { Mq } from "../../core/client.ts";
import { adapterOf } from "../../core/internal.ts";
import { code, type DefineCase, drain, texts, topicName } from "./_helpers.ts";

/** Registers the cases. */
export function logCases(test: DefineCase): void {
  // --- publish and read -------------------------------------------------------
  test("messages come back in order, with offsets from 0", async (mq) => {
    const t = topicName("order");
    await mq.publishBatch(t, ["a", "b", "c"]);
    await mq.publish(t, "d");
    const got: [number, string][] = [];
    for await (const m of mq.subscribe(t, { follow: false })) got.push([m.offset, m.text()]);
    eq(got, [[0, "a"], [1, "b"], [2, "c"], [3, "d"]]);
  });

  test("keys, ids, headers and timestamps round-trip", async (mq) => {
    const t = topicName("meta");
    const before = Date.now();
    await mq.publish(t, "x", { key: "k1", id: "id-1", headers: { trace: "abc", "x-y": "z" } });
    const [m] = await drain(mq, t, "g");
    eq([m.key, m.id, m.headers, m.attempt], ["k1", "id-1", { trace: "abc", "x-y": "z" }, 1]);
    ok(m.timestamp >= before - 1000 && m.timestamp <= Date.now() + 1000);
  });

  test("binary payloads with every byte value and a 1 MiB payload round-trip byte-exact", async (mq) => {
    const t = topicName("binary");
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const big = Uint8Array.from({ length: 1024 * 1024 }, (_, i) => (i * 31) & 0xff);
    const max = mq.capabilities.maxMessageBytes ?? Infinity;
    await mq.publishBatch(
      t,
      big.length <= max ? [all, new Uint8Array(0), big] : [all, new Uint8Array(0)],
    );
    const got: Uint8Array[] = [];
    for await (const m of mq.subscribe(t, { follow: false })) got.push(m.payload.slice());
    eq(got[0], all);
    eq(got[1].length, 0);
    if (big.length <= max) eq(got[2], big);
  });

  test("a message over the limit is refused; those before it are stored", async (mq) => {
    const t = topicName("limit");
    await mq.topics.create(t, { maxMessageBytes: 10 });
    await rejects(mq.publishBatch(t, ["12345", "12345", "x".repeat(50), "12345"]), (e: unknown) => {
      ok(MqError.is(e, "MESSAGE_TOO_LARGE"));
      eq([e.details.index, e.details.published], [2, 2]);
      return true;
    });
    eq(await texts(mq, t), ["12345", "12345"]);
  });

  test("bad names are refused and nothing is written", async (mq) => {
    for (const bad of ["../x", "a/b", "", "x".repeat(201), "a\u0000b", ".hidden", "-x", "a..b"]) {
      await rejects(mq.publish(bad, "x"), code("INVALID_NAME"), JSON.stringify(bad));
    }
    eq((await mq.topics.list()).filter((x) => x.name.includes("/") || x.name === ""), []);
  });

  test("concurrent publishers lose nothing and keep each one's order", async (mq) => {
    const t = topicName("concurrent");
    await Promise.all(
      ["p", "q", "r", "s"].map(async (p) => {
        for (let i = 0; i < 10; i++) {
          await mq.publishBatch(t, Array.from({ length: 20 }, (_, j) => `${p}-${i * 20 + j}`));
        }
      }),
    );
    const got = await texts(mq, t);
    eq(got.length, 800);
    for (const p of ["p", "q", "r", "s"]) {
      eq(
        got.filter((x) => x.startsWith(p + "-")),
        Array.from({ length: 200 }, (_, i) => `${p}-${i}`),
      );
    }
  });

  test("a key keeps its order within its partition", async (mq) => {
    const t = topicName("keyed");
    await mq.topics.create(t, { partitions: 4 });
    const msgs = Array.from(
      { length: 200 },
      (_, i) => ({ payload: `${i % 5}:${i}`, key: `k${i % 5}` }),
    );
    await mq.publishBatch(t, msgs);
    const byKey = new Map<string, { p: number; n: number[] }>();
    for await (const m of mq.subscribe(t, { follow: false })) {
      const [k, n] = m.text().split(":");
      const e = byKey.get(k) ?? { p: m.partition, n: [] };
      eq(e.p, m.partition, "one key, one partition");
      e.n.push(Number(n));
      byKey.set(k, e);
    }
    eq(byKey.size, 5);
    for (const { n } of byKey.values()) eq(n, [...n].sort((a, b) => a - b));
    eq(new Set([...byKey.values()].map((v) => v.p)).size > 1, true, "keys spread over partitions");
  });

  test("from: beginning, end, an offset, a time, a span ago; count; follow false", async (mq) => {
    const t = topicName("from");
    await mq.publishBatch(t, ["0", "1", "2"]);
    await new Promise((r) => setTimeout(r, 30));
    const mid = new Date();
    await new Promise((r) => setTimeout(r, 30));
    await mq.publishBatch(t, ["3", "4"]);
    eq(await texts(mq, t, { from: "beginning" }), ["0", "1", "2", "3", "4"]);
    eq(await texts(mq, t, { from: "end" }), []);
    eq(await texts(mq, t, { from: 3 }), ["3", "4"]);
    eq(await texts(mq, t, { from: mid }), ["3", "4"]);
    eq(await texts(mq, t, { from: { agoMs: 3_600_000 } }), ["0", "1", "2", "3", "4"]);
    eq(await texts(mq, t, { count: 2 }), ["0", "1"]);
  });

  test("a follower sees messages published after it started", async (mq) => {
    const t = topicName("follow");
    await mq.publish(t, "first");
    const got: string[] = [];
    const reading = (async () => {
      for await (const m of mq.subscribe(t, { count: 3 })) got.push(m.text());
    })();
    await new Promise((r) => setTimeout(r, 100));
    await mq.publishBatch(t, ["second", "third"]);
    await reading;
    eq(got, ["first", "second", "third"]);
  });

  test("data and group positions survive close and reopen", async (_mq, f) => {
    const t = topicName("persist");
    const a = new Mq(await f.open({ reopen: true }));
    await a.publishBatch(t, ["1", "2", "3"]);
    const sub = a.subscribe(t, { group: "g", follow: false, count: 2 });
    for await (const m of sub) m.ack();
    await a.close();
    const b = new Mq(await f.open({ reopen: true }));
    try {
      eq(await texts(b, t), ["1", "2", "3"]);
      eq((await drain(b, t, "g")).map((m) => m.text()), ["3"]);
    } finally {
      await b.close();
    }
  }, { persistent: true });

  test(
    "two clients on one store: concurrent publishers lose nothing, and they share a group",
    async (mq, f) => {
      const t = topicName("shared");
      const other = new Mq(await f.open({ reopen: true }));
      try {
        const N = 500;
        const lines = (who: string) => Array.from({ length: N }, (_, i) => `${who}-${i}`);
        const batches = (who: string) =>
          Array.from({ length: 10 }, (_, k) => lines(who).slice(k * 50, k * 50 + 50));
        await Promise.all([
          (async () => {
            for (const b of batches("a")) await mq.publishBatch(t, b);
          })(),
          (async () => {
            for (const b of batches("b")) await other.publishBatch(t, b);
          })(),
        ]);
        const all = await texts(mq, t);
        eq(all.length, 2 * N, "none lost");
        eq(all.filter((x) => x.startsWith("a-")), lines("a"), "each one's order kept");
        eq(all.filter((x) => x.startsWith("b-")), lines("b"));
        // Both clients consume one group: every message once.
        const got: string[] = [];
        const consume = async (client: Mq) => {
          const sub = client.subscribe(t, { group: "g", follow: false, batchSize: 64 });
          for await (const b of sub.batches()) {
            for (const m of b) got.push(m.text());
            sub.ackAll(b);
          }
        };
        await Promise.all([consume(mq), consume(other)]);
        eq(got.length, 2 * N, "none twice");
        eq(new Set(got).size, 2 * N, "none missing");
      } finally {
        await other.close();
      }
    },
    { multiProcess: true },
  );

  test("batches hold about batchBytes: large messages come in small batches", async (mq) => {
    const t = topicName("batchbytes");
    const big = "x".repeat(8 * 1024);
    await mq.publishBatch(t, Array.from({ length: 300 }, () => big));
    const sizes: number[] = [];
    const sub = mq.subscribe(t, { follow: false, batchSize: 100, batchBytes: 64 << 10 });
    for await (const b of sub.batches()) sizes.push(b.length);
    eq(sizes.reduce((a, b) => a + b, 0), 300);
    ok(sizes[0] <= 100, `first batch: ${sizes[0]}`);
    ok(sizes.slice(1).every((n) => n <= 16), `then about 64 KiB each: ${sizes}`);
  });

  // --- publish rules ------------------------------------------------------------
  test("a refused publish creates no topic; those before the refused one create it", async (mq) => {
    const t = topicName("refused");
    await rejects(mq.publish(t, new Uint8Array(1024 * 1024 + 1)), code("MESSAGE_TOO_LARGE"));
    eq((await mq.topics.list()).some((x) => x.name === t), false);
    await rejects(
      mq.publishBatch(t, ["ok", new Uint8Array(1024 * 1024 + 1)]),
      (e: unknown) => MqError.is(e, "MESSAGE_TOO_LARGE") && e.details.published === 1,
    );
    eq(await texts(mq, t), ["ok"]);
  });

  test("a publish stopped at its append leaves no id counted: the retry stores every message", async (mq) => {
    const t = topicName("ids-stopped");
    await mq.topics.create(t, {});
    const msgs = Array.from({ length: 200 }, (_, i) => ({ payload: `m${i}`, id: `stopped-${i}` }));
    // A client whose appends never return (as if killed right there).
    const stuck = new Proxy(adapterOf(mq), {
      get(target, prop) {
        const append = prop === "append" || prop === "appendDeduplicated" ||
          prop === "appendAtomic";
        if (append && prop in target) return () => new Promise(() => {});
        const v = Reflect.get(target, prop);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    void new Mq(stuck).publishBatch(t, msgs);
    await new Promise((r) => setTimeout(r, 100));
    const r = await mq.publishBatch(t, msgs);
    eq([r.count, r.duplicates], [200, 0]);
    eq(await texts(mq, t), msgs.map((m) => m.payload));
  });

  test("dedup remembers thousands of ids; a repeat within one batch is stored once", async (mq) => {
    const t = topicName("ids");
    const N = 3000;
    const msgs = (tag: string) =>
      Array.from({ length: N }, (_, i) => ({ payload: `${tag}${i}`, id: `order-${i}` }));
    const first = await mq.publishBatch(t, msgs("a"));
    eq([first.count, first.duplicates], [N, 0]);
    const again = await mq.publishBatch(t, msgs("b"));
    eq([again.count, again.duplicates], [0, N], "every id is still in the window");
    const twice = await mq.publishBatch(t, [
      { payload: "x1", id: "fresh" },
      { payload: "x2", id: "fresh" },
      { payload: "no id" },
    ]);
    eq([twice.count, twice.duplicates], [2, 1]);
    const all = await texts(mq, t);
    eq(all.length, N + 2);
    eq(all.slice(N), ["x1", "no id"]);
  });

  test("a delayed message without an id, in a batch mixing keys, is cancelled by partition-offset", async (mq) => {
    const t = topicName("mixdelay");
    await mq.topics.create(t, { partitions: 3 });
    // Unkeyed messages rotate over the partitions: two go first, so that the
    // batch's unkeyed one lands in partition 2, above its keyed ones (0 and 1).
    await mq.publish(t, "first");
    await mq.publish(t, "second");
    await mq.publishBatch(t, [
      { payload: "keyed", key: "customer-2" }, // partition 0
      { payload: "later", delayMs: 300 },
      { payload: "keyed too", key: "customer-1" }, // partition 1
    ]);
    const later = (await Array.fromAsync(mq.subscribe(t, { follow: false })))
      .find((m) => m.text() === "later")!;
    eq(await mq.cancel(t, `${later.partition}-${later.offset}`), true);
    await new Promise((r) => setTimeout(r, 400));
    eq(later.partition, 2);
    eq((await drain(mq, t, "g")).map((m) => m.text()).sort(), [
      "first",
      "keyed",
      "keyed too",
      "second",
    ]);
  });

  test("a topic removed and created again forgets the old one's ids", async (mq) => {
    const t = topicName("reborn");
    await mq.publish(t, "one", { id: "x" });
    await mq.topics.remove(t);
    const r = await mq.publish(t, "two", { id: "x" });
    eq(r.duplicate, false);
    eq(await texts(mq, t), ["two"]);
  });
}
