/**
 * The NATS adapter deduplicates with JetStream itself: `appendDeduplicated`
 * sends each id as `Nats-Msg-Id`, keeps the stream's duplicate window equal
 * to the topic's, and reports what the server dropped; and `mq pub --id` /
 * `--json-lines` with more ids than one state document could hold works.
 */
import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { connect as natsConnect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { available, startNats } from "../../scripts/brokers.ts";
import { connectNats, NatsAdapter, streamName } from "../../adapters/nats/mod.ts";
import { parseBackendUrl } from "../../core/backend_url.ts";
import { batchOf, type RecordMeta } from "../../core/record.ts";
import { Mq } from "../../core/client.ts";

const nats = available("nats-server");
const enc = new TextEncoder(), dec = new TextDecoder();
const main = new URL("../../cli/main.ts", import.meta.url).pathname;

function batch(items: [string, string | undefined][]) {
  return batchOf(
    items.map(([p]) => enc.encode(p)),
    items.map(([, id]): RecordMeta | undefined => (id === undefined ? undefined : { id })),
  );
}

Deno.test({
  name: "nats: appendDeduplicated drops ids seen within the window (Nats-Msg-Id), keeps the rest",
  ignore: !nats.ok,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const broker = await startNats();
    const adapter = await NatsAdapter.open(await connectNats(parseBackendUrl(broker.url)));
    const nc = await natsConnect({ servers: `127.0.0.1:${broker.port}` });
    try {
      const r1 = await adapter.appendDeduplicated(
        "t",
        0,
        batch([["a", "x"], ["b", undefined]]),
        300,
      );
      eq(r1, { first: 0, kept: [0, 1] });
      // A repeat of x, two of y in one batch, and a record without id.
      const r2 = await adapter.appendDeduplicated(
        "t",
        0,
        batch([["c", "x"], ["d", "y"], ["e", "y"], ["f", undefined]]),
        300,
      );
      eq(r2, { first: 2, kept: [1, 3] });
      eq(await adapter.appendDeduplicated("t", 0, batch([["g", "y"]]), 300), {
        first: -1,
        kept: [],
      });
      // The stream's own window is the one asked for, and the ids are on the messages.
      const jsm = await jetstreamManager(nc);
      eq((await jsm.streams.info(streamName("t", 0))).config.duplicate_window, 300_000_000);
      const m = await jetstream(nc).streams.get(streamName("t", 0)).then((s) =>
        s.getMessage({ seq: 3 })
      );
      eq([dec.decode(m!.data), m!.header.get("Nats-Msg-Id")], ["d", "y"]);
      // After the window, x is new again.
      await new Promise((r) => setTimeout(r, 600));
      eq(await adapter.appendDeduplicated("t", 0, batch([["h", "x"]]), 300), {
        first: 4,
        kept: [0],
      });
      // Another window updates the stream.
      await adapter.appendDeduplicated("t", 0, batch([["i", "z"]]), 60_000);
      eq((await jsm.streams.info(streamName("t", 0))).config.duplicate_window, 60_000_000_000);
      // What was stored, read back through the core, ids included.
      const mq = new Mq(adapter);
      // A plain read takes the topics that have settings (appends here went below the core).
      await mq.topics.create("t");
      const got: string[] = [];
      for await (const r of mq.subscribe("t", { follow: false })) got.push(`${r.text()}:${r.id}`);
      eq(got, ["a:x", "b:0-1", "d:y", "f:0-3", "h:x", "i:z"]);
    } finally {
      await nc.close();
      await adapter.close();
      await broker.stop();
    }
  },
});

Deno.test({
  name: "nats: ids published by plain appends (no native dedup) are kept as Mq-Id, never dropped",
  ignore: !nats.ok,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const broker = await startNats();
    const adapter = await NatsAdapter.open(await connectNats(parseBackendUrl(broker.url)));
    try {
      eq(await adapter.append("p", 0, batch([["a", "x"], ["b", "x"]])), 0);
      const reader = await adapter.openReader("p", 0, 0);
      eq((await reader.read(10)).map((r) => `${dec.decode(r.payload)}:${r.id}`), ["a:x", "b:x"]);
      reader.close();
    } finally {
      await adapter.close();
      await broker.stop();
    }
  },
});

Deno.test({
  name: "nats: mq pub --json-lines with 40,000 distinct ids (over 1 MB of ids) stores each once",
  ignore: !nats.ok,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const broker = await startNats();
    try {
      const N = 40_000;
      // Ids of 40 characters: 1.6 MB of ids, more than NATS's max_payload of 1 MB.
      const id = (i: number) => `order-${String(i).padStart(8, "0")}-${"x".repeat(25)}`;
      const lines = Array.from(
        { length: N },
        (_, i) => JSON.stringify({ id: id(i), payload: `p${i}` }),
      );
      const run = async (input: string) => {
        const child = new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", main, "--url", broker.url, "pub", "idt", "--json-lines", "--json"],
          stdin: "piped",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        const w = child.stdin.getWriter();
        await w.write(enc.encode(input));
        await w.close();
        const out = await child.output();
        return { code: out.code, out: dec.decode(out.stdout), err: dec.decode(out.stderr) };
      };
      const first = await run(lines.join("\n") + "\n");
      eq(first.code, 0, first.err);
      eq([JSON.parse(first.out).published, JSON.parse(first.out).duplicates], [N, 0], first.out);
      // The same ids again (and one new): only the new one is stored.
      const again = await run(
        lines.slice(0, 1000).join("\n") + "\n" +
          JSON.stringify({ id: id(N), payload: "new" }) + "\n",
      );
      eq(again.code, 0, again.err);
      eq([JSON.parse(again.out).published, JSON.parse(again.out).duplicates], [1, 1000], again.out);
      const nc = await natsConnect({ servers: `127.0.0.1:${broker.port}` });
      const jsm = await jetstreamManager(nc);
      eq((await jsm.streams.info(streamName("idt", 0))).state.messages, N + 1);
      // JetStream did the dedup: no id went into a state document.
      const kv = await new Kvm(nc).open("mq_state");
      const keys: string[] = [];
      for await (const k of await kv.keys()) keys.push(k);
      eq(keys.filter((k) => k.startsWith("dedup")), []);
      ok(keys.includes("topics.idt"), keys.join());
      await nc.close();
    } finally {
      await broker.stop();
    }
  },
});
