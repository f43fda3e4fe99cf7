/**
 * The one conformance suite: every rule of the core, run against every
 * adapter. An adapter joins with a five-line file that calls
 * {@link conformance} with a factory and its features; a case is skipped only
 * where a feature rules it out (as Watermill's universal tests do). Each case
 * uses its own topic.
 */
import { deepStrictEqual as eq, ok, rejects } from "node:assert/strict";
import type { StorageAdapter } from "../../core/adapter.ts";
import { Mq } from "../../core/client.ts";
import { MqError } from "../../core/errors.ts";
import type { ReceivedMessage } from "../../core/message.ts";

/** What a backend under test is and can do. */
export interface Features {
  /** Opens the backend; with `reopen`, the same store again. */
  open(options?: { reopen?: boolean }): Promise<StorageAdapter>;
  /** Cleans up after a case. */
  cleanup?(): Promise<void>;
  /** Data survives close and reopen. */
  persistent: boolean;
  /** Skip everything, with this reason (e.g. a broker that is not installed). */
  skip?: string;
}

const dec = new TextDecoder();
let topicSeq = 0;
const topicName = (base: string) => `${base}-${Date.now().toString(36)}-${topicSeq++}`;

async function texts(
  mq: Mq,
  topic: string,
  options: Parameters<Mq["subscribe"]>[1] = {},
): Promise<string[]> {
  const out: string[] = [];
  for await (const m of mq.subscribe(topic, { follow: false, ...options })) out.push(m.text());
  return out;
}

async function drain(mq: Mq, topic: string, group: string, ack = true): Promise<ReceivedMessage[]> {
  const out: ReceivedMessage[] = [];
  const sub = mq.subscribe(topic, { group, follow: false });
  for await (const b of sub.batches()) {
    out.push(...b);
    if (ack) { for (const m of b) m.ack(); }
  }
  return out;
}

const code = (c: string) => (e: unknown) => MqError.is(e) && e.code === c;

/** Registers the suite for one backend. */
export function conformance(name: string, features: Features): void {
  const test = (
    title: string,
    fn: (mq: Mq, f: Features) => Promise<void>,
    opts: { persistent?: boolean } = {},
  ) => {
    Deno.test({
      name: `${name}: ${title}`,
      ignore: Boolean(features.skip) || (opts.persistent === true && !features.persistent),
      sanitizeOps: false,
      sanitizeResources: false,
      fn: async () => {
        const mq = new Mq(await features.open());
        try {
          await fn(mq, features);
        } finally {
          await mq.close().catch(() => {});
          await features.cleanup?.();
        }
      },
    });
  };

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
    const max = mq.adapter.capabilities.maxMessageBytes ?? Infinity;
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

  test("an expired lease is delivered again with the next attempt", async () => {
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

  // --- administration ---------------------------------------------------------
  test("topics: create, list with counts, info, purge (offsets go on), remove", async (mq) => {
    const t = topicName("admin");
    await mq.topics.create(t, { partitions: 2 });
    await rejects(mq.topics.create(t), code("TOPIC_EXISTS"));
    await mq.publishBatch(t, ["a", "b", "c"]);
    eq((await mq.topics.list()).find((x) => x.name === t), { name: t, partitions: 2, messages: 3 });
    await drain(mq, t, "g");
    const info = await mq.topics.info(t);
    eq([info.partitions.length, info.messages, info.groups.map((g) => [g.name, g.lag])], [2, 3, [[
      "g",
      0,
    ]]]);
    eq(await mq.topics.purge(t), 3);
    eq(await texts(mq, t), []);
    await mq.publish(t, "d", { partition: 0 });
    const ends = (await mq.topics.info(t)).partitions.map((p) => p.end);
    ok(ends.reduce((a, b) => a + b, 0) === 4, `offsets go on after a purge: ${ends}`);
    await mq.topics.remove(t);
    eq((await mq.topics.list()).some((x) => x.name === t), false);
    await rejects(mq.topics.info(t), code("TOPIC_NOT_FOUND"));
  });

  // --- routing ----------------------------------------------------------------
  test("exchanges route by type; unroutable fails unless allowed; bad input changes nothing", async (mq) => {
    const ex = topicName("ex"), eu = topicName("eu"), all = topicName("all");
    await mq.exchanges.create(ex, "topic");
    await mq.exchanges.bind(ex, { destination: eu, destinationKind: "topic", key: "orders.*.eu" });
    await mq.exchanges.bind(ex, { destination: all, destinationKind: "topic", key: "#" });
    const r = await mq.publishVia(ex, "orders.new.eu", ["hello"]);
    eq(r.topics.sort(), [all, eu].sort());
    eq(await texts(mq, eu), ["hello"]);
    const d = topicName("direct");
    await mq.exchanges.create(d, "direct");
    await rejects(mq.publishVia(d, "k", ["x"]), code("UNROUTABLE"));
    eq((await mq.publishVia(d, "k", ["x"], { allowUnroutable: true })).topics, []);
    const before = JSON.stringify(await mq.exchanges.list());
    await rejects(mq.exchanges.create(topicName("bad"), "weird"), code("INVALID_ARGUMENT"));
    await rejects(
      mq.exchanges.bind(ex, { destination: eu, destinationKind: "topic", key: "a..b" }),
      code("INVALID_ARGUMENT"),
    );
    await rejects(
      mq.exchanges.bind("no-such-exchange", { destination: eu, destinationKind: "topic" }),
      code("INVALID_ARGUMENT"),
    );
    eq(JSON.stringify(await mq.exchanges.list()), before);
    const h = topicName("headers"), png = topicName("png");
    await mq.exchanges.create(h, "headers");
    await mq.exchanges.bind(h, {
      destination: png,
      destinationKind: "topic",
      headers: { type: "png", a: "1" },
      match: "any",
    });
    await mq.publishVia(h, "", [{ payload: "img", headers: { type: "png" } }]);
    await rejects(
      mq.publishVia(h, "", [{ payload: "txt", headers: { type: "txt" } }]),
      code("UNROUTABLE"),
    );
    eq(await texts(mq, png), ["img"]);
  });

  test("request/reply; a request nobody answers times out and leaves no reply topic", async (mq) => {
    const t = topicName("rpc");
    const stop = new AbortController();
    const replier = mq.reply(t, { group: "r", signal: stop.signal }, (m) => m.text().toUpperCase());
    const answer = await mq.request(t, "hello", { timeoutMs: 5000 });
    eq(answer.text(), "HELLO");
    stop.abort();
    await replier;
    await rejects(mq.request(topicName("nobody"), "x", { timeoutMs: 200 }), code("TIMEOUT"));
    eq((await mq.topics.list()).filter((x) => x.name.startsWith("mq-reply.")), []);
  });
}

export { dec };
