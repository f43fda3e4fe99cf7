/**
 * The publish pipeline: checks a batch against the topic's and the
 * backend's limits, reserves its ids (dedup), splits it over partitions,
 * writes it in runs the backend takes, and applies delay and retention; also
 * publishing through an exchange. `Mq` delegates its publishing here.
 *
 * @module
 */
import type { PartitionWrite, StorageAdapter } from "./adapter.ts";
import { MqError } from "./errors.ts";
import { assertName } from "./names.ts";
import { batchOf, headOf, pickRecords, type RecordBatch, type RecordMeta } from "./record.ts";
import { hasRetention, makeTopicConfig, type TopicConfig } from "./topic_config.ts";
import type { ExchangeResolver } from "./exchanges.ts";
import type { TopicConfigs } from "./_topic_configs.ts";
import { firstInvalid, limitOf, splitBySize } from "./_record_checks.ts";
import type {
  MessageLimit,
  OutgoingMessage,
  PublishOptions,
  PublishRecordsOptions,
  PublishResult,
} from "./types.ts";
import { idsOf, noteDelayed, splitOverPartitions } from "./_publish_records.ts";
import { type Clock, systemClock } from "./clock.ts";

/**
 * What only some publishes need, loaded on first use: id reservations (ids),
 * room checks and trimming (limited topics), the delayed index (delays).
 */
const load = {
  dedup: () => import("./_dedup.ts"),
  retention: () => import("./_retention.ts"),
  delayed: () => import("./_delayed_index.ts"),
};

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

const enc = new TextEncoder();

/**
 * Publishes for one client: its backend, its clock and its cache of topic
 * settings. Made by `Mq`; `resolver` gives an exchange's routing.
 */
export class Publisher {
  #adapter: StorageAdapter;
  #now: () => number;
  #configs: TopicConfigs;
  #resolver: (exchange: string) => Promise<ExchangeResolver>;
  /** Waits for a reservation in progress (see `reserveIds`). */
  #clock: Clock;
  #sticky = 0;

  constructor(
    adapter: StorageAdapter,
    now: () => number,
    configs: TopicConfigs,
    resolver: (exchange: string) => Promise<ExchangeResolver>,
    clock: Clock = systemClock,
  ) {
    this.#adapter = adapter;
    this.#now = now;
    this.#configs = configs;
    this.#resolver = resolver;
    this.#clock = clock;
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
    const { batch, partition } = this.toBatch(messages);
    return this.publishRecords(topic, batch, { partition });
  }

  toBatch(
    messages: (OutgoingMessage | Uint8Array | string)[],
  ): { batch: RecordBatch; partition?: number } {
    const payloads: Uint8Array[] = [];
    let meta: (RecordMeta | undefined)[] | undefined;
    let partition: number | undefined;
    const t = this.#now();
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
    const existing = await this.#configs.get(topic);
    if (!existing && options.ifExists) return { count: 0, duplicates: 0, written: [] };
    const limits = existing ?? makeTopicConfig({}, this.#now());
    // A partition that does not exist is refused before the topic is made.
    if (options.partition !== undefined) {
      this.#split(topic, limits, headOf(batch, 0), options.partition);
    }
    const bad = firstInvalid(batch, limits, topic, this.#adapter);
    const ok = bad ? headOf(batch, bad.index) : batch;
    let result: PublishResult = { count: 0, duplicates: 0, written: [] };
    if (ok.count > 0) {
      const config = existing ?? (await this.#configs.get(topic, { create: true }))!;
      const prepared = await this.#prepare(
        topic,
        config,
        ok,
        options.partition,
        true,
        options.deduplicate !== false,
      );
      result = await this.#write(prepared);
      if (existing) await this.#configs.stillThere(topic, existing);
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
    const limits = (await this.#configs.get(topic)) ?? makeTopicConfig({}, this.#now());
    const bad = firstInvalid(batch, limits, topic, this.#adapter);
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
      if (nativeDedup && this.#adapter.appendDeduplicated && config.partitions === 1) {
        dedupWindowMs = config.dedupWindowMs;
      } else {
        const r = await (await load.dedup()).reserveIds(
          this.#adapter,
          topic,
          batch,
          config.dedupWindowMs,
          this.#now(),
          config.partitions,
          this.#clock,
        );
        duplicates = batch.count - r.keep.length;
        if (duplicates > 0) batch = pickRecords(batch, r.keep);
        undo = r.undo;
      }
    }
    try {
      const parts = batch.count > 0 ? this.#split(topic, config, batch, partition) : [];
      if (config.overflow === "reject") {
        const { checkRoom } = await load.retention();
        for (const part of parts) {
          await checkRoom(this.#adapter, topic, config, part.partition, part.batch);
        }
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
        for (const run of splitBySize(p.batch, this.#adapter.capabilities.maxAppendBytes)) {
          const r = await this.#adapter.appendDeduplicated!(
            p.topic,
            0,
            run,
            p.dedupWindowMs,
            this.#now(),
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
          for (const run of splitBySize(part.batch, this.#adapter.capabilities.maxAppendBytes)) {
            const first = await this.#adapter.append(p.topic, part.partition, run);
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
    const batch = Array.isArray(messages) ? this.toBatch(messages).batch : messages;
    // Which records go to which topics: routed without a read per message.
    const { topicsOf, usesHeaders: byHeaders } = await this.#resolver(exchange);
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
      const config = (await this.#configs.get(topic)) ?? makeTopicConfig({}, this.#now());
      const bad = firstInvalid(headOf(batch, stop), config, topic, this.#adapter);
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
        const config = (await this.#configs.get(topic, { create: true }))!;
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
        ? await this.#adapter.appendAtomic?.(writes)
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
    if (delayed.length > 0) {
      await (await load.delayed()).recordDelayed(this.#adapter, topic, delayed, this.#now());
    }
    if (hasRetention(config)) {
      const { enforceRetention } = await load.retention();
      for (const p of new Set(written.map((w) => w.partition))) {
        await enforceRetention(this.#adapter, topic, config, p, this.#now());
      }
    }
  }

  /** `batch` split over the topic's partitions (see {@link splitOverPartitions}). */
  #split(
    topic: string,
    config: TopicConfig,
    batch: RecordBatch,
    partition: number | undefined,
  ): PartitionWrite[] {
    return splitOverPartitions(topic, config.partitions, batch, partition, () => this.#sticky++);
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
    const config = (await this.#configs.get(topic)) ?? makeTopicConfig({}, this.#now());
    return limitOf(config, topic, this.#adapter.capabilities.maxMessageBytes);
  }
}
