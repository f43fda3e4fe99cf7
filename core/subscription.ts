/**
 * Subscriptions: reading a topic from a position (no group), or as a member of
 * a group (leased deliveries, acks committed in batches).
 *
 * @module
 */
import type { StorageAdapter } from "./adapter.ts";
import type { ReceivedMessage } from "./message.ts";
import type { StartFrom } from "./start_position.ts";
import type { Backoff } from "./retry.ts";
import type { RecordMeta } from "./record.ts";
import type { TopicConfig } from "./topic_config.ts";
import type { TopicBlock } from "./record_block.ts";
import type { MessageFilter } from "./read_filter.ts";
import { GroupSource } from "./group_consumer.ts";
import { LogSource } from "./_log_source.ts";
import { MqError } from "./errors.ts";
import type { Clock } from "./clock.ts";

/** How to subscribe. */
export interface SubscribeOptions {
  /** Consume as a member of this group: shared deliveries, a durable position. */
  group?: string;
  /** Where a reader without a group (or a new group) starts. @default "beginning" */
  from?: StartFrom;
  /** Wait for new messages at the end; false stops there. @default true */
  follow?: boolean;
  /**
   * With `follow: false` and a group: before stopping, wait for what may
   * still come back, deliveries in flight (to any member of the group) and
   * failed attempts whose retry is not due yet, as a draining worker does.
   * `false` stops as soon as nothing is deliverable now (as `mq take`
   * without `--wait` does).
   * @default true
   */
  awaitInFlight?: boolean;
  /** Stop after this many messages. */
  count?: number;
  /** Most messages per batch. @default 1024 */
  batchSize?: number;
  /**
   * About how many payload bytes a batch holds: the batch size adapts to the
   * messages' average size, so that large messages come in small batches
   * (memory stays flat) and small ones in large batches (fewer round trips).
   * @default 1 MiB
   */
  batchBytes?: number;
  /** How long a group delivery is leased before it is delivered again (ms). @default 30000 */
  visibilityMs?: number;
  /** Deliveries before a message is dead-lettered. @default the topic's `maxAttempts` */
  maxAttempts?: number;
  /** Delay between attempts of a nacked message. @default 1s doubling to 1m, with jitter */
  backoff?: Backoff;
  /**
   * At most one message per key in flight in the group (over all its
   * consumers): a key's messages are processed in order, different keys in
   * parallel. Messages without a key are not held back.
   */
  ordered?: boolean;
  /** Stops the subscription. */
  signal?: AbortSignal;
  /**
   * Without a group: start at the N most recent messages of the topic (over
   * all its partitions, or those of `partitions`), handed out in time order;
   * then follow, unless `follow` is false. Overrides `from`.
   */
  last?: number;
  /**
   * Without a group: stop before this point (exclusive): an offset (in each
   * partition), a time, a span ago (from when the read began), or `"end"`
   * (the end as the read began). In follow mode the read ends once every
   * partition reached it (for a time: once that time has come).
   */
  until?: StartFrom;
  /** Without a group: read only these partitions. @default all of them */
  partitions?: number[];
  /** Without a group: keep only the messages this matches (see {@link MessageFilter}). */
  filter?: MessageFilter;
  /** Without a group, following: end after this long (ms) with no message read. */
  idleMs?: number;
  /**
   * Without a group: show cancelled and expired messages too (a plain read
   * skips them, as groups do).
   * @default false
   */
  all?: boolean;
}

/** Where batches come from. */
export interface BatchSource {
  next(max: number, signal: AbortSignal): Promise<ReceivedMessage[] | null>;
  commit(): Promise<void>;
  extend?(): Promise<void>;
  ackAll?(messages: ReceivedMessage[]): void;
  close(release: boolean): Promise<void>;
}

/** Context a subscription needs from the client. */
export interface SubscriptionContext {
  adapter: StorageAdapter;
  /** The topic of a group subscription (the first of `topics` for a plain read). */
  topic: string;
  /** Topic names and patterns of a plain read. */
  topics: readonly string[];
  /** A topic's settings, for plain reads of several topics. */
  configOf: (topic: string) => Promise<TopicConfig | undefined>;
  /** The names of the topics there are (for patterns). */
  listTopics: () => Promise<string[]>;
  /** The topic's partition count, looked up once. */
  partitions: () => Promise<number>;
  /** The topic's settings (undefined when it does not exist). */
  config: () => Promise<TopicConfig | undefined>;
  /** The group, for group subscriptions. */
  group?: string;
  /** Publishes dead letters (to the dead-letter topic). */
  publishDeadLetters: (
    topic: string,
    records: { payload: Uint8Array; meta: RecordMeta }[],
  ) => Promise<void>;
  now: () => number;
  /** The client's timers (and time). */
  clock: Clock;
}

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
  #source: BatchSource;
  #log: LogSource | undefined;
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
    if (options.group === undefined) this.#source = this.#log = new LogSource(ctx, options);
    else this.#source = new GroupSource(ctx, options.group, options);
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
    const log = this.#log;
    if (!log) {
      throw new MqError(
        "INVALID_ARGUMENT",
        "blocks() is for plain reads; use batches() in a group",
      );
    }
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
        const batch = await this.#source.next(
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
      const batch = await this.#source.next(
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
  commit(): Promise<void> {
    return this.#source.commit();
  }

  /** Acks a whole batch at once (cheaper than acking each message). */
  ackAll(messages: ReceivedMessage[]): void {
    if (this.#source.ackAll) this.#source.ackAll(messages);
    else for (const m of messages) m.ack();
  }

  /** Extends the leases of the messages this subscription holds (group subscriptions). */
  extend(): Promise<void> {
    return this.#source.extend?.() ?? Promise.resolve();
  }

  /** Stops: commits acks, releases unsettled deliveries of a group. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort();
    await this.#source.close(true);
  }

  /**
   * Stops but leaves unsettled deliveries leased (until their visibility
   * timeout), to be settled by receipt, e.g. by `mq ack` in another process.
   */
  async detach(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort();
    await this.#source.close(false);
  }
}
