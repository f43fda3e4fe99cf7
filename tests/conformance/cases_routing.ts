/** Conformance cases: exchanges, bindings, request/reply. Run against every adapter by `conformance.ts`. */
import { deepStrictEqual as eq, ok, rejects } from "node:assert/strict";
import { MqError } from "../../core/errors.ts";
import { Mq } from "../../core/client.ts";
import { code, type DefineCase, texts, topicName } from "./_helpers.ts";

/** Registers the cases. */
export function routingCases(test: DefineCase): void {
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

  test("topic patterns: # alone, a.#.b, *, empty words, many #s", async (mq) => {
    const ex = topicName("tp");
    await mq.exchanges.create(ex, "topic");
    const patterns = ["#", "a.#.b", "a.*", "a.*.b", "#.#.#.#.#.#.#.#.zz", "*.#"];
    const topicOf = new Map(patterns.map((p, i) => [p, `${ex}-t${i}`]));
    await mq.exchanges.bindMany(
      ex,
      patterns.map((key) => ({ destination: topicOf.get(key)!, destinationKind: "topic", key })),
    );
    const routed = async (rk: string) =>
      (await mq.exchanges.route(ex, rk)).map((t) => patterns[Number(t.split("-t").pop())]).sort();
    eq(await routed(""), ["#"]);
    eq(await routed("a"), ["#", "*.#"]);
    eq(await routed("a.b"), ["#", "*.#", "a.#.b", "a.*"].sort());
    eq(await routed("a.x.y.b"), ["#", "*.#", "a.#.b"].sort());
    eq(await routed("a.b.c"), ["#", "*.#"].sort());
    eq(await routed("a..b"), ["#", "*.#", "a.#.b", "a.*.b"].sort(), "* takes an empty word");
    const long = Array.from({ length: 40 }, (_, i) => `w${i}`).join(".");
    eq(await routed(long + ".zz"), ["#", "#.#.#.#.#.#.#.#.zz", "*.#"].sort());
    for (const bad of ["a..b", "a.", ".a", "a.b/c", ""]) {
      await rejects(
        mq.exchanges.bind(ex, { destination: "x", destinationKind: "topic", key: bad }),
        code("INVALID_ARGUMENT"),
        `pattern ${JSON.stringify(bad)}`,
      );
    }
  });

  test("direct, fanout and headers (all and any) route as AMQP says", async (mq) => {
    const d = topicName("direct"), f = topicName("fan"), h = topicName("hdr");
    await mq.exchanges.create(d, "direct");
    await mq.exchanges.create(f, "fanout");
    await mq.exchanges.create(h, "headers");
    await mq.exchanges.bind(d, { destination: `${d}-a`, destinationKind: "topic", key: "k1" });
    await mq.exchanges.bind(d, { destination: `${d}-b`, destinationKind: "topic", key: "k1" });
    await mq.exchanges.bind(d, { destination: `${d}-c`, destinationKind: "topic", key: "k2" });
    eq((await mq.exchanges.route(d, "k1")).sort(), [`${d}-a`, `${d}-b`]);
    eq(await mq.exchanges.route(d, "k3"), []);
    for (const t of ["x", "y"]) {
      await mq.exchanges.bind(f, { destination: `${f}-${t}`, destinationKind: "topic" });
    }
    eq((await mq.exchanges.route(f, "anything")).sort(), [`${f}-x`, `${f}-y`]);
    await rejects(
      mq.exchanges.bind(f, { destination: "z", destinationKind: "topic", key: "k" }),
      code("INVALID_ARGUMENT"),
      "a fanout binding with a key",
    );
    await mq.exchanges.bind(h, {
      destination: `${h}-all`,
      destinationKind: "topic",
      headers: { type: "png", size: "big" },
    });
    await mq.exchanges.bind(h, {
      destination: `${h}-any`,
      destinationKind: "topic",
      headers: { type: "png", size: "big" },
      match: "any",
    });
    eq((await mq.exchanges.route(h, "", { type: "png", size: "big" })).sort(), [
      `${h}-all`,
      `${h}-any`,
    ]);
    eq(await mq.exchanges.route(h, "", { type: "png" }), [`${h}-any`]);
    eq(await mq.exchanges.route(h, "", { type: "gif" }), []);
  });

  test("exchange-to-exchange bindings route on; cycles are ignored; unbind and rm", async (mq) => {
    const a = topicName("xa"), b = topicName("xb"), t = topicName("xt");
    await mq.exchanges.create(a, "fanout");
    await mq.exchanges.create(b, "topic");
    await mq.exchanges.bind(a, { destination: b, destinationKind: "exchange" });
    await mq.exchanges.bind(b, { destination: a, destinationKind: "exchange", key: "#" });
    await mq.exchanges.bind(b, { destination: t, destinationKind: "topic", key: "eu.#" });
    eq(await mq.exchanges.route(a, "eu.orders"), [t]);
    await mq.publishVia(a, "eu.orders", ["via two exchanges"]);
    eq(await texts(mq, t), ["via two exchanges"]);
    eq(await mq.exchanges.unbind(b, t), 1);
    eq(await mq.exchanges.route(a, "eu.orders"), []);
    await mq.exchanges.remove(b);
    eq((await mq.exchanges.get(a))!.bindings, [], "bindings to a removed exchange go with it");
    await rejects(mq.exchanges.route(b, "x"), code("INVALID_ARGUMENT"));
  });

  test(
    "another client sees an exchange removed and made again with other bindings",
    async (mq, f) => {
      const ex = topicName("again");
      const other = new Mq(await f.open({ reopen: true }));
      try {
        await mq.exchanges.create(ex, "fanout");
        await mq.exchanges.bind(ex, { destination: `${ex}-old`, destinationKind: "topic" });
        eq(await other.exchanges.route(ex, ""), [`${ex}-old`]); // cached there now
        await mq.exchanges.remove(ex);
        await mq.exchanges.create(ex, "fanout");
        await mq.exchanges.bind(ex, { destination: `${ex}-new`, destinationKind: "topic" });
        eq(await other.exchanges.route(ex, ""), [`${ex}-new`]);
      } finally {
        await other.close();
      }
    },
    { multiProcess: true },
  );

  test("headers count through an exchange bound to a headers exchange", async (mq) => {
    const front = topicName("front"), hx = topicName("hx"), png = topicName("png");
    await mq.exchanges.create(front, "fanout");
    await mq.exchanges.create(hx, "headers");
    await mq.exchanges.bind(front, { destination: hx, destinationKind: "exchange" });
    await mq.exchanges.bind(hx, {
      destination: png,
      destinationKind: "topic",
      headers: { type: "png" },
    });
    const r = await mq.publishVia(front, "", [
      { payload: "img", headers: { type: "png" } },
      { payload: "txt", headers: { type: "txt" } },
    ], { allowUnroutable: true });
    eq([r.count, r.unroutable], [1, 1]);
    eq(await texts(mq, png), ["img"]);
  });

  test("removing a topic removes the bindings that lead to it", async (mq) => {
    const ex = topicName("rmx"), t = topicName("rmt");
    await mq.exchanges.create(ex, "fanout");
    await mq.exchanges.bind(ex, { destination: t, destinationKind: "topic" });
    await mq.publishVia(ex, "", ["m1"]);
    eq((await mq.exchanges.bindingsTo(t)).map((b) => b.exchange), [ex]);
    await mq.topics.remove(t);
    eq(await mq.exchanges.bindingsTo(t), []);
    await rejects(mq.publishVia(ex, "", ["m2"]), code("UNROUTABLE"));
    eq((await mq.topics.list()).some((x) => x.name === t), false, "not created again");
  });

  test("fan-out to a full reject topic writes to none of the bound topics", async (mq) => {
    const ex = topicName("fanfull"), ok1 = topicName("ok"), full = topicName("full");
    await mq.exchanges.create(ex, "fanout");
    await mq.topics.create(full, { maxMessages: 1, overflow: "reject" });
    await mq.exchanges.bindMany(ex, [
      { destination: ok1, destinationKind: "topic" },
      { destination: full, destinationKind: "topic" },
    ]);
    await mq.publishVia(ex, "", ["m1"]);
    await rejects(mq.publishVia(ex, "", ["m2"]), code("TOPIC_FULL"));
    eq(await texts(mq, ok1), ["m1"]);
    eq(await texts(mq, full), ["m1"]);
    const r = await mq.publishVia(ex, "", ["m3"], { allowUnroutable: true }).catch((e) => e);
    ok(MqError.is(r, "TOPIC_FULL"));
    eq(await texts(mq, ok1), ["m1"]);
  });

  test("10,000 topic bindings: bound in one call, routed by the trie, listed", async (mq) => {
    const ex = topicName("many");
    await mq.exchanges.create(ex, "topic");
    const N = 10_000;
    await mq.exchanges.bindMany(
      ex,
      Array.from({ length: N }, (_, i) => ({
        destination: `${ex}-t${i % 100}`,
        destinationKind: "topic" as const,
        key: `orders.r${i}.*`,
      })),
    );
    eq((await mq.exchanges.get(ex))!.bindings.length, N);
    eq(await mq.exchanges.route(ex, "orders.r4242.new"), [`${ex}-t42`]);
    const r = await mq.publishVia(ex, "orders.r7.paid", ["x"]);
    eq(r.topics, [`${ex}-t7`]);
    eq((await mq.exchanges.bindingsTo(`${ex}-t7`)).length, N / 100);
  });

  test("--allow-unroutable drops and counts what no binding takes", async (mq) => {
    const ex = topicName("drop"), t = topicName("dropt");
    await mq.exchanges.create(ex, "headers");
    await mq.exchanges.bind(ex, { destination: t, destinationKind: "topic", headers: { k: "1" } });
    const r = await mq.publishVia(ex, "", [
      { payload: "yes", headers: { k: "1" } },
      { payload: "no", headers: { k: "2" } },
    ], { allowUnroutable: true });
    eq([r.count, r.unroutable], [1, 1]);
    eq(await texts(mq, t), ["yes"]);
  });

  test("a reply to a request that timed out is dropped and creates no topic", async (mq) => {
    const t = topicName("slow");
    const stop = new AbortController();
    let answered!: () => void;
    const done = new Promise<void>((r) => answered = r);
    const replier = mq.reply(t, { group: "r", signal: stop.signal }, async (m) => {
      await new Promise((r) => setTimeout(r, 400)); // longer than the request waits
      setTimeout(answered, 200);
      return m.text();
    });
    await rejects(mq.request(t, "hi", { timeoutMs: 100 }), code("TIMEOUT"));
    await done;
    stop.abort();
    await replier;
    eq((await mq.topics.list()).filter((x) => x.name.startsWith("mq-reply.")), []);
  });
}
