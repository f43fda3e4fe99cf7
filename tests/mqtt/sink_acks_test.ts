/**
 * The MQTT sink against a scripted broker on a loopback port (mq's own
 * packet reader on the broker's side): a batch whose acknowledgements fail
 * mid-way settles, whether the broker refuses one PUBLISH (an MQTT 5
 * PUBACK reason code) or drops the connection with PUBLISHes unacknowledged;
 * what is acknowledged in order resolves; a broker that refuses MQTT 5 is
 * spoken to in 3.1.1 (payloads only); a silent broker is left after 1.5
 * keepalives, unless reading is paused on purpose; and a bridge coming in whose
 * SUBACK never comes still stops when told to.
 */
import { deepStrictEqual as eq, ok, rejects } from "node:assert/strict";
import { bridgeInto, subjectSink } from "../../adapters/mqtt/_bridge.ts";
import { MemoryAdapter } from "../../adapters/memory/mod.ts";
import { Mq } from "../../core/client.ts";
import { readPackets } from "../../adapters/mqtt/_packets.ts";
import { MqttClient } from "../../adapters/mqtt/_client.ts";
import { parseBackendUrl } from "../../core/backend_url.ts";
import { ReceivedMessage } from "../../core/message.ts";

const enc = new TextEncoder();

/**
 * A broker that accepts one MQTT 5 client and answers the i-th PUBLISH
 * (from 0) with `answer(i, packetId)`: the bytes to send back, or "close".
 */
function scripted(
  answer: (i: number, id: number) => Uint8Array | "close" | undefined,
  only311 = false,
) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let published = 0;
  const payloads: string[] = [];
  const serve = async (conn: Deno.Conn) => {
    let buf = new Uint8Array(0);
    const chunk = new Uint8Array(65536);
    let open = true;
    while (open) {
      const n = await conn.read(chunk).catch(() => null);
      if (n === null) break;
      const next = new Uint8Array(buf.length + n);
      next.set(buf);
      next.set(chunk.subarray(0, n), buf.length);
      const replies: Uint8Array[] = [];
      const { used } = readPackets(next, next.length, (p) => {
        if (!open) return;
        if (p.type === 1) {
          const level = p.buf[p.start + 6]; // after the protocol name "MQTT"
          if (level === 5 && only311) {
            // 3.1.1's "unacceptable protocol version", then the connection ends.
            replies.push(new Uint8Array([0x20, 2, 0, 1]));
            open = false;
          } else if (level === 5) replies.push(new Uint8Array([0x20, 3, 0, 0, 0])); // no properties
          else replies.push(new Uint8Array([0x20, 2, 0, 0]));
        }
        if (p.type !== 3) return;
        const tl = (p.buf[p.start] << 8) | p.buf[p.start + 1];
        const id = (p.buf[p.start + 2 + tl] << 8) | p.buf[p.start + 3 + tl];
        if (only311) {
          payloads.push(new TextDecoder().decode(p.buf.subarray(p.start + 4 + tl, p.end)));
        }
        const a = answer(published++, id);
        if (a === "close") open = false;
        else if (a) replies.push(a);
      });
      buf = next.slice(used);
      for (const r of replies) await conn.write(r).catch(() => {});
      if (!open) conn.close();
    }
    try {
      conn.close();
    } catch { /* closed */ }
  };
  const conns: Promise<void>[] = [];
  const served = (async () => {
    // Each client served at once (several may be connected).
    for await (const conn of listener) conns.push(serve(conn));
    await Promise.all(conns);
  })();
  const port = (listener.addr as Deno.NetAddr).port;
  return {
    url: parseBackendUrl(`mqtt://127.0.0.1:${port}${only311 ? "" : "?version=5"}`),
    published: () => published,
    /** What the PUBLISHes carried after their packet id (3.1.1: the payload, nothing else). */
    payloads,
    stop: async () => {
      listener.close();
      await served.catch(() => {});
    },
  };
}

const puback = (id: number, reason = 0) => new Uint8Array([0x40, 3, id >> 8, id & 255, reason]);

const messages = (n: number) =>
  Array.from(
    { length: n },
    (_, i) =>
      new ReceivedMessage("t", 0, {
        offset: i,
        timestamp: 0,
        payload: enc.encode(`m-${i}`),
      }, 1),
  );

/** `p`, or a rejection once 20 s passed (a liveness bound, not a timing). */
function settles<T>(p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("the batch never settled")), 20_000);
    }),
  ]);
}

Deno.test("mqtt sink: a batch whose PUBLISHes are all acknowledged resolves", async () => {
  const broker = scripted((_, id) => puback(id));
  const sink = await subjectSink(broker.url);
  try {
    await settles(sink.send("t", messages(3000)));
    eq(broker.published(), 3000);
  } finally {
    await sink.close();
    await broker.stop();
  }
});

Deno.test("mqtt sink: a PUBACK refusing one PUBLISH mid-batch rejects the batch (it settles)", async () => {
  const broker = scripted((i, id) => puback(id, i === 1500 ? 0x87 : 0));
  const sink = await subjectSink(broker.url);
  try {
    await rejects(
      settles(sink.send("t", messages(3000))),
      /the MQTT broker at 127\.0\.0\.1:\d+ refused a PUBLISH to "t": Not authorized \(135\)/,
    );
    ok(broker.published() < 3000, `${broker.published()} published: the rest was not sent`);
  } finally {
    await sink.close();
    await broker.stop();
  }
});

Deno.test("mqtt sink: a connection lost with PUBLISHes unacknowledged rejects the batch", async () => {
  const broker = scripted((i, id) => i === 1500 ? "close" : puback(id));
  const sink = await subjectSink(broker.url);
  const lines: string[] = [];
  sink.watch?.((l) => lines.push(l));
  try {
    await rejects(
      settles(sink.send("t", messages(3000))),
      /the connection to the MQTT broker at 127\.0\.0\.1:\d+ was lost/,
    );
    ok(lines[0]?.startsWith("disconnected from the MQTT broker at"), lines.join("\n"));
  } finally {
    await sink.close();
    await broker.stop();
  }
});

Deno.test("mqtt in: a bridge whose SUBACK never comes stops when its signal says so", async () => {
  const broker = scripted(() => undefined); // answers CONNECT, never SUBSCRIBE
  const stop = new AbortController();
  const lines: string[] = [];
  try {
    const n = bridgeInto(broker.url, new Mq(new MemoryAdapter()), {
      subjects: ["a/#"],
      into: "a",
      group: "g",
      follow: true,
      signal: stop.signal,
      onState: (l) => lines.push(l),
    });
    await new Promise((r) => setTimeout(r, 200));
    stop.abort();
    eq(await settles(n), 0);
    eq(lines, []);
  } finally {
    await broker.stop();
  }
});

Deno.test("mqtt sink: a broker that refuses MQTT 5 gets 3.1.1, said in one line, payloads only", async () => {
  const broker = scripted((_, id) => new Uint8Array([0x40, 2, id >> 8, id & 255]), true);
  const lines: string[] = [];
  const sink = await subjectSink(broker.url, { onState: (l) => lines.push(l) });
  try {
    const list = messages(3).map((m) => {
      m.record.headers = { region: "eu" };
      return m;
    });
    await settles(sink.send("t", list));
    eq(broker.payloads, ["m-0", "m-1", "m-2"]);
    eq(lines, [
      `the MQTT broker at ${
        broker.url.href.slice(7)
      } speaks 3.1.1, not 5: only payloads travel (no keys, headers or ids; name them in --target)`,
    ]);
  } finally {
    await sink.close();
    await broker.stop();
  }
});

Deno.test("mqtt client: a silent broker is left after 1.5 keepalives, but not while reading is paused", async () => {
  const broker = scripted(() => undefined); // never answers PINGREQ
  const port = Number(broker.url.href.split(":").at(-1)!.split("?")[0]);
  const open = (lines: string[]) =>
    MqttClient.connect({
      host: "127.0.0.1",
      port,
      tls: false,
      version: 5,
      where: `127.0.0.1:${port}`,
      timeoutMs: 5000,
      window: 16,
      clientId: "k",
      clean: true,
      keepaliveS: 1,
      onState: (l) => lines.push(l),
    });
  const silentLines: string[] = [], pausedLines: string[] = [];
  const silent = await open(silentLines);
  const paused = await open(pausedLines);
  paused.pause();
  try {
    // Past 1.5 keepalives of silence (a liveness bound, not a timing).
    await new Promise((r) => setTimeout(r, 2600));
    // The silent one was left (then connected again: this broker answers a new CONNECT).
    eq(silentLines[0], `disconnected from the MQTT broker at 127.0.0.1:${port}; reconnecting`);
    eq([paused.connected, pausedLines], [true, []]);
  } finally {
    await silent.end();
    await paused.end();
    await broker.stop();
  }
});
