/**
 * Subscriptions: reading a topic from a position (no group), or as a member of
 * a group (leased deliveries, acks committed in batches).
 *
 * @module
 */
import type { LogReader, StorageAdapter } from "./adapter.ts";
import { ReceivedMessage } from "./message.ts";
import { resolveStart, type StartFrom } from "./start_position.ts";
import type { Backoff } from "./retry.ts";
import type { RecordMeta } from "./record.ts";
import type { TopicConfig } from "./topic_config.ts";
import { GroupSource } from "./group_consumer.ts";
import { waitAny } from "./wait.ts";
import { retainedSince } from "./retention.ts";

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
  topic: string;
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
    this.#source = options.group === undefined
      ? new LogSource(ctx, options)
      : new GroupSource(ctx, options.group, options);
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

class LogSource implements BatchSource {
  #ctx: SubscriptionContext;
  #options: SubscribeOptions;
  #readers: LogReader[] | undefined;
  #next: number[] = [];
  #turn = 0;
  #partitions = 1;
  #config: TopicConfig | undefined;

  constructor(ctx: SubscriptionContext, options: SubscribeOptions) {
    this.#ctx = ctx;
    this.#options = options;
  }

  async #open(): Promise<LogReader[]> {
    const { adapter, topic, now } = this.#ctx;
    this.#config = await this.#ctx.config();
    const partitions = this.#partitions = await this.#ctx.partitions();
    const readers: LogReader[] = [];
    for (let p = 0; p < partitions; p++) {
      const from = await resolveStart(adapter, topic, p, this.#options.from ?? "beginning", now());
      this.#next[p] = from;
      readers.push(await adapter.openReader(topic, p, from));
    }
    return readers;
  }

  async next(max: number, signal: AbortSignal): Promise<ReceivedMessage[] | null> {
    const readers = this.#readers ??= await this.#open();
    const { topic, adapter } = this.#ctx;
    const partitions = this.#partitions;
    while (!signal.aborted) {
      for (let i = 0; i < partitions; i++) {
        const p = (this.#turn + i) % partitions;
        let records = await readers[p].read(max);
        if (records.length > 0) {
          this.#turn = p + 1;
          this.#next[p] = records[records.length - 1].offset + 1;
          // Older than the retention age: gone, even if not trimmed yet.
          const since = retainedSince(this.#config, this.#ctx.now());
          if (since !== undefined) records = records.filter((r) => r.timestamp >= since);
          if (records.length === 0) return [];
          const out = new Array<ReceivedMessage>(records.length);
          for (let j = 0; j < records.length; j++) {
            out[j] = new ReceivedMessage(topic, p, records[j], 1);
          }
          return out;
        }
      }
      if (this.#options.follow === false) return null;
      await waitAny(adapter, topic, this.#next, signal, 1000);
    }
    return null;
  }

  commit(): Promise<void> {
    return Promise.resolve();
  }

  close(_release: boolean): Promise<void> {
    for (const r of this.#readers ?? []) r.close();
    this.#readers = [];
    return Promise.resolve();
  }
}
