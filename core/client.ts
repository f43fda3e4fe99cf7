/**
 * The client: publish and subscribe over any {@link StorageAdapter}. Every
 * rule a user can observe (names, sizes, partitioning, groups) is applied here,
 * so each backend behaves the same.
 *
 * @module
 */
import type {
  CorruptionReport,
  PartitionWrite,
  ReconnectPolicy,
  StorageAdapter,
} from "./adapter.ts";
import { type Clock, clockWithNow, systemClock } from "./clock.ts";
import { MqError } from "./errors.ts";
import { assertName } from "./names.ts";
import { assertTopicOrPattern, isTopicPattern } from "./topic_pattern.ts";
import { partitionOf } from "./partitioner.ts";
import {
  batchOf,
  headOf,
  pickRecords,
  type RecordBatch,
  type RecordMeta,
  sliceOf,
} from "./record.ts";
import {
  makeTopicConfig,
  parseTopicConfig,
  type TopicConfig,
  withReplicas,
} from "./topic_config.ts";
import { type SubscribeOptions, Subscription } from "./subscription.ts";
import { reserveIds } from "./dedup.ts";
import { checkRoom, enforceRetention, hasRetention, retainedSince } from "./retention.ts";
import { cancelDelayed, loadCancelled, recordDelayed } from "./delayed_index.ts";
import { readOne, type ReceiptContext, settleReceipt } from "./receipts.ts";
import { consume, type ConsumeOptions, type ConsumeResult } from "./consume.ts";
import { ReceivedMessage } from "./message.ts";
import { loadGroup } from "./group_store.ts";
import { claim, newCursor } from "./lease_table.ts";
import { TopicAdmin } from "./topic_admin.ts";
import { checkStore, type DoctorOptions, type DoctorReport } from "./doctor.ts";
import { ExchangeAdmin } from "./exchanges.ts";
import { reply, request, type RequestOptions } from "./request_reply.ts";
import { runTransaction, type Transaction, type TransactionResult } from "./transaction.ts";

/** Options of a single publish. */
export interface PublishOptions {
  /** Partitioning key: one key, one partition, kept in order. */
  key?: string;
  /** Message id (deduplicated within the topic's window). */
  id?: string;
  /** Headers. */
  headers?: Record<string, string>;
  /** The partition, instead of the key's. */
  partition?: number;
  /** Not delivered to groups before this many ms from now. */
  delayMs?: number;
  /** Never delivered after this many ms from now. */
  ttlMs?: number;
  /** Creation time to keep (ms since the epoch), e.g. when copying. @default now */
  timestamp?: number;
}

/** One message for {@link Mq.publishBatch}. */
export interface OutgoingMessage extends PublishOptions {
  /** The payload: bytes, or text sent as UTF-8. */
  payload: Uint8Array | string;
}

/** Where a published batch went. */
export interface PublishResult {
  /** How many messages were stored. */
  count: number;
  /** Messages dropped as duplicates of an id seen within the dedup window. */
  duplicates: number;
  /** Per partition written: the partition, its first offset and how many. */
  written: { partition: number; first: number; count: number }[];
}

/** The largest payload a topic takes, and why (see {@link Mq.messageLimit}). */
export interface MessageLimit {
  /** Bytes. */
  bytes: number;
  /** Why, as a refusal says it: `topic "t" allows at most N (--max-message-bytes)`. */
  why: string;
}

/** Options of {@link Mq.publishRecords}. */
export interface PublishRecordsOptions {
  /** Write every record to this partition. */
  partition?: number;
  /**
   * Drop records whose id was published within the topic's dedup window.
   * False keeps every record with its id: dead letters and replays of them,
   * which must not be dropped as duplicates of themselves.
   * @default true
   */
  deduplicate?: boolean;
  /**
   * Publish only to a topic that exists; to a missing one nothing is written
   * (the result's count is 0) and no topic is created. @default false
   */
  ifExists?: boolean;
}

/** A publish worked out and checked, not yet written. */
interface PreparedPublish {
  topic: string;
  config: TopicConfig;
  /** The records to write (ids already reserved, duplicates dropped). */
  batch: RecordBatch;
  /** The records of `batch` per partition, in record order. */
  parts: PartitionWrite[];
  /** Records dropped as duplicates so far. */
  duplicates: number;
  /** Gives back the id reservations when the write fails (but for ids written). */
  undo?: (written?: ReadonlySet<string>) => Promise<void>;
  /** Set when the backend deduplicates natively (append with `appendDeduplicated`). */
  dedupWindowMs?: number;
}

/** Limits on per-record metadata. */
const MAX_KEY_CHARS = 1024, MAX_ID_CHARS = 1024, MAX_HEADER_BYTES = 64 * 1024;

const enc = new TextEncoder();

/** Options of {@link Mq}. */
export interface MqOptions {
  /**
   * The time and the timers (sleeps, timeouts, intervals) of this client;
   * a `ManualClock` (`core/clock.ts`) tests time-driven behaviour without
   * real sleeping.
   * @default systemClock
   */
  clock?: Clock;
  /** The current time only, ms since the epoch (timers stay real); `clock` wins. @default Date.now */
  now?: () => number;
  /**
   * Told of corrupt data the backend skipped while reading (a segment's byte
   * range and the offsets it held), and of unreadable offsets a group
   * settled so that it moves on; once per stretch for this client. Where
   * unset, corruption is skipped silently (a reader never returns a corrupt
   * record either way).
   *
   * @example
   * ```ts ignore
   * const mq = await connect("file:./data", {
   *   onCorrupt: (r) => console.error(`skipped ${r.location} bytes ${r.bytes?.from}-${r.bytes?.to}`),
   * });
   * ```
   */
  onCorrupt?: (report: CorruptionReport) => void;
}

/**
 * A connection to one backend.
 *
 * @example
 * ```ts
 * import { Mq } from "./client.ts";
 * import { MemoryAdapter } from "../adapters/memory/mod.ts";
 * const mq = new Mq(new MemoryAdapter());
 * await mq.publish("orders", "hello", { key: "c1" });
 * for await (const m of mq.subscribe("orders", { follow: false })) console.log(m.text());
 * await mq.close();
 * ```
 */
export class Mq {
  /** The backend. */
  readonly adapter: StorageAdapter;
  /** The time and the timers of this client. */
  readonly clock: Clock;
  /** The current time, ms since the epoch (the clock's). */
  readonly now: () => number;
  /** Topic and group administration. */
  readonly topics: TopicAdmin;
  /** Exchanges and bindings. */
  readonly exchanges: ExchangeAdmin;
  #configs = new Map<string, TopicConfig>();
  /** When each cached topic's settings were last seen stored (ms). */
  #seen = new Map<string, number>();
  #sticky = 0;

  /** A client over `adapter` (see {@link connect} in `mod.ts` to open one by URL). */
  constructor(adapter: StorageAdapter, options: MqOptions = {}) {
    this.adapter = adapter;
    const clock = options.clock ?? (options.now ? clockWithNow(options.now) : systemClock);
    this.clock = clock;
    this.now = () => clock.now();
    this.topics = new TopicAdmin(
      adapter,
      (t) => this.topicConfig(t),
      (t) => this.forgetTopic(t),
      this.now,
    );
    this.exchanges = new ExchangeAdmin(adapter, this.now);
    const listener = options.onCorrupt;
    if (listener) {
      const seen = new Set<string>();
      adapter.onCorrupt = (r) => {
        const k = JSON.stringify([r.topic, r.partition, r.location, r.bytes, r.offsets]);
        if (seen.has(k)) return;
        seen.add(k);
        listener(r);
      };
    }
  }

  /**
   * Publishes one message; resolves to its partition and offset once stored
   * (or `duplicate: true`, offset -1, when its id was seen within the window).
   *
   * @throws {MqError} `INVALID_NAME`, `MESSAGE_TOO_LARGE`, `INVALID_ARGUMENT`
   */
  async publish(
    topic: string,
    payload: Uint8Array | string,
    options: PublishOptions = {},
  ): Promise<{ partition: number; offset: number; duplicate: boolean }> {
    const r = await this.publishBatch(topic, [{ ...options, payload }]);
    if (r.written.length === 0) return { partition: -1, offset: -1, duplicate: true };
    return { partition: r.written[0].partition, offset: r.written[0].first, duplicate: false };
  }

  /**
   * Publishes several messages in one write per partition. If one is refused,
   * the ones before it are stored and the error's `details.published` says
   * how many.
   */
  publishBatch(
    topic: string,
    messages: (OutgoingMessage | Uint8Array | string)[],
  ): Promise<PublishResult> {
    const { batch, partition } = this.#toBatch(messages);
    return this.publishRecords(topic, batch, { partition });
  }

  #toBatch(
    messages: (OutgoingMessage | Uint8Array | string)[],
  ): { batch: RecordBatch; partition?: number } {
    const payloads: Uint8Array[] = [];
    let meta: (RecordMeta | undefined)[] | undefined;
    let partition: number | undefined;
    const t = this.now();
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i];
      if (typeof m === "string" || m instanceof Uint8Array) {
        payloads.push(typeof m === "string" ? enc.encode(m) : m);
        continue;
      }
      payloads.push(typeof m.payload === "string" ? enc.encode(m.payload) : m.payload);
      if (
        m.key !== undefined || m.id !== undefined || m.headers !== undefined ||
        m.delayMs !== undefined ||
        m.ttlMs !== undefined || m.timestamp !== undefined
      ) {
        meta ??= new Array(messages.length);
        meta[i] = {
          key: m.key,
          id: m.id,
          headers: m.headers,
          deliverAt: m.delayMs !== undefined ? t + m.delayMs : undefined,
          expiresAt: m.ttlMs !== undefined ? t + m.ttlMs : undefined,
          timestamp: m.timestamp,
        };
      }
      if (m.partition !== undefined) partition = m.partition;
    }
    return { batch: batchOf(payloads, meta, t), partition };
  }

  /**
   * Publishes a prepared {@link RecordBatch}: the fast path for many small
   * messages (one copy into storage, no object per message).
   */
  async publishRecords(
    topic: string,
    batch: RecordBatch,
    options: PublishRecordsOptions = {},
  ): Promise<PublishResult> {
    // Check against the topic's limits (its defaults when it is new) before
    // anything is written: a refused publish creates nothing.
    const existing = await this.topicConfig(topic);
    if (!existing && options.ifExists) return { count: 0, duplicates: 0, written: [] };
    const limits = existing ?? makeTopicConfig({}, this.now());
    // A partition that does not exist is refused before the topic is made.
    if (options.partition !== undefined) {
      this.#split(topic, limits, headOf(batch, 0), options.partition);
    }
    const bad = firstInvalid(batch, limits, topic, this.adapter);
    const ok = bad ? headOf(batch, bad.index) : batch;
    let result: PublishResult = { count: 0, duplicates: 0, written: [] };
    if (ok.count > 0) {
      const config = existing ?? (await this.topicConfig(topic, { create: true }))!;
      const prepared = await this.#prepare(
        topic,
        config,
        ok,
        options.partition,
        true,
        options.deduplicate !== false,
      );
      result = await this.#write(prepared);
      if (existing) await this.#stillThere(topic, existing);
    }
    if (bad) {
      throw new MqError(bad.code, bad.message, {
        details: { index: bad.index, published: result.count },
      });
    }
    return result;
  }

  /**
   * Checks `batch` against the topic's limits (its defaults when it is new)
   * and the backend's, as a publish would, writing nothing.
   *
   * @example
   * ```ts
   * import { Mq } from "./client.ts";
   * import { MemoryAdapter } from "../adapters/memory/mod.ts";
   * import { batchOf } from "./record.ts";
   * const mq = new Mq(new MemoryAdapter());
   * await mq.checkRecords("orders", batchOf([new TextEncoder().encode("fine")]));
   * ```
   * @throws {MqError} `MESSAGE_TOO_LARGE`, `INVALID_ARGUMENT`, with
   * `details.index` the refused record's and `details.published` 0
   */
  async checkRecords(topic: string, batch: RecordBatch): Promise<void> {
    assertName("topic", topic);
    const limits = (await this.topicConfig(topic)) ?? makeTopicConfig({}, this.now());
    const bad = firstInvalid(batch, limits, topic, this.adapter);
    if (bad) {
      throw new MqError(bad.code, bad.message, { details: { index: bad.index, published: 0 } });
    }
  }

  /**
   * Works out where a checked batch goes: reserves its ids (or leaves that to
   * a backend that deduplicates natively), splits it over partitions, and
   * checks that a `reject` topic has room.
   */
  async #prepare(
    topic: string,
    config: TopicConfig,
    batch: RecordBatch,
    partition: number | undefined,
    nativeDedup: boolean,
    deduplicate = true,
  ): Promise<PreparedPublish> {
    let duplicates = 0;
    let undo: (() => Promise<void>) | undefined;
    let dedupWindowMs: number | undefined;
    if (deduplicate && batch.meta?.some((m) => m?.id !== undefined)) {
      if (nativeDedup && this.adapter.appendDeduplicated && config.partitions === 1) {
        dedupWindowMs = config.dedupWindowMs;
      } else {
        const r = await reserveIds(
          this.adapter,
          topic,
          batch,
          config.dedupWindowMs,
          this.now(),
          config.partitions,
        );
        duplicates = batch.count - r.keep.length;
        if (duplicates > 0) batch = pickRecords(batch, r.keep);
        undo = r.undo;
      }
    }
    try {
      const parts = batch.count > 0 ? this.#split(topic, config, batch, partition) : [];
      for (const part of parts) {
        await checkRoom(this.adapter, topic, config, part.partition, part.batch);
      }
      return { topic, config, batch, parts, duplicates, undo, dedupWindowMs };
    } catch (e) {
      await undo?.().catch(() => {});
      throw e;
    }
  }

  /**
   * Writes a prepared publish, each partition's records as runs of at most
   * the backend's `maxAppendBytes`, then notes delayed messages and applies
   * retention. `firsts`, when given, are the first offsets of `parts` already
   * written together (by `appendAtomic`).
   */
  async #write(p: PreparedPublish, firsts?: number[]): Promise<PublishResult> {
    const written: PublishResult["written"] = [];
    const writtenIds = new Set<string>();
    /** The delayed records written, by id (or partition-offset), and when they are due. */
    const delayed: [string, number][] = [];
    let count = 0;
    let duplicates = p.duplicates;
    try {
      if (firsts) {
        p.parts.forEach((w, i) => {
          written.push({ partition: w.partition, first: firsts[i], count: w.batch.count });
          noteDelayed(delayed, w.batch, w.partition, firsts[i]);
          count += w.batch.count;
        });
      } else if (p.dedupWindowMs !== undefined) {
        // One partition; the backend drops the duplicates.
        for (const run of splitBySize(p.batch, this.adapter.capabilities.maxAppendBytes)) {
          const r = await this.adapter.appendDeduplicated!(
            p.topic,
            0,
            run,
            p.dedupWindowMs,
            this.now(),
          );
          if (r.kept.length > 0) {
            written.push({ partition: 0, first: r.first, count: r.kept.length });
            noteDelayed(delayed, run, 0, r.first, r.kept);
          }
          count += r.kept.length;
          duplicates += run.count - r.kept.length;
        }
      } else {
        for (const part of p.parts) {
          for (const run of splitBySize(part.batch, this.adapter.capabilities.maxAppendBytes)) {
            const first = await this.adapter.append(p.topic, part.partition, run);
            written.push({ partition: part.partition, first, count: run.count });
            noteDelayed(delayed, run, part.partition, first);
            count += run.count;
            if (p.undo) { for (const id of idsOf(run)) writtenIds.add(id); }
          }
        }
      }
    } catch (e) {
      // The ids of what was not stored are free again (a retry stores them).
      await p.undo?.(writtenIds).catch(() => {});
      // Say how many of the batch were stored before the failure.
      if (MqError.is(e) && e.details.index === undefined) {
        throw new MqError(e.code, e.message, {
          cause: e.cause ?? e,
          details: { ...e.details, published: count + (e.details.published ?? 0) },
        });
      }
      throw e;
    }
    if (count > 0) await this.#afterAppend(p.topic, p.config, delayed, written);
    return { count, duplicates, written };
  }

  /**
   * Publishes through an exchange: one copy to each topic its bindings route
   * the message to, written in one atomic operation where the backend has
   * `appendAtomic` and the writes fit in one (else topic by topic). A message no binding takes fails with `UNROUTABLE`
   * unless `allowUnroutable`. Every record is checked against every target
   * topic's limits before anything is written.
   *
   * @example
   * ```ts ignore
   * await mq.exchanges.create("events", "topic");
   * await mq.exchanges.bind("events", { destination: "eu", destinationKind: "topic", key: "*.eu" });
   * await mq.publishVia("events", "orders.eu", ["hello"]);
   * ```
   * @throws {MqError} `UNROUTABLE`, `INVALID_ARGUMENT` (unknown exchange), `MESSAGE_TOO_LARGE`
   */
  async publishVia(
    exchange: string,
    routingKey: string,
    messages: (OutgoingMessage | Uint8Array | string)[] | RecordBatch,
    options: { allowUnroutable?: boolean } = {},
  ): Promise<{ count: number; topics: string[]; unroutable: number }> {
    const batch = Array.isArray(messages) ? this.#toBatch(messages).batch : messages;
    // Which records go to which topics: routed without a read per message.
    const { topicsOf, usesHeaders: byHeaders } = await this.exchanges.resolver(exchange);
    const routes = new Map<string, string[]>();
    const targets: string[][] = [];
    for (let i = 0; i < batch.count; i++) {
      const headers = byHeaders ? batch.meta?.[i]?.headers ?? {} : {};
      const k = byHeaders ? JSON.stringify(headers) : "";
      let topics = routes.get(k);
      if (!topics) routes.set(k, topics = topicsOf(routingKey, headers));
      targets.push(topics);
    }
    let stop = batch.count;
    let failure: MqError | undefined;
    const firstUnroutable = targets.findIndex((t) => t.length === 0);
    if (firstUnroutable >= 0 && !options.allowUnroutable) {
      stop = firstUnroutable;
      failure = new MqError(
        "UNROUTABLE",
        `no binding of exchange "${exchange}" takes routing key ${JSON.stringify(routingKey)}${
          byHeaders ? " with these headers" : ""
        } (--allow-unroutable drops it instead)`,
      );
    }
    const all = [...new Set(targets.flat())];
    for (const topic of all) {
      const config = (await this.topicConfig(topic)) ?? makeTopicConfig({}, this.now());
      const bad = firstInvalid(headOf(batch, stop), config, topic, this.adapter);
      if (bad && bad.index < stop) {
        stop = bad.index;
        failure = new MqError(bad.code, bad.message);
      }
    }
    const prepared: PreparedPublish[] = [];
    try {
      for (const topic of all) {
        const indices: number[] = [];
        for (let i = 0; i < stop; i++) if (targets[i].includes(topic)) indices.push(i);
        if (indices.length === 0) continue;
        const config = (await this.topicConfig(topic, { create: true }))!;
        prepared.push(
          await this.#prepare(topic, config, pickRecords(batch, indices), undefined, false),
        );
      }
    } catch (e) {
      for (const p of prepared) await p.undo?.().catch(() => {});
      throw e;
    }
    // All bound topics or none, where the backend can; else one after another.
    const writes = prepared.flatMap((p) => p.parts);
    let firsts: number[] | undefined;
    try {
      firsts = prepared.length > 1 && writes.length > 0
        ? await this.adapter.appendAtomic?.(writes)
        : undefined;
    } catch (e) {
      for (const p of prepared) await p.undo?.().catch(() => {});
      throw e;
    }
    let at = 0;
    for (let i = 0; i < prepared.length; i++) {
      const p = prepared[i];
      try {
        await this.#write(p, firsts?.slice(at, at += p.parts.length));
      } catch (e) {
        // The topics not reached: their ids are free again.
        for (const rest of prepared.slice(i + 1)) await rest.undo?.().catch(() => {});
        throw e;
      }
    }
    let unroutable = 0;
    for (let i = 0; i < stop; i++) if (targets[i].length === 0) unroutable++;
    if (failure) {
      throw new MqError(failure.code, failure.message, {
        details: { index: stop, published: stop - unroutable },
      });
    }
    return { count: stop - unroutable, topics: all, unroutable };
  }

  /** Notes delayed messages (for cancel) and trims to the topic's limits. */
  async #afterAppend(
    topic: string,
    config: TopicConfig,
    delayed: [string, number][],
    written: PublishResult["written"],
  ): Promise<void> {
    if (delayed.length > 0) await recordDelayed(this.adapter, topic, delayed, this.now());
    if (hasRetention(config)) {
      for (const p of new Set(written.map((w) => w.partition))) {
        await enforceRetention(this.adapter, topic, config, p, this.now());
      }
    }
  }

  /** `batch` split over the topic's partitions: by key, else all to one partition. */
  #split(
    topic: string,
    config: TopicConfig,
    batch: RecordBatch,
    partition: number | undefined,
  ): PartitionWrite[] {
    const n = config.partitions;
    if (partition !== undefined) {
      if (!Number.isInteger(partition) || partition < 0 || partition >= n) {
        throw new MqError(
          "INVALID_ARGUMENT",
          `partition ${partition} does not exist: topic "${topic}" has ${n} (0 to ${n - 1})`,
        );
      }
      return [{ topic, partition, batch }];
    }
    const keyed = n > 1 && batch.meta?.some((m) => m?.key !== undefined);
    if (!keyed) return [{ topic, partition: n > 1 ? this.#sticky++ % n : 0, batch }];
    const groups: number[][] = Array.from({ length: n }, () => []);
    const unkeyed = this.#sticky++ % n;
    for (let i = 0; i < batch.count; i++) {
      const key = batch.meta?.[i]?.key;
      groups[key === undefined ? unkeyed : partitionOf(key, n)].push(i);
    }
    const out: PartitionWrite[] = [];
    for (let p = 0; p < n; p++) {
      if (groups[p].length > 0) {
        out.push({ topic, partition: p, batch: pickRecords(batch, groups[p]) });
      }
    }
    return out;
  }

  /**
   * Reads a topic: from a position without a group, or as a member of a
   * group. Without a group it may read several topics and topic patterns at
   * once (`orders.*`: `*` one word, `#` any words; topics that match later
   * are picked up while following), the last N messages, until a point, some
   * partitions, and filtered (see {@link SubscribeOptions}).
   *
   * @example
   * ```ts ignore
   * for await (const m of mq.subscribe("orders", { group: "billing" })) m.ack();
   * const errors = mq.subscribe(["logs.#"], { last: 10, filter: { grep: /error/ } });
   * ```
   * @throws {MqError} `INVALID_NAME`; `INVALID_ARGUMENT` for a group with
   * several topics, a pattern or a plain-read option
   */
  subscribe(topics: string | readonly string[], options: SubscribeOptions = {}): Subscription {
    const names = typeof topics === "string" ? [topics] : [...topics];
    if (names.length === 0) throw new MqError("INVALID_ARGUMENT", "no topic to read");
    for (const t of names) assertTopicOrPattern(t);
    const topic = names[0];
    if (options.group !== undefined) {
      assertName("group", options.group);
      if (names.length > 1 || isTopicPattern(topic)) {
        throw new MqError("INVALID_ARGUMENT", "a group reads one topic, not several or a pattern");
      }
      const plain = (["last", "until", "partitions", "filter", "idleMs", "all"] as const)
        .filter((k) => options[k] !== undefined);
      if (plain.length > 0) {
        throw new MqError(
          "INVALID_ARGUMENT",
          `${plain.join(", ")} ${plain.length === 1 ? "is" : "are"} for reads without a group`,
        );
      }
    }
    let partitions: Promise<number> | undefined;
    const ctx = {
      adapter: this.adapter,
      topic,
      topics: names,
      configOf: (t: string) => this.topicConfig(t),
      listTopics: () => this.adapter.listState(["topics"]),
      partitions: () => partitions ??= this.topicConfig(topic).then((c) => c?.partitions ?? 1),
      config: () => this.topicConfig(topic),
      publishDeadLetters: async (
        dlq: string,
        records: { payload: Uint8Array; meta: RecordMeta }[],
      ) => {
        // A dead-letter topic made here keeps as many copies as its topic.
        const replicas = (await this.topicConfig(topic))?.replicas;
        if (replicas !== undefined && !(await this.topicConfig(dlq))) {
          await this.topicConfig(dlq, { create: true, settings: { replicas } });
        }
        await this.publishRecords(
          dlq,
          batchOf(records.map((r) => r.payload), records.map((r) => r.meta), this.now()),
          { deduplicate: false },
        );
      },
      group: options.group,
      now: this.now,
      clock: this.clock,
    };
    const sub = new Subscription(ctx, options);
    return sub;
  }

  /**
   * Runs `handler` for each message of a group, `concurrency` at a time: a
   * handler that resolves acks; one that throws is retried with backoff and
   * dead-lettered after the topic's `maxAttempts`.
   *
   * @example
   * ```ts ignore
   * await mq.consume("jobs", { group: "workers", concurrency: 4, follow: false }, async (m) => {
   *   await handle(m.json());
   * });
   * ```
   */
  consume(
    topic: string,
    options: ConsumeOptions,
    handler: (m: ReceivedMessage) => unknown | Promise<unknown>,
  ): Promise<ConsumeResult> {
    const sub = this.subscribe(topic, { ...options, batchSize: options.prefetch ?? 256 });
    return consume(sub, options, handler, this.clock);
  }

  /**
   * Runs `fn` with a {@link Transaction} and commits what it added, all or
   * nothing: its publishes (to any topics and partitions) and its acks and
   * nacks of group deliveries. Readers never see a part of it; a crash before
   * the commit leaves nothing, after it everything. When `fn` throws, nothing
   * is written and the deliveries are unsettled again.
   *
   * How it holds per backend (`capabilities.transactions`): memory, kv and fs
   * commit atomically (kv: one Deno KV commit, at most 800 KiB, 1,000
   * mutations and 100 partitions and documents; fs: a commit record in a
   * journal, rolled forward or dropped after a crash); nats is effectively
   * once (outputs with ids derived from the first delivery settled,
   * deduplicated by JetStream within the topic's dedup window, and the
   * settlement written after every publish is confirmed).
   *
   * @example
   * ```ts
   * import { Mq } from "./client.ts";
   * import { MemoryAdapter } from "../adapters/memory/mod.ts";
   * const mq = new Mq(new MemoryAdapter());
   * await mq.publish("orders", "o-1");
   * const sub = mq.subscribe("orders", { group: "billing", follow: false });
   * for (const m of (await sub.take(10)) ?? []) {
   *   await mq.transaction((tx) => {
   *     tx.publish("invoices", `invoice for ${m.text()}`);
   *     tx.publish("audit", m.text(), { key: "billing" });
   *     tx.ack(m);
   *   });
   * }
   * await sub.close();
   * await mq.close();
   * ```
   * @throws {MqError} `MESSAGE_TOO_LARGE`, `INVALID_ARGUMENT` (a refused
   * message: nothing is written), `TRANSACTION_TOO_LARGE` (more than the
   * backend commits at once: nothing is written), `LEASE_EXPIRED` (a delivery
   * went to another consumer meanwhile: nothing is written on an atomic
   * backend), `TOPIC_FULL`
   */
  transaction(fn: (tx: Transaction) => unknown | Promise<unknown>): Promise<TransactionResult> {
    return runTransaction({
      adapter: this.adapter,
      now: this.now,
      topicConfig: (t, o) => this.topicConfig(t, o),
      invalidRecord: (batch, config, topic) => firstInvalid(batch, config, topic, this.adapter),
    }, fn);
  }

  /**
   * Sends a request and resolves to the first reply (see `mq.reply`).
   *
   * @example
   * ```ts ignore
   * const answer = await mq.request("rpc.add", "1 2", { timeoutMs: 2000 });
   * console.log(answer.text());
   * ```
   * @throws {MqError} `TIMEOUT`
   */
  request(
    topic: string,
    payload: Uint8Array | string,
    options: RequestOptions = {},
  ): Promise<ReceivedMessage> {
    return request(this, topic, payload, options);
  }

  /**
   * Answers requests of `topic` with what `handler` returns.
   *
   * @example
   * ```ts ignore
   * await mq.reply("rpc.add", { group: "adders" }, (m) => String(m.text().split(" ").map(Number).reduce((a, b) => a + b)));
   * ```
   */
  reply(
    topic: string,
    options: ConsumeOptions,
    handler: (
      m: ReceivedMessage,
    ) => Promise<Uint8Array | string | undefined> | Uint8Array | string | undefined,
  ): Promise<ConsumeResult> {
    return reply(this, topic, options, handler);
  }

  /**
   * Acks the delivery a receipt names (as `mq take` prints it).
   *
   * @throws {MqError} `INVALID_ARGUMENT` for an unknown or expired receipt
   */
  ack(topic: string, receipt: string): Promise<void> {
    return settleReceipt(this.#receiptContext(), topic, receipt, { kind: "ack" });
  }

  /**
   * Nacks the delivery a receipt names: delivered again after `delayMs`
   * (default: backoff), or dead-lettered on its last attempt.
   *
   * @throws {MqError} `INVALID_ARGUMENT` for an unknown or expired receipt
   */
  nack(
    topic: string,
    receipt: string,
    options: { delayMs?: number; reason?: string } = {},
  ): Promise<void> {
    return settleReceipt(this.#receiptContext(), topic, receipt, { kind: "nack", ...options });
  }

  #receiptContext(): ReceiptContext {
    return {
      adapter: this.adapter,
      now: this.now,
      config: (t) => this.topicConfig(t),
      publishDeadLetter: async (dlq, payload, meta) => {
        await this.publishRecords(dlq, batchOf([payload], [meta], this.now()), {
          deduplicate: false,
        });
      },
    };
  }

  /**
   * The next messages a group would get, without taking them.
   *
   * @throws {MqError} `TOPIC_NOT_FOUND`
   */
  async peek(
    topic: string,
    options: { group: string; count?: number },
  ): Promise<ReceivedMessage[]> {
    const config = await this.topicConfig(topic);
    if (!config) throw new MqError("TOPIC_NOT_FOUND", `topic "${topic}" does not exist`);
    assertName("group", options.group);
    const state = (await loadGroup(this.adapter, topic, options.group)) ?? { partitions: {} };
    const now = this.now();
    const since = retainedSince(config, now);
    let cancelled: Set<string> | undefined;
    const out: ReceivedMessage[] = [];
    let left = options.count ?? 10;
    for (let p = 0; p < config.partitions && left > 0; p++) {
      const bounds = await this.adapter.bounds(topic, p);
      // Claims on a copy of the state (never written back), again after
      // skipping what a consumer would not get: the next `count` it would.
      const cursor = state.partitions[p] ?? newCursor(bounds.start);
      let claims = claim(cursor, bounds, left, now, Infinity, "peek");
      while (claims.length > 0 && left > 0) {
        for (const c of claims) {
          for (let o = c.from; o < c.to && left > 0; o++) {
            const r = await readOne(this.adapter, topic, p, o);
            if (
              !r || (since !== undefined && r.timestamp < since) ||
              (r.expiresAt !== undefined && r.expiresAt <= now) || (r.deliverAt ?? 0) > now
            ) continue;
            if (r.deliverAt !== undefined) {
              cancelled ??= await loadCancelled(this.adapter, topic);
              if (cancelled.has(r.id ?? `${p}-${r.offset}`)) continue;
            }
            out.push(new ReceivedMessage(topic, p, r, c.attempt));
            left--;
          }
        }
        claims = left > 0 ? claim(cursor, bounds, left, now, Infinity, "peek") : [];
      }
    }
    return out;
  }

  /**
   * Cancels a delayed message that was not delivered yet; false when none
   * with that id waits.
   */
  async cancel(topic: string, id: string): Promise<boolean> {
    if (!(await this.topicConfig(topic))) {
      throw new MqError("TOPIC_NOT_FOUND", `topic "${topic}" does not exist`);
    }
    return cancelDelayed(this.adapter, topic, id, this.now());
  }

  /**
   * The largest payload a message of `topic` may have (the topic's limit, or
   * the backend's where lower; a new topic's default), and why, in the words
   * a refusal uses.
   *
   * @example
   * ```ts ignore
   * const { bytes, why } = await mq.messageLimit("orders"); // 1048576, 'topic "orders" allows ...'
   * ```
   */
  async messageLimit(topic: string): Promise<MessageLimit> {
    const config = (await this.topicConfig(topic)) ?? makeTopicConfig({}, this.now());
    return limitOf(config, topic, this.adapter.capabilities.maxMessageBytes);
  }

  /**
   * A topic's settings; with `create`, a missing topic is created with
   * `settings` (defaults for the rest).
   */
  async topicConfig(
    topic: string,
    options: { create?: boolean; settings?: Partial<TopicConfig> } = {},
  ): Promise<TopicConfig | undefined> {
    const cached = this.#configs.get(topic);
    if (cached) return cached;
    assertName("topic", topic);
    const key = ["topics", topic];
    let doc = await this.adapter.getState(key);
    if (!doc && options.create) {
      const config = withReplicas(
        makeTopicConfig(options.settings ?? {}, this.now()),
        this.adapter.capabilities,
      );
      await this.adapter.prepareTopic?.(topic, config);
      await this.adapter.compareAndSet(key, null, enc.encode(JSON.stringify(config)));
      doc = await this.adapter.getState(key);
    }
    if (!doc) return undefined;
    const config = parseTopicConfig(this.adapter, topic, doc.value);
    this.#configs.set(topic, config);
    this.#seen.set(topic, this.now());
    return config;
  }

  /**
   * A long-running publisher's topic may be removed by another client: after
   * a write (at most four times a second), look that its settings are still
   * stored, and make the topic again with them where they are not
   * (publishing makes a topic), so that what it wrote belongs to a topic,
   * not to a removed one.
   */
  async #stillThere(topic: string, config: TopicConfig): Promise<void> {
    const now = this.now();
    if (now - (this.#seen.get(topic) ?? 0) < 250) return;
    this.#seen.set(topic, now);
    const key = ["topics", topic];
    if (await this.adapter.getState(key)) return;
    await this.adapter.compareAndSet(key, null, enc.encode(JSON.stringify(config)));
  }

  /** Forgets cached topic settings (after another client changed them). */
  forgetTopic(topic: string): void {
    this.#configs.delete(topic);
  }

  /**
   * Checks the store (state documents, and the backend's logs where it can
   * check them) and, with `repair`, fixes what can be fixed without losing
   * an acknowledged message; what `mq doctor` runs.
   *
   * @example
   * ```ts ignore
   * const { findings } = await mq.doctor({ repair: true });
   * for (const f of findings) console.log(f.location, f.problem, f.repaired ?? "");
   * ```
   * @throws {MqError} `TOPIC_NOT_FOUND` for a topic named that does not exist
   */
  async doctor(options: DoctorOptions = {}): Promise<DoctorReport> {
    const report = await checkStore(this.adapter, { now: this.now, ...options });
    for (const t of options.topics ?? []) this.forgetTopic(t);
    this.#configs.clear();
    return report;
  }

  /**
   * How a backend reached over a network rides through failures that pass:
   * operations retry for `retryForMs` (`Infinity` in a long-running
   * consumer), and `onState` hears each change of the connection (one line
   * each). A no-op on backends without a network.
   *
   * @example
   * ```ts
   * import { Mq } from "./client.ts";
   * import { MemoryAdapter } from "../adapters/memory/mod.ts";
   * const mq = new Mq(new MemoryAdapter());
   * mq.setReconnectPolicy({ retryForMs: Infinity, onState: (line) => console.error(line) });
   * await mq.close();
   * ```
   */
  setReconnectPolicy(policy: ReconnectPolicy): void {
    this.adapter.setReconnectPolicy?.(policy);
  }

  /** Closes the backend. */
  async close(): Promise<void> {
    await this.adapter.close();
  }
}

/** The ids of a batch's records that have one. */
function* idsOf(batch: RecordBatch): Generator<string> {
  if (!batch.meta) return;
  for (let i = 0; i < batch.count; i++) {
    const id = batch.meta[i]?.id;
    if (id !== undefined) yield id;
  }
}

/**
 * Adds the delayed records of `run`, written to `partition` from offset
 * `first` (only those at `kept`, in order, when some were dropped), to
 * `delayed`: their id (else `partition-offset`, as consumers name them) and
 * when they are due.
 */
function noteDelayed(
  delayed: [string, number][],
  run: RecordBatch,
  partition: number,
  first: number,
  kept?: number[],
): void {
  if (!run.meta) return;
  const n = kept ? kept.length : run.count;
  for (let j = 0; j < n; j++) {
    const m = run.meta[kept ? kept[j] : j];
    if (m?.deliverAt !== undefined) {
      delayed.push([m.id ?? `${partition}-${first + j}`, m.deliverAt]);
    }
  }
}

/**
 * `batch` cut into runs of at most `maxBytes` (at least one record each),
 * counting each record as stored: its payload, its key, id and headers, and
 * some bytes of framing.
 */
function splitBySize(batch: RecordBatch, maxBytes: number | undefined): RecordBatch[] {
  if (maxBytes === undefined || batch.count === 0) return [batch];
  const { starts, ends, meta } = batch;
  const sizeOf = (i: number) => {
    const m = meta?.[i];
    let n = ends[i] - starts[i] + RECORD_FRAMING_BYTES;
    if (m) {
      n += (m.key?.length ?? 0) * 3 + (m.id?.length ?? 0) * 3;
      if (m.headers) n += JSON.stringify(m.headers).length * 3;
    }
    return n;
  };
  let total = 0;
  for (let i = 0; i < batch.count && total <= maxBytes; i++) total += sizeOf(i);
  if (total <= maxBytes) return [batch];
  const out: RecordBatch[] = [];
  let from = 0, bytes = 0;
  for (let i = 0; i < batch.count; i++) {
    const size = sizeOf(i);
    if (i > from && bytes + size > maxBytes) {
      out.push(sliceOf(batch, from, i));
      from = i;
      bytes = 0;
    }
    bytes += size;
  }
  out.push(sliceOf(batch, from, batch.count));
  return out;
}

/** What a stored record costs besides its payload and metadata, at most (length, time, flags, times). */
const RECORD_FRAMING_BYTES = 40;

/**
 * The first record of `batch` the topic or the backend refuses, and why: the
 * topic's size limit (or the backend's, when lower), malformed metadata, and
 * whatever the backend's own `checkRecords` refuses.
 */
function firstInvalid(
  batch: RecordBatch,
  config: TopicConfig,
  topic: string,
  adapter: StorageAdapter,
): { index: number; code: "MESSAGE_TOO_LARGE" | "INVALID_ARGUMENT"; message: string } | undefined {
  const own = firstInvalidHere(batch, config, topic, adapter.capabilities.maxMessageBytes);
  const theirs = adapter.checkRecords?.(own ? headOf(batch, own.index) : batch);
  return theirs ? { ...theirs, code: "MESSAGE_TOO_LARGE" } : own;
}

/** The largest payload of `topic` here: its own limit, or the backend's where lower, and why. */
function limitOf(
  config: TopicConfig,
  topic: string,
  backendMax: number | undefined,
): MessageLimit {
  const bytes = Math.min(config.maxMessageBytes, backendMax ?? Infinity);
  return {
    bytes,
    why: bytes < config.maxMessageBytes
      ? `this backend stores at most ${bytes}`
      : `topic "${topic}" allows at most ${bytes} (--max-message-bytes)`,
  };
}

function firstInvalidHere(
  batch: RecordBatch,
  config: TopicConfig,
  topic: string,
  backendMax?: number,
): { index: number; code: "MESSAGE_TOO_LARGE" | "INVALID_ARGUMENT"; message: string } | undefined {
  const { bytes: max, why } = limitOf(config, topic, backendMax);
  const { starts, ends, meta } = batch;
  for (let i = 0; i < batch.count; i++) {
    const size = ends[i] - starts[i];
    if (size > max) {
      return { index: i, code: "MESSAGE_TOO_LARGE", message: `message is ${size} bytes; ${why}` };
    }
    const m = meta?.[i];
    if (!m) continue;
    let problem: string | undefined;
    if (m.key !== undefined && (typeof m.key !== "string" || m.key.length > MAX_KEY_CHARS)) {
      problem = `key must be a string of at most ${MAX_KEY_CHARS} characters`;
    } else if (
      m.id !== undefined &&
      (typeof m.id !== "string" || m.id.length === 0 || m.id.length > MAX_ID_CHARS)
    ) {
      problem = `id must be a string of 1 to ${MAX_ID_CHARS} characters`;
    } else if (m.headers !== undefined) {
      if (typeof m.headers !== "object" || m.headers === null || Array.isArray(m.headers)) {
        problem = "headers must be an object of names to string values";
      } else {
        for (const [k, v] of Object.entries(m.headers)) {
          if (typeof v !== "string" || k.length === 0) {
            problem = `header ${JSON.stringify(k)} must have a name and a string value`;
            break;
          }
        }
        if (!problem && enc.encode(JSON.stringify(m.headers)).length > MAX_HEADER_BYTES) {
          problem = `headers must not exceed ${MAX_HEADER_BYTES} bytes`;
        }
      }
    }
    if (problem) return { index: i, code: "INVALID_ARGUMENT", message: problem };
  }
  return undefined;
}
