/**
 * Bridging to and from NATS subjects (not the mq backend layout): a topic
 * goes out as the subject of its name, through JetStream (with the message
 * id as `Nats-Msg-Id`) when a stream covers the subject, else as core NATS;
 * and subjects come in from a durable JetStream consumer (or a core
 * subscription) into a local topic, with the subject and headers kept.
 */
import { headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { BridgeSink } from "../../core/bridge.ts";
import type { Mq } from "../../core/client.ts";
import { MqError } from "../../core/errors.ts";

/** Header names that carry mq's metadata over NATS. */
const KEY = "Mq-Key", SUBJECT = "nats-subject";

/** A sink that publishes each topic to the NATS subject of the same name. */
export function natsSubjectSink(nc: NatsConnection): BridgeSink {
  const js = jetstream(nc);
  const covered = new Map<string, boolean>();
  let jsm: Awaited<ReturnType<typeof jetstreamManager>> | undefined;
  const isCovered = async (subject: string) => {
    let c = covered.get(subject);
    if (c === undefined) {
      try {
        jsm ??= await jetstreamManager(nc);
        c = Boolean(await jsm.streams.find(subject).catch(() => ""));
      } catch {
        c = false;
      }
      covered.set(subject, c);
    }
    return c;
  };
  return {
    async send(topic, messages) {
      const jetStream = await isCovered(topic);
      const all: Promise<unknown>[] = [];
      try {
        for (const m of messages) {
          // Headers only where there is something to say (they cost per message).
          let h: ReturnType<typeof natsHeaders> | undefined;
          const own = m.record.headers;
          if (own || m.key !== undefined) {
            h = natsHeaders();
            for (const [k, v] of Object.entries(own ?? {})) h.set(k, v);
            if (m.key !== undefined) h.set(KEY, m.key);
          }
          if (jetStream) {
            all.push(
              js.publish(topic, m.payload, {
                headers: h,
                msgID: `${topic}:${m.id}`,
                timeout: 5000,
              }),
            );
            if (all.length % 512 === 0 && all.length >= 1024) {
              await Promise.all(all.slice(all.length - 1024, all.length - 512));
            }
          } else {
            nc.publish(topic, m.payload, { headers: h });
          }
        }
        await Promise.all(all);
        // Core NATS: the server has it once a round trip after it returns.
        if (!jetStream) await nc.flush();
      } catch (e) {
        // Let every outstanding publish finish (or fail) before the batch is retried.
        await Promise.allSettled(all);
        throw e;
      }
    },
    close: () => nc.drain(),
  };
}

/** Options of {@link bridgeFromNats}. */
export interface FromNatsOptions {
  subjects: string[];
  into: string;
  group: string;
  follow: boolean;
  signal?: AbortSignal;
  onState?: (line: string) => void;
}

/**
 * Brings messages of NATS subjects into a local topic. Subjects a stream
 * covers are read by a durable consumer (named by the group) and acked only
 * after they are stored, so nothing is lost; others by a core subscription.
 */
export async function bridgeFromNats(
  nc: NatsConnection,
  target: Mq,
  opts: FromNatsOptions,
): Promise<number> {
  const jsm = await jetstreamManager(nc).catch(() => undefined);
  const js = jetstream(nc);
  let total = 0;
  const store = async (
    msgs: {
      subject: string;
      data: Uint8Array;
      headers?: { keys(): string[]; get(k: string): string };
    }[],
  ) => {
    await target.publishBatch(
      opts.into,
      msgs.map((m) => {
        const headers: Record<string, string> = { [SUBJECT]: m.subject };
        let key: string | undefined;
        for (const k of m.headers?.keys() ?? []) {
          if (k === KEY) key = m.headers!.get(k);
          else headers[k] = m.headers!.get(k);
        }
        return { payload: m.data, headers, key };
      }),
    );
    total += msgs.length;
  };
  const tasks = opts.subjects.map(async (subject) => {
    const stream = jsm ? await jsm.streams.find(subject).catch(() => "") : "";
    if (stream && jsm) {
      const durable = `mq-bridge-${opts.group}`.replace(/[^A-Za-z0-9_-]/g, "_");
      await jsm.consumers.add(stream, {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        filter_subject: subject,
      }).catch(() => {});
      const consumer = await js.consumers.get(stream, durable);
      opts.onState?.(`reading ${subject} from stream ${stream}`);
      while (!opts.signal?.aborted) {
        const pending = (await consumer.info()).num_pending;
        if (pending === 0) {
          if (!opts.follow) break;
          await new Promise((r) => setTimeout(r, 200));
          continue;
        }
        const batch = [];
        for await (
          const m of await consumer.fetch({ max_messages: Math.min(pending, 1024), expires: 2000 })
        ) {
          batch.push(m);
          if (batch.length >= Math.min(pending, 1024)) break;
        }
        await store(batch.map((m) => ({ subject: m.subject, data: m.data, headers: m.headers })));
        for (const m of batch) m.ack();
        if (batch.length > 0) await batch[batch.length - 1].ackAck().catch(() => {});
      }
    } else {
      if (!opts.follow) {
        throw new MqError(
          "INVALID_ARGUMENT",
          `no JetStream stream covers ${JSON.stringify(subject)}: -e needs a stream to drain`,
        );
      }
      opts.onState?.(`subscribed to ${subject} (core NATS: only messages from now on)`);
      const sub = nc.subscribe(subject);
      opts.signal?.addEventListener("abort", () => sub.unsubscribe(), { once: true });
      let buf: {
        subject: string;
        data: Uint8Array;
        headers?: { keys(): string[]; get(k: string): string };
      }[] = [];
      for await (const m of sub) {
        buf.push({ subject: m.subject, data: m.data, headers: m.headers });
        if (buf.length >= 256 || sub.getPending() === 0) {
          await store(buf);
          buf = [];
        }
      }
      if (buf.length > 0) await store(buf);
    }
  });
  await Promise.all(tasks);
  return total;
}
