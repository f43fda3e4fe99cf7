/** Helpers of the NATS tests: local messages to bridge, and what a stream holds. */
import { deepStrictEqual as eq } from "node:assert/strict";
import { connect as natsConnect } from "@nats-io/transport-node";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "../../mod.ts";

/** The command line of mq. */
export const MQ_MAIN = new URL("../../cli/main.ts", import.meta.url).pathname;

/** Publishes `m-0` ... `m-<n-1>` to `topic` of the file backend in `home`. */
export async function publishNumbered(home: string, topic: string, n: number): Promise<void> {
  const mq = await connect(`file:${home}`);
  try {
    for (let i = 0; i < n; i += 10_000) {
      await mq.publishBatch(
        topic,
        Array.from({ length: Math.min(10_000, n - i) }, (_, j) => `m-${i + j}`),
      );
    }
  } finally {
    await mq.close();
  }
}

/** Creates a stream on the broker at `port`. */
export async function addStream(port: number, name: string, subjects: string[]): Promise<void> {
  const nc = await natsConnect({ servers: `127.0.0.1:${port}` });
  try {
    await (await jetstreamManager(nc)).streams.add({ name, subjects });
  } finally {
    await nc.close();
  }
}

/** How many messages a stream holds now. */
export async function streamCount(port: number, stream: string): Promise<number> {
  const nc = await natsConnect({ servers: `127.0.0.1:${port}` });
  try {
    return (await (await jetstreamManager(nc)).streams.info(stream)).state.messages;
  } finally {
    await nc.close();
  }
}

/** When the last message of a stream was stored. */
export async function lastStoredAt(port: number, stream: string): Promise<Date> {
  const nc = await natsConnect({ servers: `127.0.0.1:${port}` });
  try {
    const jsm = await jetstreamManager(nc);
    const last = (await jsm.streams.info(stream)).state.last_seq;
    return (await jsm.streams.getMessage(stream, { seq: last }))!.time;
  } finally {
    await nc.close();
  }
}

/**
 * Reads every message of a stream with a consumer of its own and checks that
 * they are exactly `m-0` ... `m-<n-1>`, each once; with `inOrder`, in that order.
 */
export async function assertNumbered(
  port: number,
  stream: string,
  n: number,
  inOrder: boolean,
): Promise<void> {
  const nc = await natsConnect({ servers: `127.0.0.1:${port}` });
  try {
    const jsm = await jetstreamManager(nc);
    eq((await jsm.streams.info(stream)).state.messages, n);
    await jsm.consumers.add(stream, { durable_name: "check", ack_policy: AckPolicy.None });
    const consumer = await jetstream(nc).consumers.get(stream, "check");
    const dec = new TextDecoder();
    const seen = new Uint8Array(n);
    let read = 0;
    const wrong: string[] = [];
    while (read < n) {
      let got = 0;
      for await (const m of await consumer.fetch({ max_messages: 10_000, expires: 2000 })) {
        const text = dec.decode(m.data);
        const i = /^m-(\d+)$/.test(text) ? Number(text.slice(2)) : -1;
        if (i < 0 || i >= n || seen[i]++ > 0 || (inOrder && i !== read)) {
          if (wrong.length < 5) wrong.push(`#${read}: ${text}`);
        }
        read++;
        got++;
        if (m.info.pending === 0) break;
      }
      if (got === 0) break;
    }
    eq([read, wrong, seen.indexOf(0)], [n, [], -1]);
  } finally {
    await nc.close();
  }
}
