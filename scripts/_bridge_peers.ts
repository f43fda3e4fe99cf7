/**
 * The peers of `scripts/bench_bridges.ts`: the same npm clients mq's
 * connectors use, driven from a plain Deno script with the same batching
 * (their best case), without mq. One mode a run:
 *
 * - `redis-out URL N`: XADD N messages of ~100 bytes (fields `payload`,
 *   `mq-id`, as mq writes them), pipelines of 1024, 4 in flight.
 * - `redis-in URL STREAM GROUP N`: XREADGROUP COUNT 1024 then XACK, until N.
 * - `mqtt-out URL N`: QoS 1 PUBLISH with the user property `mq-id`, 1024
 *   awaiting PUBACK at once.
 * - `mqtt-in URL CLIENT_ID N`: the persistent session's N queued messages.
 *
 * Prints the messages per second of the work (start-up excluded) on stdout.
 *
 * @module
 */
import { createClient, RESP_TYPES } from "@redis/client";
import mqtt from "mqtt";
import { Buffer } from "node:buffer";

const [mode, url, ...rest] = Deno.args;
const payloadOf = (i: number) =>
  Buffer.from(`message-${String(i).padStart(8, "0")}-`.padEnd(100, "x"));

if (mode === "redis-out") {
  const n = Number(rest[0]);
  const c = createClient({ url, RESP: 2 });
  await c.connect();
  const t = performance.now();
  const inFlight: Promise<unknown>[] = [];
  for (let i = 0; i < n; i += 1024) {
    const p = c.multi();
    for (let j = i; j < Math.min(n, i + 1024); j++) {
      p.addCommand(["XADD", "peer", "*", "payload", payloadOf(j), "mq-id", `peer:0-${j}`]);
    }
    inFlight.push(p.execAsPipeline());
    if (inFlight.length >= 4) await inFlight.shift();
  }
  await Promise.all(inFlight);
  console.log(Math.round(n / ((performance.now() - t) / 1000)));
  await c.close();
} else if (mode === "redis-in") {
  const [stream, group, count] = rest;
  const n = Number(count);
  const c = createClient({ url, RESP: 2 }).withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
  await c.connect();
  await c.sendCommand(["XGROUP", "CREATE", stream, group, "0"]).catch(() => {});
  const t = performance.now();
  let got = 0;
  while (got < n) {
    const r = await c.sendCommand<[Buffer, [Buffer, Buffer[]][]][] | null>(
      ["XREADGROUP", "GROUP", group, "c", "COUNT", "1024", "STREAMS", stream, ">"],
    );
    if (!r) break;
    const entries = r[0][1];
    got += entries.length;
    await c.sendCommand(["XACK", stream, group, ...entries.map((e) => e[0])]);
  }
  console.log(Math.round(got / ((performance.now() - t) / 1000)));
  await c.close();
} else if (mode === "mqtt-out") {
  const n = Number(rest[0]);
  const c = await mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 0 });
  const t = performance.now();
  await new Promise<void>((resolve, reject) => {
    let sent = 0, acked = 0;
    const pump = () => {
      while (sent < n && sent - acked < 1024) {
        const i = sent++;
        c.publish(
          "peer",
          payloadOf(i),
          { qos: 1, properties: { userProperties: { "mq-id": `peer:0-${i}` } } },
          (e) => {
            if (e) return reject(e);
            if (++acked === n) resolve();
            else pump();
          },
        );
      }
    };
    pump();
  });
  console.log(Math.round(n / ((performance.now() - t) / 1000)));
  await c.endAsync();
} else if (mode === "mqtt-in") {
  const [clientId, count] = rest;
  const n = Number(count);
  let got = 0;
  let t = 0;
  let done: () => void;
  const all = new Promise<void>((r) => done = r);
  const c = mqtt.connect(url, {
    protocolVersion: 5,
    clientId,
    clean: false,
    reconnectPeriod: 0,
    properties: { sessionExpiryInterval: 3600, receiveMaximum: 1024 },
  });
  c.on("message", () => {
    if (got === 0) t = performance.now();
    if (++got === n) done();
  });
  await all;
  console.log(Math.round(n / ((performance.now() - t) / 1000)));
  await c.endAsync();
} else {
  throw new Error(`unknown mode ${mode}`);
}
