/**
 * Fault: the nats-server stops in the middle of a 100,000-message bridge and
 * starts again; every message arrives in JetStream exactly once (count and
 * content checked with a separate consumer).
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { connect as natsConnect } from "@nats-io/transport-node";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { available, startNats } from "../../scripts/brokers.ts";
import { connect } from "../../mod.ts";

const nats = available("nats-server");
const N = 100_000;

Deno.test({
  name: "bridge: a nats-server restart mid-stream loses nothing and duplicates nothing",
  ignore: !nats.ok,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const broker = await startNats();
    const home = await Deno.makeTempDir({ prefix: "mq-bridge-" });
    try {
      const mq = await connect(`file:${home}`);
      const lines = Array.from({ length: N }, (_, i) => `m-${i}`);
      for (let i = 0; i < N; i += 10_000) {
        await mq.publishBatch("orders.eu", lines.slice(i, i + 10_000));
      }
      await mq.close();
      const admin = await natsConnect({ servers: `127.0.0.1:${broker.port}` });
      await (await jetstreamManager(admin)).streams.add({ name: "ORDERS", subjects: ["orders.>"] });
      await admin.close();

      const bridge = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          new URL("../../cli/main.ts", import.meta.url).pathname,
          "bridge",
          "--to",
          broker.url,
          "-e",
        ],
        env: { MQ_HOME: home },
        stdout: "null",
        stderr: "piped",
      }).spawn();
      // Stop the broker once part of the stream has arrived, then start it again.
      await waitForCount(broker.port, 1, 30_000);
      await broker.stop({ keepStore: true });
      await new Promise((r) => setTimeout(r, 1500));
      await broker.restart();
      const out = await bridge.output();
      const stderr = new TextDecoder().decode(out.stderr);
      assertEquals(out.code, 0, stderr);

      const nc = await natsConnect({ servers: `127.0.0.1:${broker.port}` });
      const jsm = await jetstreamManager(nc);
      assertEquals((await jsm.streams.info("ORDERS")).state.messages, N);
      await jsm.consumers.add("ORDERS", { durable_name: "check", ack_policy: AckPolicy.None });
      const consumer = await jetstream(nc).consumers.get("ORDERS", "check");
      const seen = new Set<string>();
      const dec = new TextDecoder();
      while (seen.size < N) {
        const msgs = await consumer.fetch({ max_messages: 5000, expires: 2000 });
        let got = 0;
        for await (const m of msgs) {
          seen.add(dec.decode(m.data));
          got++;
        }
        if (got === 0) break;
      }
      assertEquals(seen.size, N);
      assertEquals(seen.has("m-0") && seen.has(`m-${N - 1}`), true);
      await nc.close();
    } finally {
      await broker.stop();
      await Deno.remove(home, { recursive: true }).catch(() => {});
    }
  },
});

async function waitForCount(port: number, atLeast: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  const nc = await natsConnect({ servers: `127.0.0.1:${port}` });
  const jsm = await jetstreamManager(nc);
  try {
    while (Date.now() < until) {
      const n = (await jsm.streams.info("ORDERS")).state.messages;
      if (n >= atLeast) return;
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error("the bridge sent nothing in time");
  } finally {
    await nc.close();
  }
}
