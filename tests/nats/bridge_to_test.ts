/**
 * `mq bridge --to nats://...`: core NATS subjects (no stream covers them),
 * JetStream with the message id as `Nats-Msg-Id`, headers and keys both
 * ways, and the sink's stream lookups (answers cached for a while, failures
 * never).
 */
import { deepStrictEqual as eq, ok, rejects } from "node:assert/strict";
import { connect as natsConnect, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { available, type Broker, startNats } from "../../scripts/brokers.ts";
import { natsSubjectSink } from "../../adapters/nats/_subject_bridge.ts";
import { ReceivedMessage } from "../../core/message.ts";
import { mq, withHome } from "../cli/_mq.ts";

const nats = available("nats-server");
const enc = new TextEncoder(), dec = new TextDecoder();

function natsCase(
  name: string,
  fn: (h: string, broker: Broker, nc: NatsConnection) => Promise<void>,
): void {
  Deno.test({
    name,
    ignore: !nats.ok,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: () =>
      withHome(async (h) => {
        const broker = await startNats();
        const nc = await natsConnect({ servers: `127.0.0.1:${broker.port}` });
        try {
          await fn(h, broker, nc);
        } finally {
          await nc.close().catch(() => {});
          await broker.stop();
        }
      }),
  });
}

/** The headers of a NATS message as an object (every name once). */
function headersOf(m: { headers?: Msg["headers"] }): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of m.headers?.keys() ?? []) out[k] = m.headers!.get(k);
  return out;
}

const LINES = [
  JSON.stringify({ payload: "one", key: "k-1", headers: { trace: "t-1" }, id: "order 7" }),
  JSON.stringify({ payload: "two", headers: { "two words": "x", multi: "a\nb" } }),
].join("\n") + "\n";

natsCase(
  "bridge --to core NATS (no stream): payloads, keys and headers reach a subscriber",
  async (h, broker, nc) => {
    eq((await mq(h, ["pub", "plain.x", "--json-lines", "-q"], { stdin: LINES })).code, 0);
    const sub = nc.subscribe("plain.>", { max: 2 });
    await nc.flush();
    const r = await mq(h, ["bridge", "--to", broker.url, "-e"]);
    eq(r.code, 0, r.err);
    ok(r.err.includes("forwarded 2 messages from 1 topic(s)"), r.err);
    const got: Msg[] = [];
    for await (const m of sub) got.push(m);
    eq(got.map((m) => [m.subject, dec.decode(m.data)]), [["plain.x", "one"], ["plain.x", "two"]]);
    // Core NATS: no Nats-Msg-Id; a header that cannot be a NATS header goes in Mq-Meta.
    eq(headersOf(got[0]), { trace: "t-1", "Mq-Key": "k-1" });
    eq(Object.keys(headersOf(got[1])), ["Mq-Meta"]);
    eq(JSON.parse(decodeURIComponent(headersOf(got[1])["Mq-Meta"])), {
      headers: { "two words": "x", multi: "a\nb" },
    });
  },
);

natsCase(
  "bridge --to core NATS: 30,000 messages and a 900 kB one arrive whole and in order",
  async (h, broker, nc) => {
    const N = 30_000;
    const big = "x".repeat(900_000);
    const lines = Array.from({ length: N }, (_, i) => (i === 12_345 ? big : `m-${i}`));
    eq((await mq(h, ["pub", "bulk", "-q"], { stdin: lines.join("\n") + "\n" })).code, 0);
    const sub = nc.subscribe("bulk", { max: N });
    await nc.flush();
    const r = await mq(h, ["bridge", "--to", broker.url, "-e"]);
    eq(r.code, 0, r.err);
    let i = 0;
    const wrong: number[] = [];
    for await (const m of sub) {
      if (dec.decode(m.data) !== lines[i] && wrong.length < 5) wrong.push(i);
      i++;
    }
    eq([i, wrong], [N, []]);
  },
);

natsCase(
  "bridge --to JetStream: Nats-Msg-Id is the message id as is (else <topic>:<partition>-<offset>); --from brings headers back",
  async (h, broker, nc) => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "ORDERS", subjects: ["orders.>"] });
    eq((await mq(h, ["pub", "orders.eu", "--json-lines", "-q"], { stdin: LINES })).code, 0);
    eq((await mq(h, ["pub", "orders.us", "-q"], { stdin: "three\n" })).code, 0);
    const r = await mq(h, ["bridge", "--to", broker.url, "-e"]);
    eq(r.code, 0, r.err);
    const ids: string[] = [];
    for (let seq = 1; seq <= 3; seq++) {
      const m = await jsm.streams.getMessage("ORDERS", { seq });
      ids.push(`${m!.subject} ${dec.decode(m!.data)} ${m!.header.get("Nats-Msg-Id")}`);
    }
    eq(ids.sort(), [
      "orders.eu one order 7",
      "orders.eu two orders.eu:0-1",
      "orders.us three orders.us:0-0",
    ]);
    // A resend (the position reset) is dropped by JetStream.
    eq((await mq(h, ["groups", "reset", "orders.eu", "bridge", "--to", "beginning"])).code, 0);
    eq((await mq(h, ["bridge", "--to", broker.url, "-e"])).code, 0);
    eq((await jsm.streams.info("ORDERS")).state.messages, 3);
    // And back in: the key and every header as they were, the subject added.
    const back = await mq(h, [
      "bridge",
      "--from",
      broker.url,
      "--subjects",
      "orders.eu",
      "--into",
      "copy",
      "-e",
    ]);
    eq(back.code, 0, back.err);
    const copy = (await mq(h, ["sub", "copy", "-e", "--format", "json"])).out.trim().split("\n")
      .map((l) => JSON.parse(l));
    eq(copy.map((m) => [m.payload, m.key ?? null, m.headers]), [
      ["one", "k-1", { "nats-subject": "orders.eu", trace: "t-1", "Nats-Msg-Id": "order 7" }],
      ["two", null, {
        "nats-subject": "orders.eu",
        "two words": "x",
        multi: "a\nb",
        "Nats-Msg-Id": "orders.eu:0-1",
      }],
    ]);
  },
);

function message(topic: string, offset: number, payload: string): ReceivedMessage {
  return new ReceivedMessage(topic, 0, { offset, timestamp: 0, payload: enc.encode(payload) }, 1);
}

natsCase(
  "bridge sink: a failed stream lookup is not remembered; an answer is, for a while",
  async (_h, broker, nc) => {
    const url = `127.0.0.1:${broker.port}`;
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "S", subjects: ["s.>"] });
    // The broker is down when the sink first looks: the send fails...
    const sinkNc = await natsConnect({
      servers: url,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 100,
    });
    const sink = natsSubjectSink(sinkNc, { coverageTtlMs: 300 });
    try {
      await nc.close();
      await broker.stop({ keepStore: true });
      await rejects(sink.send("s.a", [message("s.a", 0, "first")]));
      const reconnected = (async () => {
        for await (const s of sinkNc.status()) if (s.type === "reconnect") return;
      })();
      await broker.restart();
      await reconnected;
      // ...and the next one looks again: JetStream, acked, with its Nats-Msg-Id.
      await sink.send("s.a", [message("s.a", 0, "first")]);
      const nc2 = await natsConnect({ servers: url });
      const jsm2 = await jetstreamManager(nc2);
      const m = await jsm2.streams.getMessage("S", { seq: 1 });
      eq([dec.decode(m!.data), m!.header.get("Nats-Msg-Id")], ["first", "s.a:0-0"]);
      // "Not covered" is an answer: kept for coverageTtlMs, then looked up again.
      await sink.send("t.a", [message("t.a", 0, "core")]);
      await jsm2.streams.add({ name: "T", subjects: ["t.>"] });
      await sink.send("t.a", [message("t.a", 1, "still core")]);
      await new Promise((r) => setTimeout(r, 400));
      await sink.send("t.a", [message("t.a", 2, "jetstream")]);
      const t = await jsm2.streams.getMessage("T", { seq: 2 });
      eq(
        [(await jsm2.streams.info("T")).state.messages, t!.header.get("Nats-Msg-Id")],
        [2, "t.a:0-2"],
      );
      await nc2.close();
    } finally {
      await sink.close().catch(() => {});
    }
  },
);

Deno.test({
  name:
    "bridge --to: a message over the server's max_payload stops the bridge (exit 2), no retry loop",
  ignore: !nats.ok,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withHome(async (h) => {
      const broker = await startNats({ config: "max_payload: 4096" });
      try {
        const nc = await natsConnect({ servers: `127.0.0.1:${broker.port}` });
        await (await jetstreamManager(nc)).streams.add({ name: "J", subjects: ["js.>"] });
        await nc.close();
        for (const topic of ["core.big", "js.big"]) {
          eq(
            (await mq(h, ["pub", topic, "-q"], { stdin: `small\n${"x".repeat(5000)}\n` })).code,
            0,
          );
          const r = await mq(h, ["bridge", "--to", broker.url, "--topics", topic, "-e"]);
          eq([r.code, r.err.trim().split("\n").at(-1)], [
            2,
            `mq: error: message 0-1 of topic "${topic}" is 5000 bytes with its headers; the NATS server takes at most 4096 (max_payload)`,
          ]);
        }
      } finally {
        await broker.stop();
      }
    }),
});

natsCase(
  "bridge --to NATS --target: subjects from the template; a message without a key stops it (exit 2)",
  async (h, broker, nc) => {
    const lines = [
      JSON.stringify({ payload: "a", key: "k1", headers: { region: "eu" } }),
      JSON.stringify({ payload: "b", key: "k2", headers: { region: "us" } }),
    ].join("\n") + "\n";
    eq((await mq(h, ["pub", "orders", "--json-lines", "-q"], { stdin: lines })).code, 0);
    const sub = nc.subscribe("out.>", { max: 2 });
    await nc.flush();
    const target = "out.{header.region}.{key}";
    const r = await mq(h, ["bridge", "--to", broker.url, "--target", target, "-e"]);
    eq(r.code, 0, r.err);
    const got: string[] = [];
    for await (const m of sub) got.push(`${m.subject}=${dec.decode(m.data)}`);
    eq(got.sort(), ["out.eu.k1=a", "out.us.k2=b"]);
    // No key: the bridge stops with one line and exit 2, and keeps its position.
    eq((await mq(h, ["pub", "nokey", "-q"], { stdin: "x\n" })).code, 0);
    const bad = await mq(h, ["bridge", "--to", broker.url, "--target", "{key}", "-e", "-q"]);
    eq(bad.code, 2, bad.err);
    eq(bad.err, 'mq: error: --target "{key}": message nokey/0/0 has no key\n');
    // An unknown placeholder is refused before anything connects.
    const unknown = await mq(h, ["bridge", "--to", "nats://127.0.0.1:1", "--target", "{nope}"]);
    eq(unknown.code, 2);
    eq(
      unknown.err,
      'mq: error: --target "{nope}": unknown placeholder {nope}; use {topic}, {key}, {partition} or {header.NAME}\n',
    );
  },
);
