/**
 * Bridging to and from NATS subjects (not the mq backend layout): a topic
 * goes out as the subject of its name, through JetStream (with the message
 * id as `Nats-Msg-Id`) when a stream covers the subject, else as core NATS;
 * and subjects come in from durable JetStream consumers (or a core
 * subscription) into a local topic, with the subject and headers kept.
 */
import { headers as natsHeaders, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import {
  AckPolicy,
  type Consumer,
  DeliverPolicy,
  jetstream,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  jetstreamManager,
  type JsMsg,
} from "@nats-io/jetstream";
import { type BridgeSink, groupByTarget, type IntoOptions, isFatal } from "../../core/bridge.ts";
import { compileTarget } from "../../core/bridge_target.ts";
import type { Mq, OutgoingMessage } from "../../core/client.ts";
import type { ReceivedMessage } from "../../core/message.ts";
import { MqError } from "../../core/errors.ts";
import { backoffDelay } from "../../core/retry.ts";
import { watchConnection } from "./connection.ts";
import { coreFrames } from "./_core_frames.ts";

/** Header names that carry mq's metadata over NATS. */
const KEY = "Mq-Key", META = "Mq-Meta", SUBJECT = "nats-subject";

/** How long a stream lookup of the sink is trusted. */
const COVERAGE_TTL_MS = 10_000;
/** Outstanding JetStream acks of the sink at once. */
const WINDOW = 2048;

/** True for a JetStream "not found" answer of kind `code`. */
function isNotFound(e: unknown, code: number): boolean {
  return e instanceof JetStreamApiError && e.code === code;
}

/** True when the server or account has no JetStream. */
function noJetStream(e: unknown): boolean {
  return (e as Error)?.name === "JetStreamNotEnabled";
}

/** Whether a header name and value can travel as a NATS header as they are. */
function rawHeader(name: string, value: string): boolean {
  return /^[!-9;-~]+$/.test(name) && !/[\r\n]/.test(value) && value.trim() === value;
}

/**
 * The headers of a bridged message: its own headers and key as NATS headers
 * where they can be, the rest (a name with a space, a value with a newline)
 * JSON-encoded in `Mq-Meta`; undefined when there is nothing to say.
 */
function headersOf(own: Record<string, string> | undefined, key: string | undefined) {
  if (own === undefined && key === undefined) return undefined;
  const h = natsHeaders();
  let meta: { key?: string; headers?: Record<string, string> } | undefined;
  for (const [k, v] of Object.entries(own ?? {})) {
    if (rawHeader(k, v) && k !== KEY && k !== META) h.set(k, v);
    else ((meta ??= {}).headers ??= {})[k] = v;
  }
  if (key !== undefined) {
    if (rawHeader(KEY, key)) h.set(KEY, key);
    else (meta ??= {}).key = key;
  }
  if (meta) h.set(META, encodeURIComponent(JSON.stringify(meta)));
  return h;
}

/**
 * Refuses a message the server would refuse (retrying could never help).
 *
 * @throws {MqError} `MESSAGE_TOO_LARGE`
 */
function checkSize(topic: string, m: ReceivedMessage, h: MsgHdrs | undefined, max: number) {
  const size = m.payload.length +
    (h ? (h as unknown as { encode(): Uint8Array }).encode().length : 0);
  if (size > max) {
    throw new MqError(
      "MESSAGE_TOO_LARGE",
      `message ${m.partition}-${m.offset} of topic "${topic}" is ${size} bytes with its headers; the NATS server takes at most ${max} (max_payload)`,
    );
  }
}

/** Options of {@link natsSubjectSink}. */
export interface SubjectSinkOptions {
  /** How long a lookup of the stream that covers a subject is trusted (ms). @default 10000 */
  coverageTtlMs?: number;
  /** The subject of each message, a `--target` template (see `compileTarget`). @default "{topic}" */
  target?: string;
}

/**
 * A sink that publishes each topic to the NATS subject of the same name (or
 * the one `options.target` names for each message):
 * through JetStream when a stream covers it (acknowledged, `Nats-Msg-Id` =
 * the message id, so a resend is a no-op), else as core NATS (flushed).
 *
 * A message published with an id goes out with that id as it is; one
 * without goes out as `<topic>:<partition>-<offset>`, since the generated
 * ids of two topics that one stream covers would collide.
 */
export function natsSubjectSink(nc: NatsConnection, options: SubjectSinkOptions = {}): BridgeSink {
  const js = jetstream(nc);
  const ttl = options.coverageTtlMs ?? COVERAGE_TTL_MS;
  const targetOf = options.target === undefined || options.target === "{topic}"
    ? undefined
    : compileTarget(options.target);
  // Only answers are cached (covered or not), each for a while; failures are not.
  const covered = new Map<string, { stream: boolean; until: number }>();
  let jsm: JetStreamManager | undefined;
  const isCovered = async (subject: string) => {
    const c = covered.get(subject);
    if (c && c.until > Date.now()) return c.stream;
    let stream: boolean;
    try {
      jsm ??= await jetstreamManager(nc);
      stream = Boolean(await jsm.streams.find(subject));
    } catch (e) {
      // No stream, or no JetStream at all, are answers; anything else is retried.
      if (!isNotFound(e, JetStreamApiCodes.StreamNotFound) && !noJetStream(e)) throw e;
      stream = false;
    }
    // A --target with {key} may name many subjects: the cache stays bounded.
    if (covered.size >= 10_000) covered.clear();
    covered.set(subject, { stream, until: Date.now() + ttl });
    return stream;
  };
  const sendTo = async (topic: string, messages: ReceivedMessage[]) => {
    const jetStream = await isCovered(topic);
    const max = nc.info?.max_payload ?? 1024 * 1024;
    const frames = jetStream ? undefined : coreFrames(nc, topic);
    const pending: Promise<unknown>[] = [];
    let settled = 0;
    try {
      for (const m of messages) {
        const h = headersOf(m.record.headers, m.key);
        if (m.payload.length > max - 65536) checkSize(topic, m, h, max);
        if (jetStream) {
          const id = m.record.id;
          pending.push(
            js.publish(topic, m.payload, {
              headers: h,
              msgID: id !== undefined && !/[\r\n]/.test(id) ? id : `${topic}:${m.id}`,
            }),
          );
          if (pending.length - settled >= WINDOW) {
            await Promise.all(pending.slice(settled, settled + WINDOW / 2));
            settled += WINDOW / 2;
          }
        } else if (!frames) {
          nc.publish(topic, m.payload, { headers: h });
        } else frames.add(m.payload, h);
      }
      frames?.end();
      await Promise.all(pending.slice(settled));
      // Core NATS: the server has it once a round trip after it returns.
      if (!jetStream) await nc.flush();
    } catch (e) {
      // Let every outstanding publish finish (or fail) before the batch is retried,
      // and look the subject up again then (its stream may be gone).
      await Promise.allSettled(pending);
      covered.delete(topic);
      throw e;
    }
  };
  return {
    async send(topic, messages) {
      if (!targetOf) return await sendTo(topic, messages);
      for (const [subject, list] of groupByTarget(topic, messages, targetOf)) {
        await sendTo(subject, list);
      }
    },
    watch: (onState) => watchConnection(nc, onState),
    close: () => nc.drain(),
  };
}

/**
 * Options of {@link bridgeFromNats}: the connector contract's (subjects may
 * have wildcards; the group names the durable consumers), and more.
 */
export interface FromNatsOptions extends IntoOptions {
  /**
   * How long a message handed to the bridge may stay unacknowledged before
   * JetStream delivers it again (ms). @default 10000
   */
  ackWaitMs?: number;
}

/** The durable consumer of a group for a subject: readable, and unique per (group, subject). */
export function durableName(group: string, subject: string): string {
  let h = 0x811c9dc5;
  const both = `${group}\u0000${subject}`;
  for (let i = 0; i < both.length; i++) h = Math.imul(h ^ both.charCodeAt(i), 0x01000193);
  const clean = (s: string, n: number) => s.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, n);
  return `mq-bridge-${clean(group, 60)}-${clean(subject, 60)}-${(h >>> 0).toString(36)}`;
}

/** A message on its way in. */
interface Incoming {
  subject: string;
  data: Uint8Array;
  headers?: MsgHdrs;
  /** `nats:<stream>:<seq>` for a stream's message (so a redelivery is dropped as a duplicate). */
  id?: string;
}

/**
 * Brings messages of NATS subjects into a local topic. Subjects a stream
 * covers are read by a durable consumer per (group, subject), acked only
 * after they are stored, and stored with the id `nats:<stream>:<seq>`, so a
 * redelivery is dropped by the topic's dedup window; others come from a core
 * subscription (only what is published from then on). Without `follow` it
 * stops once every consumer has nothing pending and nothing unacked. Broker
 * outages are retried with backoff (one line per state change), in both
 * modes; errors no retry mends end it.
 *
 * @throws {MqError} `INVALID_ARGUMENT` (with `-e`, a subject no stream covers),
 * `CONFLICT` (the durable exists with another filter), or the target's errors
 */
export async function bridgeFromNats(
  nc: NatsConnection,
  target: Mq,
  opts: FromNatsOptions,
): Promise<number> {
  const js = jetstream(nc);
  const ackWaitNs = (opts.ackWaitMs ?? 10_000) * 1_000_000;
  const signal = opts.signal;
  let total = 0;
  let failing = false;
  const say = (line: string) => opts.onState?.(line);
  watchConnection(nc, say);

  /** Runs `fn` until it succeeds, with backoff; undefined once stopped. */
  const retrying = async <T>(what: string, fn: () => Promise<T>): Promise<T | undefined> => {
    for (let attempt = 1;; attempt++) {
      if (signal?.aborted) return undefined;
      try {
        const r = await fn();
        if (failing) {
          failing = false;
          say("bringing messages in again");
        }
        return r;
      } catch (e) {
        if (signal?.aborted) return undefined;
        if (isFatal(e)) throw e;
        if (!failing) {
          failing = true;
          say(`${what} failed (${(e as Error).message}); retrying with backoff`);
        }
        await sleep(backoffDelay(attempt, { baseMs: 100, maxMs: 5000 }), signal);
      }
    }
  };

  const store = async (msgs: Incoming[]) => {
    const batch: OutgoingMessage[] = msgs.map((m) => {
      const headers: Record<string, string> = { [SUBJECT]: m.subject };
      let key: string | undefined;
      for (const k of m.headers?.keys() ?? []) {
        const v = m.headers!.get(k);
        if (k === KEY) key = v;
        else if (k === META) {
          const meta = parseMeta(v);
          if (!meta) headers[k] = v; // not ours, or damaged: kept as it came
          else {
            Object.assign(headers, meta.headers ?? {});
            if (meta.key !== undefined) key = meta.key;
          }
        } else headers[k] = v;
      }
      return { payload: m.data, headers, key, id: m.id };
    });
    const r = await target.publishBatch(opts.into, batch);
    total += r.count;
  };

  const jsm = await retrying("connecting to JetStream", async () => {
    try {
      return await jetstreamManager(nc);
    } catch (e) {
      // An account or server without JetStream: core subscriptions only.
      if (noJetStream(e)) return null;
      throw e;
    }
  });

  /** The stream that covers `subject`, or "" when none does. */
  const streamOf = async (subject: string): Promise<string> => {
    if (!jsm) return "";
    try {
      return await jsm.streams.find(subject);
    } catch (e) {
      if (isNotFound(e, JetStreamApiCodes.StreamNotFound)) return "";
      throw e;
    }
  };

  /** The group's durable consumer of `subject` on `stream`, created when missing. */
  const consumerOf = async (stream: string, subject: string): Promise<Consumer> => {
    const durable = durableName(opts.group, subject);
    try {
      const ci = await jsm!.consumers.info(stream, durable);
      const filter = ci.config.filter_subject ?? "";
      if (filter !== subject) {
        throw new MqError(
          "CONFLICT",
          `consumer "${durable}" of stream "${stream}" reads ${JSON.stringify(filter)}, not ${
            JSON.stringify(subject)
          }`,
        );
      }
    } catch (e) {
      if (!isNotFound(e, JetStreamApiCodes.ConsumerNotFound)) throw e;
      await jsm!.consumers.add(stream, {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        filter_subject: subject,
        ack_wait: ackWaitNs,
        max_ack_pending: 8192,
      });
    }
    return await js.consumers.get(stream, durable);
  };

  const fromStream = async (subject: string, stream: string) => {
    const consumer = await retrying(`reading ${subject}`, () => consumerOf(stream, subject));
    if (!consumer) return;
    say(`reading ${subject} from stream ${stream}`);
    for (;;) {
      const more = await retrying(`reading ${subject}`, async () => {
        let want = 1024;
        if (!opts.follow) {
          // Drained only when nothing waits and nothing handed out is unacked
          // (a crashed run's messages come back after the ack wait).
          const info = await consumer.info();
          if (info.num_pending === 0 && info.num_ack_pending === 0) return false;
          if (info.num_pending > 0) want = Math.min(want, info.num_pending);
        }
        const batch: JsMsg[] = [];
        const msgs = await consumer.fetch({ max_messages: want, expires: 2000 });
        const stop = () => msgs.stop();
        signal?.addEventListener("abort", stop, { once: true });
        try {
          for await (const m of msgs) {
            batch.push(m);
            if (batch.length >= want || m.info.pending === 0) break;
          }
        } finally {
          signal?.removeEventListener("abort", stop);
          msgs.stop();
        }
        if (batch.length === 0) return true;
        await store(batch.map((m) => ({
          subject: m.subject,
          data: m.data,
          headers: m.headers,
          id: `nats:${stream}:${m.seq}`,
        })));
        // Each message is acked (a redelivered one may come after later ones);
        // the last one's ack is confirmed, and acks are handled in order.
        for (let i = 0; i < batch.length - 1; i++) batch[i].ack();
        await batch[batch.length - 1].ackAck();
        return true;
      });
      if (!more || signal?.aborted) return;
    }
  };

  const fromCore = async (subject: string) => {
    if (!opts.follow) {
      throw new MqError(
        "INVALID_ARGUMENT",
        `no JetStream stream covers ${JSON.stringify(subject)}: -e needs a stream to drain`,
      );
    }
    say(`subscribed to ${subject} (core NATS: only messages from now on)`);
    // The client subscribes again by itself after a reconnect.
    const sub = nc.subscribe(subject);
    signal?.addEventListener("abort", () => sub.unsubscribe(), { once: true });
    let buf: Incoming[] = [];
    const flush = async () => {
      const out = buf;
      buf = [];
      await retrying(`storing ${subject}`, () => store(out));
    };
    for await (const m of sub) {
      buf.push({ subject: m.subject, data: m.data, headers: m.headers });
      if (buf.length >= 256 || sub.getPending() === 0) await flush();
    }
    if (buf.length > 0) await flush();
  };

  await Promise.all(opts.subjects.map(async (subject) => {
    const stream = await retrying(`looking up ${subject}`, () => streamOf(subject));
    if (stream === undefined) return;
    if (stream) await fromStream(subject, stream);
    else await fromCore(subject);
  }));
  return total;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** The headers and key a bridge put in `Mq-Meta`, or undefined when it is not such a value. */
function parseMeta(
  value: string,
): { headers?: Record<string, string>; key?: string } | undefined {
  try {
    const v = JSON.parse(decodeURIComponent(value));
    if (!v || typeof v !== "object" || Array.isArray(v)) return undefined;
    const headers = v.headers;
    if (headers !== undefined) {
      if (!headers || typeof headers !== "object" || Array.isArray(headers)) return undefined;
      if (!Object.values(headers).every((x) => typeof x === "string")) return undefined;
    }
    if (v.key !== undefined && typeof v.key !== "string") return undefined;
    return { headers, key: v.key };
  } catch {
    return undefined;
  }
}
