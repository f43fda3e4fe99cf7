/** Conformance cases: exchanges, bindings, request/reply. Run against every adapter by `conformance.ts`. */
import { deepStrictEqual as eq, rejects } from "node:assert/strict";
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
}
