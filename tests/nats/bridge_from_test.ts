/**
 * `mq bridge --from nats://...`: several subjects of one stream, headers,
 * redeliveries, a crashed run's unacked messages, the core NATS path, and a
 * broker restart without `-e`.
 */
import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { connect as natsConnect, headers, type NatsConnection } from "@nats-io/transport-node";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { available, type Broker, startNats } from "../../scripts/brokers.ts";
import { durableName } from "../../adapters/nats/_subject_bridge.ts";
import { mq, spawnMq, withHome } from "../cli/_mq.ts";

const nats = available("nats-server");
const dec = new TextDecoder();

/** A case with a private nats-server, a client on it and a stream EV over `ev.>`. */
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
          await (await jetstreamManager(nc)).streams.add({ name: "EV", subjects: ["ev.>"] });
          await fn(h, broker, nc);
        } finally {
          await nc.close().catch(() => {});
          await broker.stop();
        }
      }),
  });
}

/** The envelopes of a local topic. */
async function envelopes(h: string, topic: string): Promise<Record<string, any>[]> {
  const r = await mq(h, ["sub", topic, "-e", "--format", "json"]);
  if (r.err.includes(`topic "${topic}" does not exist`)) return [];
  eq(r.code, 0, r.err);
  return r.out.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
}

/** Waits until `check` is true, or fails after `ms`. */
async function until(what: string, check: () => Promise<boolean> | boolean, ms = 20_000) {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

natsCase(
  "bridge --from: several subjects of one stream each get a durable; nothing lost, headers kept",
  async (h, broker, nc) => {
    const js = jetstream(nc);
    const hd = headers();
    hd.set("trace", "t-1");
    hd.set("Mq-Key", "customer-7");
    await js.publish("ev.a", "a1", { headers: hd });
    await js.publish("ev.b", "b1");
    await js.publish("ev.a", "a2");
    await js.publish("ev.c", "c1"); // not asked for
    const args = ["bridge", "--from", broker.url, "--subjects", "ev.a", "--subjects", "ev.b"];
    const r = await mq(h, [...args, "--into", "in", "-e"]);
    eq(r.code, 0, r.err);
    ok(r.err.includes('stored 3 messages in "in"'), r.err);
    const got = await envelopes(h, "in");
    eq(
      got.map((m) => [m.payload, m.id, m.headers["nats-subject"]]).sort(),
      [["a1", "nats:EV:1", "ev.a"], ["a2", "nats:EV:3", "ev.a"], ["b1", "nats:EV:2", "ev.b"]],
    );
    const a1 = got.find((m) => m.payload === "a1")!;
    eq([a1.key, a1.headers.trace], ["customer-7", "t-1"]);
    // One durable per subject, each at the end of its subject.
    const jsm = await jetstreamManager(nc);
    const durables: string[] = [];
    for await (const c of jsm.consumers.list("EV")) {
      durables.push(c.name);
      eq([c.num_pending, c.num_ack_pending], [0, 0], c.name);
    }
    eq(durables.sort(), [durableName("bridge", "ev.a"), durableName("bridge", "ev.b")].sort());
    // A second drain finds nothing new; a new message of one subject comes in alone.
    ok((await mq(h, [...args, "--into", "in", "-e"])).err.includes("stored 0 messages"));
    await js.publish("ev.b", "b2");
    ok((await mq(h, [...args, "--into", "in", "-e"])).err.includes("stored 1 message in"));
    eq((await envelopes(h, "in")).length, 4);
  },
);

natsCase(
  "bridge --from: a redelivered message is not stored twice (its id is the stream sequence)",
  async (h, broker, nc) => {
    const js = jetstream(nc);
    for (const p of ["x1", "x2", "x3"]) await js.publish("ev.x", p);
    const args = ["bridge", "--from", broker.url, "--subjects", "ev.x", "--into", "in", "-e"];
    eq((await mq(h, args)).code, 0);
    // The durable loses its position (as when a run stored a batch, then died
    // before its ack): every message is delivered again.
    await (await jetstreamManager(nc)).consumers.delete("EV", durableName("bridge", "ev.x"));
    const again = await mq(h, args);
    eq(again.code, 0, again.err);
    ok(again.err.includes('stored 0 messages in "in"'), again.err);
    eq((await envelopes(h, "in")).map((m) => m.payload), ["x1", "x2", "x3"]);
  },
);

natsCase(
  "bridge --from -e waits for messages a crashed run left unacked (num_ack_pending)",
  async (h, broker, nc) => {
    const js = jetstream(nc);
    for (const p of ["y1", "y2", "y3"]) await js.publish("ev.y", p);
    // A run that took two messages and died without acking them (ack wait 1s).
    const durable = durableName("bridge", "ev.y");
    await (await jetstreamManager(nc)).consumers.add("EV", {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      filter_subject: "ev.y",
      ack_wait: 1_000_000_000,
    });
    const taken = await (await js.consumers.get("EV", durable)).fetch({
      max_messages: 2,
      expires: 2000,
    });
    const seen: string[] = [];
    for await (const m of taken) {
      seen.push(dec.decode(m.data));
      if (seen.length === 2) break;
    }
    eq(seen, ["y1", "y2"]);
    const r = await mq(h, [
      "bridge",
      "--from",
      broker.url,
      "--subjects",
      "ev.y",
      "--into",
      "in",
      "-e",
    ]);
    eq(r.code, 0, r.err);
    ok(r.err.includes('stored 3 messages in "in"'), r.err);
    eq((await envelopes(h, "in")).map((m) => m.payload).sort(), ["y1", "y2", "y3"]);
  },
);

natsCase(
  "bridge --from a subject no stream covers: core NATS, headers kept; -e refuses it",
  async (h, broker, nc) => {
    const drain = await mq(h, [
      "bridge",
      "--from",
      broker.url,
      "--subjects",
      "core.x",
      "--into",
      "c",
      "-e",
    ]);
    eq([drain.code, drain.err.trim()], [
      2,
      'mq: error: no JetStream stream covers "core.x": -e needs a stream to drain',
    ]);
    const child = spawnMq(h, [
      "bridge",
      "--from",
      broker.url,
      "--subjects",
      "core.>",
      "--into",
      "c",
    ]);
    const lines = lineReader(child.stderr);
    await until(
      "the subscription",
      () => lines.seen.some((l) => l.includes("subscribed to core.>")),
    );
    const hd = headers();
    hd.set("trace", "t-9");
    nc.publish("core.x", "one", { headers: hd });
    nc.publish("core.y", "two");
    await nc.flush();
    await until("2 messages stored", async () => (await envelopes(h, "c")).length === 2);
    child.kill("SIGTERM");
    eq((await child.status).code, 0);
    await lines.done;
    const got = await envelopes(h, "c");
    eq(got.map((m) => [m.payload, m.headers["nats-subject"], m.headers.trace ?? ""]), [
      ["one", "core.x", "t-9"],
      ["two", "core.y", ""],
    ]);
    ok(lines.seen.at(-1)!.includes('stored 2 messages in "c"'), lines.seen.join("\n"));
  },
);

natsCase(
  "bridge --from without -e rides out a broker restart: one line per state change, nothing lost",
  async (h, broker, nc) => {
    const js = jetstream(nc);
    const child = spawnMq(h, ["bridge", "--from", broker.url, "--subjects", "ev.r", "--into", "r"]);
    const lines = lineReader(child.stderr);
    for (const p of ["r1", "r2"]) await js.publish("ev.r", p);
    await until("2 messages stored", async () => (await envelopes(h, "r")).length === 2);
    await nc.close();
    await broker.stop({ keepStore: true });
    await until("the disconnect line", () => lines.seen.some((l) => l.includes("disconnected")));
    await new Promise((r) => setTimeout(r, 2500));
    await broker.restart();
    const nc2 = await natsConnect({ servers: `127.0.0.1:${broker.port}` });
    try {
      for (const p of ["r3", "r4"]) await jetstream(nc2).publish("ev.r", p);
      await until("4 messages stored", async () => (await envelopes(h, "r")).length === 4, 30_000);
    } finally {
      await nc2.close();
    }
    child.kill("SIGTERM");
    eq((await child.status).code, 0, lines.seen.join("\n"));
    await lines.done;
    eq((await envelopes(h, "r")).map((m) => m.payload), ["r1", "r2", "r3", "r4"]);
    const count = (re: RegExp) => lines.seen.filter((l) => re.test(l)).length;
    eq(count(/disconnected from NATS/), 1, lines.seen.join("\n"));
    eq(count(/reconnecting to NATS/), 1, lines.seen.join("\n"));
    eq(count(/reconnected to NATS/), 1, lines.seen.join("\n"));
    ok(count(/retrying/) <= 1, lines.seen.join("\n"));
    // Every line says something new.
    eq(new Set(lines.seen).size, lines.seen.length, lines.seen.join("\n"));
  },
);

/** Collects the lines of a stream as they come. */
function lineReader(stream: ReadableStream<Uint8Array>): { seen: string[]; done: Promise<void> } {
  const seen: string[] = [];
  const done = (async () => {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      rest += chunk;
      const parts = rest.split("\n");
      rest = parts.pop()!;
      seen.push(...parts);
    }
    if (rest) seen.push(rest);
  })();
  return { seen, done };
}

natsCase(
  "bridge --from: a damaged Mq-Meta header from another publisher is kept as it came, nothing stalls",
  async (h, broker, nc) => {
    const js = jetstream(nc);
    const hd = headers();
    hd.set("Mq-Meta", "{not json");
    await js.publish("ev.a", "odd", { headers: hd });
    await js.publish("ev.a", "plain");
    const r = await mq(h, [
      "bridge",
      "--from",
      broker.url,
      "--subjects",
      "ev.a",
      "--into",
      "in",
      "-e",
    ]);
    eq(r.code, 0, r.err);
    const got = await envelopes(h, "in");
    eq(got.map((m) => m.payload), ["odd", "plain"]);
    eq(got[0].headers["Mq-Meta"], "{not json");
  },
);
