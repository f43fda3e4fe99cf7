/**
 * Bridging to and from Kafka, loaded only when a bridge names `kafka://`:
 * `kafka://host:port[,host:port...]` (plaintext; `?client_id=NAME`, default
 * `mq`). Client: kafkajs (pure JavaScript; the native clients download
 * binaries at install).
 *
 * | mq      | Kafka, going out (`--to`)                          | coming in (`--from`)                      |
 * | ------- | -------------------------------------------------- | ----------------------------------------- |
 * | payload | record value, bytes as they are                    | record value                              |
 * | target  | topic (`--target`, default `{topic}`)              | -                                         |
 * | key     | record key (so Kafka's partitioner keeps per-key order); none: null | record key (UTF-8)       |
 * | headers | record headers                                     | record headers (UTF-8)                    |
 * | id      | header `mq-id` (the mq id, else `<topic>:<partition>-<offset>`) | `kafka:<topic>:<partition>:<offset>`; `mq-id` is dropped |
 * | time    | record timestamp                                   | -                                         |
 * | origin  | -                                                  | headers `kafka-topic`, `kafka-partition`, `kafka-offset` |
 *
 * Going out: the idempotent producer (acks from all in-sync replicas, one
 * request in flight, so a retried request is not written twice); the local
 * position moves only after the batch's produce requests are acknowledged.
 * At least once: a batch resent after a failure of the bridge is written
 * again (the idempotent producer only dedups its own retries).
 * Coming in: a consumer group named by `--group`; offsets are committed only
 * after the batch is stored, and the id `kafka:<topic>:<partition>:<offset>`
 * makes a redelivery a duplicate: exactly once into mq within the topic's
 * dedup window. Without `follow` it stops once the group has stored every
 * partition up to the end it had when the bridge started.
 *
 * @module
 */
import process from "node:process";
import { Buffer } from "node:buffer";
import { type Consumer, Kafka, type KafkaMessage, type Message, type Producer } from "kafkajs";
// @ts-ignore: kafkajs ships no types for its internals
import Cluster from "kafkajs/src/cluster/index.js";
import {
  BRIDGE_WINDOW,
  type BridgeSink,
  type IntoOptions,
  isFatal,
  type SinkOptions,
  windowEnd,
} from "../../core/bridge.ts";
import { compileTarget } from "../../core/bridge_target.ts";
import type { BackendUrl } from "../../core/backend_url.ts";
import type { Mq, OutgoingMessage } from "../../core/client.ts";
import { MqError } from "../../core/errors.ts";

/**
 * Messages stored (one append, one sync) and committed at a time coming in:
 * a whole fetch of 100-byte records, where the contract's 1,024 made a sync
 * and a commit every 1,024 records (the bound in bytes is the contract's).
 */
const IN_WINDOW_MESSAGES = 8192;

/** The header that carries the mq id. */
const ID = "mq-id";
const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;

// kafkajs 2.2.4 schedules a timer with a negative delay when it is not
// throttled (harmless); Node's compatibility layer would print a warning
// for each, so that warning alone is dropped.
const emitWarning = process.emitWarning.bind(process) as (...args: unknown[]) => void;
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  const type = typeof warning === "string"
    ? (typeof rest[0] === "string" ? rest[0] : (rest[0] as { type?: string } | undefined)?.type)
    : warning.name;
  if (type !== "TimeoutNegativeWarning") emitWarning(warning, ...rest);
}) as typeof process.emitWarning;

// An idempotent producer asks the controller for its producer id; a cluster
// whose metadata names a controller it does not list (librdkafka's mock
// cluster says 0) cannot answer that, though any broker may serve
// InitProducerId without a transactional id: then the first listed broker is asked.
const findController = Cluster.prototype.findControllerBroker;
Cluster.prototype.findControllerBroker = async function (this: any) {
  try {
    return await findController.call(this);
  } catch (e) {
    const meta = this.brokerPool?.metadata;
    const listed = meta?.brokers?.some((b: { nodeId: number }) => b.nodeId === meta.controllerId);
    if ((e as Error).name !== "KafkaJSBrokerNotFound" || listed || !meta?.brokers?.length) throw e;
    return await this.findBroker({ nodeId: meta.brokers[0].nodeId });
  }
};

/** What a `kafka://` URL says. */
interface KafkaTarget {
  brokers: string[];
  clientId: string;
  shown: string;
}

/**
 * Reads a `kafka://` URL.
 *
 * @throws {MqError} `INVALID_URL` for a malformed host list or an unknown option
 */
function parseKafkaUrl(url: BackendUrl): KafkaTarget {
  const shown = JSON.stringify(url.href);
  const hosts = url.body.startsWith("//") ? url.body.slice(2).replace(/\/$/, "") : "";
  const brokers = hosts.split(",");
  for (const b of brokers) {
    const m = /^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\]):(\d{1,5})$/.exec(b);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) {
      throw new MqError(
        "INVALID_URL",
        `invalid Kafka URL ${shown}: expected kafka://host:port[,host:port...]`,
      );
    }
  }
  for (const k of url.params.keys()) {
    if (k !== "client_id") {
      throw new MqError(
        "INVALID_URL",
        `unknown kafka: URL option ${JSON.stringify(k)} (known: client_id)`,
      );
    }
  }
  return { brokers, clientId: url.params.get("client_id") ?? "mq", shown: url.href };
}

function kafkaOf(t: KafkaTarget): Kafka {
  return new Kafka({
    brokers: t.brokers,
    clientId: t.clientId,
    logLevel: 0,
    connectionTimeout: 3000,
    retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2000 },
  });
}

/** @throws {MqError} `UNREACHABLE` */
function unreachable(t: KafkaTarget, e: unknown): MqError {
  const why = (e as Error)?.message ?? String(e);
  return new MqError("UNREACHABLE", `cannot connect to Kafka at ${t.brokers.join(",")}: ${why}`, {
    cause: e,
  });
}

/** A Buffer over the same bytes (kafkajs writes Buffers; no copy). */
function bytes(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/**
 * A sink that produces each message to the Kafka topic of `--target`, with
 * the idempotent producer and acks from all in-sync replicas.
 *
 * @example
 * ```ts ignore
 * const sink = await subjectSink(parseBackendUrl("kafka://127.0.0.1:9092"), { target: "mq.{topic}" });
 * ```
 * @throws {MqError} `INVALID_URL`, `INVALID_ARGUMENT` (a bad template), `UNREACHABLE`
 */
export async function subjectSink(url: BackendUrl, options: SinkOptions): Promise<BridgeSink> {
  const t = parseKafkaUrl(url);
  const targetOf = compileTarget(options.target);
  const producer: Producer = kafkaOf(t).producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: true,
  });
  let onState = options.onState;
  let lost = false;
  producer.on("producer.disconnect", () => {
    if (!closing && !lost) onState?.(`disconnected from Kafka at ${t.brokers.join(",")}`);
    lost = true;
  });
  let closing = false;
  try {
    await producer.connect();
  } catch (e) {
    throw unreachable(t, e);
  }
  return {
    async send(topic, messages) {
      const byTopic = new Map<string, Message[]>();
      for (const m of messages) {
        const to = targetOf(topic, m);
        if (!TOPIC_NAME.test(to)) {
          throw new MqError(
            "INVALID_ARGUMENT",
            `Kafka topic ${
              JSON.stringify(to)
            } (message ${topic}/${m.partition}/${m.offset}) may contain only A-Z a-z 0-9 . _ - (1 to 249)`,
          );
        }
        const headers: Record<string, string> = { ...m.record.headers };
        headers[ID] = m.record.id ?? `${topic}:${m.partition}-${m.offset}`;
        let list = byTopic.get(to);
        if (!list) byTopic.set(to, list = []);
        list.push({
          key: m.key ?? null,
          value: bytes(m.payload),
          headers,
          timestamp: String(m.timestamp),
        });
      }
      try {
        await producer.sendBatch({
          acks: -1,
          topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
        });
        if (lost) onState?.(`reconnected to Kafka at ${t.brokers.join(",")}`);
        lost = false;
      } catch (e) {
        if (!lost) onState?.(`Kafka at ${t.brokers.join(",")} failed (${(e as Error).message})`);
        lost = true;
        throw e;
      }
    },
    watch(say) {
      onState = say;
    },
    async close() {
      closing = true;
      await producer.disconnect().catch(() => {});
    },
  };
}

const dec = new TextDecoder();
const EMPTY = new Uint8Array(0);

function text(v: Buffer | string | (Buffer | string)[] | undefined): string {
  if (v === undefined) return "";
  if (Array.isArray(v)) return v.map(text).join(",");
  return typeof v === "string" ? v : dec.decode(v);
}

/** A Kafka record as mq stores it, with the id `kafka:<topic>:<partition>:<offset>`. */
function incoming(topic: string, partition: number, m: KafkaMessage): OutgoingMessage {
  const headers: Record<string, string> = {};
  for (const k in m.headers) if (k !== ID) headers[k] = text(m.headers[k]);
  headers["kafka-topic"] = topic;
  headers["kafka-partition"] = String(partition);
  headers["kafka-offset"] = m.offset;
  return {
    payload: m.value ?? EMPTY,
    key: m.key === null ? undefined : dec.decode(m.key),
    headers,
    id: `kafka:${topic}:${partition}:${m.offset}`,
  };
}

/**
 * Brings messages of Kafka topics into a local topic with a consumer group
 * named by `--group`, committing offsets only after each batch is stored;
 * each message gets the id `kafka:<topic>:<partition>:<offset>`.
 *
 * @example
 * ```ts ignore
 * const n = await bridgeInto(parseBackendUrl("kafka://127.0.0.1:9092"), mq, {
 *   subjects: ["orders"], into: "orders", group: "bridge", follow: false,
 * });
 * ```
 * @throws {MqError} `INVALID_URL`, `INVALID_ARGUMENT` (a bad topic name), `UNREACHABLE`, or the target's errors
 */
export async function bridgeInto(
  url: BackendUrl,
  target: Mq,
  options: IntoOptions,
): Promise<number> {
  const t = parseKafkaUrl(url);
  if (options.bind?.length) {
    throw new MqError(
      "INVALID_ARGUMENT",
      "--bind is for amqp:// sources; Kafka reads --subjects topics",
    );
  }
  for (const s of options.subjects) {
    if (!TOPIC_NAME.test(s)) {
      throw new MqError(
        "INVALID_ARGUMENT",
        `Kafka topic ${JSON.stringify(s)} may contain only A-Z a-z 0-9 . _ -`,
      );
    }
  }
  const say = (line: string) => options.onState?.(line);
  const kafka = kafkaOf(t);
  // Where each partition ends now, and where the group stands: what -e drains.
  const remaining = new Map<string, number>();
  if (!options.follow) {
    const admin = kafka.admin();
    try {
      await admin.connect();
      // The topics' ends first: that loads the brokers' metadata, without which
      // kafkajs's lookup of the group's coordinator fails once and retries
      // after its first backoff (about 200 ms on every run).
      const ends: [string, Awaited<ReturnType<typeof admin.fetchTopicOffsets>>][] = [];
      for (const s of options.subjects) ends.push([s, await admin.fetchTopicOffsets(s)]);
      const committed = await admin.fetchOffsets({
        groupId: options.group,
        topics: options.subjects,
      });
      const at = new Map<string, number>();
      for (const c of committed) {
        for (const p of c.partitions) at.set(`${c.topic}/${p.partition}`, Number(p.offset));
      }
      for (const [s, partitions] of ends) {
        for (const p of partitions) {
          const end = Number(p.high);
          const from = Math.max(at.get(`${s}/${p.partition}`) ?? -1, Number(p.low));
          if (end > from) remaining.set(`${s}/${p.partition}`, end);
        }
      }
    } catch (e) {
      throw unreachable(t, e);
    } finally {
      await admin.disconnect().catch(() => {});
    }
    if (remaining.size === 0) return 0;
  }
  const consumer: Consumer = kafka.consumer({
    groupId: options.group,
    allowAutoTopicCreation: false,
    // One fetch holds about 1 MiB of records (decoded, a few times that).
    maxBytesPerPartition: 1 << 20,
    maxBytes: 2 << 20,
  });
  let total = 0;
  let lost = false;
  consumer.on("consumer.crash", (e) => {
    const err = (e as { payload?: { error?: Error } }).payload?.error;
    say(`Kafka consumer failed (${err?.message}); restarting with backoff`);
    lost = true;
  });
  consumer.on("consumer.group_join", () => {
    if (lost) say(`rejoined group ${options.group} at ${t.brokers.join(",")}`);
    lost = false;
  });
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: options.subjects, fromBeginning: true });
  } catch (e) {
    await consumer.disconnect().catch(() => {});
    throw unreachable(t, e);
  }
  say(`reading ${options.subjects.join(", ")} as group ${options.group}`);
  let failure: unknown;
  let finish!: () => void;
  const finished = new Promise<void>((r) => finish = r);
  const onAbort = () => finish();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  if (options.signal?.aborted) finish();
  try {
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: true,
      eachBatch: async ({ batch, heartbeat, resolveOffset }) => {
        const k = `${batch.topic}/${batch.partition}`;
        const all = batch.messages;
        // Stored and committed a window at a time: one window's copies at once
        // (of a fetch kafkajs already holds decoded, at most 1 MiB a partition).
        for (let from = 0; from < all.length;) {
          const to = windowEnd(
            all,
            from,
            IN_WINDOW_MESSAGES,
            BRIDGE_WINDOW.bytes,
            (m) => m.value?.length ?? 0,
          );
          const out: OutgoingMessage[] = new Array(to - from);
          for (let i = from; i < to; i++) {
            out[i - from] = incoming(batch.topic, batch.partition, all[i]);
          }
          from = to;
          try {
            const r = await target.publishBatch(options.into, out);
            total += r.count;
          } catch (e) {
            // What no retry mends ends the bridge; anything else is retried by the consumer.
            if (isFatal(e)) {
              failure ??= e;
              finish();
            }
            throw e;
          }
          // The batch's last window ends where kafkajs says the batch does: past
          // the records it filtered out too (transaction markers, aborted
          // records), or -e would wait for ever for a high watermark behind them.
          const next =
            (to === all.length ? Number(batch.lastOffset()) : Number(all[to - 1].offset)) +
            1;
          await consumer.commitOffsets([{
            topic: batch.topic,
            partition: batch.partition,
            offset: String(next),
          }]);
          resolveOffset(all[to - 1].offset);
          const end = remaining.get(k);
          if (end !== undefined && next >= end) {
            remaining.delete(k);
            if (remaining.size === 0) finish();
          }
          await heartbeat();
        }
      },
    });
    await finished;
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    await consumer.disconnect().catch(() => {});
  }
  if (failure) throw failure;
  return total;
}
