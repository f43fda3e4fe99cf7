/**
 * Subscriptions: reading a topic from a position (no group), or as a member of
 * a group (leased deliveries, acks committed in batches). The reading
 * machinery (`_log_source.ts` for plain reads, `_group_consumer.ts` for
 * groups) is loaded on the first read, not when a client is made.
 *
 * @module
 */
import type { ReceivedMessage } from "./message.ts";
import type { TopicBlock } from "./record_block.ts";
import type { LogSource } from "./_log_source.ts";
import type { BatchSource, SubscribeOptions, SubscriptionContext } from "./types.ts";
import type { StorageAdapter } from "./adapter.ts";
import type { RecordMeta } from "./record.ts";
import type { TopicConfig } from "./topic_config.ts";
import { MqError } from "./errors.ts";
import { assertName } from "./names.ts";
import { assertTopicOrPattern, isTopicPattern } from "./topic_pattern.ts";
import type { Clock } from "./clock.ts";

export type { BatchSource, SubscribeOptions, SubscriptionContext } from "./types.ts";

/**
 * A subscription: iterate messages one by one, or in batches with
 * {@link Subscription.batches} (faster). Close it when done; a group
 * subscription then commits its acks and releases what it did not settle.
 *
 * @example
 * ```ts ignore
 * const sub = mq.subscribe("orders", { group: "billing", follow: false });
 * for await (const batch of sub.batches()) {
 *   for (const m of batch) m.ack();
 * }
 * await sub.close();
 * ```
 */
export class Subscription implements AsyncIterable<ReceivedMessage> {
  /** The source once loaded (a subscription hands out messages only after). */
  #loaded: BatchSource | undefined;
  #source: Promise<BatchSource>;
  #plain: boolean;
  #left: number;
  #abort = new AbortController();
  #closed = false;
  #batchSize: number;
  #batchBytes: number;
  /** The batch size that holds about `#batchBytes` at the average message size so far. */
  #fit: number;

  /** Made by {@link Mq.subscribe}; not meant to be constructed directly. */
  constructor(ctx: SubscriptionContext, options: SubscribeOptions = {}) {
    this.#batchSize = options.batchSize ?? 1024;
    this.#batchBytes = options.batchBytes ?? 1 << 20;
    this.#fit = this.#batchSize;
    this.#left = options.count ?? Infinity;
    if (options.signal) {
      if (options.signal.aborted) this.#abort.abort();
      else options.signal.addEventListener("abort", () => this.#abort.abort(), { once: true });
    }
    this.#plain = options.group === undefined;
    const group = options.group;
    this.#source =
      (group === undefined
        ? import("./_log_source.ts").then((m) => new m.LogSource(ctx, options))
        : import("./_group_consumer.ts").then(
          (m) => new m.GroupSource(ctx, group, options),
        )).then((source) => this.#loaded = source);
    // A failure to load shows at the first read; never as an unhandled rejection.
    this.#source.catch(() => {});
  }

  /**
   * A plain read's records in blocks: columns over the read buffers, no
   * object per record (the fastest way to copy many payloads out).
   *
   * @example
   * ```ts ignore
   * for await (const b of mq.subscribe("logs", { follow: false }).blocks()) {
   *   for (let i = 0; i < b.count; i++) out.write(b.data.subarray(b.starts[i], b.ends[i]));
   * }
   * ```
   * @throws {MqError} `INVALID_ARGUMENT` on a group subscription
   */
  async *blocks(): AsyncGenerator<TopicBlock> {
    if (!this.#plain) {
      throw new MqError(
        "INVALID_ARGUMENT",
        "blocks() is for plain reads; use batches() in a group",
      );
    }
    const log = await this.#source as LogSource;
    try {
      while (this.#left > 0 && !this.#closed) {
        const block = await log.nextBlock(
          Math.min(this.#batchSize, this.#left),
          this.#abort.signal,
        );
        if (block === null) return;
        if (block.count === 0) continue;
        if (block.count > this.#left) block.count = this.#left;
        this.#left -= block.count;
        yield block;
      }
    } finally {
      await this.close();
    }
  }

  /** Messages in batches, as they are stored. */
  async *batches(): AsyncGenerator<ReceivedMessage[]> {
    try {
      while (this.#left > 0 && !this.#closed) {
        const batch = await (await this.#source).next(
          Math.min(this.#fit, this.#left),
          this.#abort.signal,
        );
        if (batch === null) return;
        if (batch.length === 0) continue;
        this.#left -= batch.length;
        this.#adapt(batch);
        yield batch;
      }
    } finally {
      await this.close();
    }
  }

  /**
   * The next batch of at most `max` messages, or null at the end (without
   * `follow`) or when stopped.
   */
  async take(max?: number): Promise<ReceivedMessage[] | null> {
    while (this.#left > 0 && !this.#closed) {
      const batch = await (await this.#source).next(
        Math.min(max ?? this.#fit, this.#left),
        this.#abort.signal,
      );
      if (batch === null) return null;
      if (batch.length === 0) continue;
      this.#left -= batch.length;
      if (max === undefined) this.#adapt(batch);
      return batch;
    }
    return null;
  }

  /** Sizes the next batches to hold about `#batchBytes` at this batch's average size. */
  #adapt(batch: ReceivedMessage[]): void {
    let bytes = 0;
    for (const m of batch) bytes += m.record.payload.length + 32;
    const fit = Math.floor(this.#batchBytes / (bytes / batch.length));
    this.#fit = Math.max(16, Math.min(this.#batchSize, fit));
  }

  /** Messages one by one. */
  async *[Symbol.asyncIterator](): AsyncGenerator<ReceivedMessage> {
    for await (const batch of this.batches()) yield* batch;
  }

  /** Writes the acks and nacks given so far (group subscriptions). */
  async commit(): Promise<void> {
    await (await this.#source).commit();
  }

  /** Acks a whole batch at once (cheaper than acking each message). */
  ackAll(messages: ReceivedMessage[]): void {
    // Messages come from the source, so it is loaded when there are any.
    if (this.#loaded?.ackAll) this.#loaded.ackAll(messages);
    else for (const m of messages) m.ack();
  }

  /** Extends the leases of the messages this subscription holds (group subscriptions). */
  async extend(): Promise<void> {
    await (await this.#source).extend?.();
  }

  /** Stops: commits acks, releases unsettled deliveries of a group. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort();
    await (await this.#source).close(true);
  }

  /**
   * Stops but leaves unsettled deliveries leased (until their visibility
   * timeout), to be settled by receipt, e.g. by `mq ack` in another process.
   */
  async detach(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort();
    await (await this.#source).close(false);
  }
}

/** What a subscription needs of its client (an `Mq`). */
export interface SubscriptionHost {
  adapter: StorageAdapter;
  now: () => number;
  /** The client's timers (and time). */
  clock: Clock;
  topicConfig(
    topic: string,
    options?: { create?: boolean; settings?: Partial<TopicConfig> },
  ): Promise<TopicConfig | undefined>;
  /** Publishes dead letters as they are (never dropped as duplicates). */
  deadLetters(dlq: string, payloads: Uint8Array[], meta: RecordMeta[]): Promise<void>;
}

/**
 * Checks what `Mq.subscribe` is asked and makes the subscription.
 *
 * @throws {MqError} `INVALID_NAME`; `INVALID_ARGUMENT` for a group with
 * several topics, a pattern or a plain-read option
 */
export function openSubscription(
  host: SubscriptionHost,
  topics: string | readonly string[],
  options: SubscribeOptions,
): Subscription {
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
  return new Subscription({
    adapter: host.adapter,
    topic,
    topics: names,
    configOf: (t: string) => host.topicConfig(t),
    listTopics: () => host.adapter.listState(["topics"]),
    partitions: () => partitions ??= host.topicConfig(topic).then((c) => c?.partitions ?? 1),
    config: () => host.topicConfig(topic),
    publishDeadLetters: async (dlq, records) => {
      // A dead-letter topic made here keeps as many copies as its topic.
      const replicas = (await host.topicConfig(topic))?.replicas;
      if (replicas !== undefined && !(await host.topicConfig(dlq))) {
        await host.topicConfig(dlq, { create: true, settings: { replicas } });
      }
      await host.deadLetters(dlq, records.map((r) => r.payload), records.map((r) => r.meta));
    },
    group: options.group,
    now: host.now,
    clock: host.clock,
  }, options);
}
