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
 * after the batch is stored (the records of several fetches together, up to
 * a window), and the id `kafka:<topic>:<partition>:<offset>`
 * makes a redelivery a duplicate: exactly once into mq within the topic's
 * dedup window. Without `follow` it stops once the group has stored every
 * partition up to the end it had when the bridge started.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { Consumer, KafkaMessage, Message, Producer } from "kafkajs";
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
import { kafkaOf, parseKafkaUrl, unreachable } from "./_client.ts";
import { installFastVarints } from "./_encoder.ts";

/**
 * Messages stored (one append, one sync) and committed at a time coming in,
 * of one fetch or of several (see `held` in {@link bridgeInto}), where the
 * contract's 1,024 made a sync and a commit every 1,024 records (the bound in
 * bytes is the contract's). 4,096 rather than 8,192: held across fetches,
 * 8,192 records of 100 bytes kept about 15 MB more at peak (144 against 130
 * MB for 160,000 records) for no time measured apart.
 */
const IN_WINDOW_MESSAGES = 4096;
/** How long records of a fetch that did not reach a partition's end wait for more (ms). */
const HOLD_MS = 100;

/** The header that carries the mq id. */
const ID = "mq-id";
const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;

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
  installFastVarints();
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
    maxWaitTimeInMs: 500,
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

  // Records of earlier fetches are held for one store with later ones:
  // librdkafka's mock (as a producer that sends small requests) gives a fetch
  // one producer batch a partition (256 records for a bridge's requests of
  // 1,024 over 4 partitions), and a store with its sync and a commit each
  // cost more than such a batch's records. What is held is stored once it
  // fills a window, once a fetch reaches a partition's end (the records after
  // it wait for new ones), or HOLD_MS after it came; offsets are committed
  // only after the store, as ever, so a run that stops reads them again.
  let held: OutgoingMessage[] = [];
  let heldBytes = 0;
  /** By partition: the offset to commit once what is held is stored (the next one to read). */
  const heldUpTo = new Map<string, { topic: string; partition: number; next: number }>();
  /** The last store of what was held (settled: its failure is its caller's). */
  let flushing: Promise<void> = Promise.resolve();
  let timer: ReturnType<typeof setTimeout> | undefined;
  /** Set once the run ends: no store is scheduled after the last one. */
  let stopped = false;
  const drop = () => {
    held = [];
    heldBytes = 0;
    heldUpTo.clear();
  };
  // A group joined again (a rebalance, a restart after a crash) reads every
  // partition it holds from its committed offset: what is held comes again.
  consumer.on("consumer.group_join", () => {
    flushing = flushing.then(drop);
  });

  /** Stores what is held, then commits its offsets; one store at a time. */
  const flush = (): Promise<void> => {
    clearTimeout(timer);
    timer = undefined;
    const run = flushing.then(async () => {
      if (heldUpTo.size === 0) return;
      // Taken whole: what comes while they are stored is held for the next store.
      const out = held, bytes = heldBytes, marks = [...heldUpTo.values()];
      drop();
      /** After a failure: held again, before what came since (a newer offset wins). */
      const keep = (stored: boolean) => {
        if (!stored) (held = out.concat(held)), (heldBytes += bytes);
        for (const m of marks) {
          const k = `${m.topic}/${m.partition}`;
          if (!heldUpTo.has(k)) heldUpTo.set(k, m);
        }
      };
      if (out.length > 0) {
        try {
          const r = await target.publishBatch(options.into, out);
          total += r.count;
        } catch (e) {
          keep(false);
          // What no retry mends ends the bridge; anything else is retried.
          if (isFatal(e)) {
            failure ??= e;
            finish();
          }
          throw e;
        }
      }
      try {
        await consumer.commitOffsets(
          marks.map((m) => ({ topic: m.topic, partition: m.partition, offset: String(m.next) })),
        );
      } catch (e) {
        // Stored: committed with the next store (a record read again meanwhile is skipped).
        keep(true);
        throw e;
      }
      for (const m of marks) {
        const k = `${m.topic}/${m.partition}`;
        const end = remaining.get(k);
        if (end !== undefined && m.next >= end) {
          remaining.delete(k);
          if (remaining.size === 0) finish();
        }
      }
    });
    flushing = run.catch(() => {});
    return run;
  };
  /** A store HOLD_MS after records came that nothing else stored (again after a failure). */
  const later = (ms = HOLD_MS) => {
    if (stopped) return;
    timer ??= setTimeout(() => {
      timer = undefined;
      flush().catch(retry);
    }, ms);
  };
  /** The line of a store that failed (what it held is held again); none once the run ends. */
  const sayFailed = (e: unknown) => {
    if (!failure && !stopped) {
      say(`Kafka in: storing or committing failed (${(e as Error).message}); retrying`);
    }
  };
  /** A store that failed in the background: said, and stored again a second later. */
  const retry = (e: unknown) => {
    sayFailed(e);
    if (!failure) later(1000); // later() schedules nothing once stopped
  };
  /** A store in kafkajs's batch handler: a failure is said, and kafkajs runs the batch again. */
  const flushHere = () =>
    flush().catch((e) => {
      sayFailed(e);
      throw e;
    });
  const sizeOf = (m: KafkaMessage) => m.value?.length ?? 0;
  /** By partition: the next offset after the last record read (held, being stored or stored). */
  const readUpTo = new Map<string, number>();
  /** Whether the records read reach every end that -e waits for. */
  const drained = () => {
    if (options.follow) return false;
    for (const [k, end] of remaining) if ((readUpTo.get(k) ?? -1) < end) return false;
    return true;
  };

  try {
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: true,
      eachBatch: async ({ batch, heartbeat }) => {
        await flushing; // nothing is added while what is held is stored
        const k = `${batch.topic}/${batch.partition}`;
        const all = batch.messages;
        // Records held already: a batch delivered again after a failed store.
        let from = 0;
        const mark = heldUpTo.get(k);
        if (mark) { while (from < all.length && Number(all[from].offset) < mark.next) from++; }
        while (from < all.length) {
          // Held with what is there when it fits in the window, else after it is stored.
          if (
            held.length >= IN_WINDOW_MESSAGES ||
            (held.length > 0 && heldBytes + sizeOf(all[from]) > BRIDGE_WINDOW.bytes)
          ) {
            await flushHere();
          }
          const to = windowEnd(
            all,
            from,
            IN_WINDOW_MESSAGES - held.length,
            BRIDGE_WINDOW.bytes - heldBytes,
            sizeOf,
          );
          for (let i = from; i < to; i++) {
            held.push(incoming(batch.topic, batch.partition, all[i]));
            heldBytes += sizeOf(all[i]);
          }
          // The batch's last records end where kafkajs says the batch does: past
          // the records it filtered out too (transaction markers, aborted
          // records), or -e would wait for ever for a high watermark behind them.
          const next =
            (to === all.length ? Number(batch.lastOffset()) : Number(all[to - 1].offset)) +
            1;
          heldUpTo.set(k, { topic: batch.topic, partition: batch.partition, next });
          readUpTo.set(k, next);
          from = to;
        }
        if (
          Number(batch.lastOffset()) + 1 >= Number(batch.highWatermark) ||
          held.length >= IN_WINDOW_MESSAGES || heldBytes >= BRIDGE_WINDOW.bytes
        ) {
          // Stored while kafkajs fetches the next records (the next batch waits
          // for it above, so nothing more is held meanwhile): the fetch's round
          // trip and the store's sync overlap. The store that ends a drain is
          // awaited, so that no fetch is left waiting at the broker when it stops.
          if (drained()) await flushHere();
          else flush().catch(retry);
        } else if (heldUpTo.size > 0) later();
        await heartbeat();
      },
    });
    await finished;
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    stopped = true;
    clearTimeout(timer);
    // Stopped (a signal, or drained): what is held is stored and committed first.
    if (!failure) await flush().catch(() => {});
    await flushing;
    await consumer.disconnect().catch(() => {});
  }
  if (failure) throw failure;
  return total;
}
