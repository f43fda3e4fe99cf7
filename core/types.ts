/**
 * The types shared by the client, its publish pipeline and its subscriptions
 * (one module, so that none of them imports another for its types).
 *
 * @module
 */
import type { CorruptionReport, StorageAdapter } from "./adapter.ts";
import type { ReceivedMessage } from "./message.ts";
import type { StartFrom } from "./start_position.ts";
import type { Backoff } from "./retry.ts";
import type { RecordMeta } from "./record.ts";
import type { TopicConfig } from "./topic_config.ts";
import type { MessageFilter } from "./read_filter.ts";
import type { Clock } from "./clock.ts";

/** A message's payload: bytes, or text sent as UTF-8. */
export type Payload = Uint8Array | string;

/** What `Mq.consume` and `Mq.reply` call for each message; what it resolves to is its result. */
export type MessageHandler<T> = (m: ReceivedMessage) => T | Promise<T>;

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

/** One message for `Mq.publishBatch`. */
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

/** The largest payload a topic takes, and why (see `Mq.messageLimit`). */
export interface MessageLimit {
  /** Bytes. */
  bytes: number;
  /** Why, as a refusal says it: `topic "t" allows at most N (--max-message-bytes)`. */
  why: string;
}

/** Options of `Mq.publishRecords`. */
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

/** Options of `Mq`. */
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
