/**
 * The shapes a transaction is made of: its options and result (re-exported
 * by `transaction.ts`), what it needs of the client, and what its callback
 * added (outputs and settlements), shared by the plan and the commit.
 *
 * @module
 */
import type { StorageAdapter } from "./adapter.ts";
import type { Clock } from "./clock.ts";
import type { ReceivedMessage, Transferred } from "./message.ts";
import type { RecordBatch } from "./record.ts";
import type { TopicConfig } from "./topic_config.ts";

/** Options of {@link Transaction.publish}. */
export interface TransactionPublishOptions {
  /** Partitioning key: one key, one partition, kept in order. */
  key?: string;
  /**
   * Message id. Where the backend is effectively-once, a message without one
   * gets `<topic>:<partition>:<offset>:<index>` of the first delivery the
   * transaction settles and its index among the transaction's publishes.
   */
  id?: string;
  /** Headers. */
  headers?: Record<string, string>;
  /** The partition, instead of the key's. */
  partition?: number;
  /** Not delivered to groups before this many ms from now. */
  delayMs?: number;
  /** Never delivered after this many ms from now. */
  ttlMs?: number;
}

/** What a committed transaction did. */
export interface TransactionResult {
  /** Messages stored. */
  published: number;
  /** Messages dropped as duplicates of an id seen within the dedup window. */
  duplicates: number;
  /** Deliveries acked. */
  acked: number;
  /** Deliveries nacked (to be retried, or dead-lettered on their last attempt). */
  nacked: number;
  /** Per topic and partition written: the first offset and how many. */
  written: { topic: string; partition: number; first: number; count: number }[];
}

/** The client's part a transaction needs (implemented by `Mq`). */
export interface TransactionHost {
  /** The backend. */
  readonly adapter: StorageAdapter;
  /** The current time, ms since the epoch. */
  readonly now: () => number;
  /**
   * The timers: the short random wait before a commit is tried again after a
   * conflicting writer is slept on it. @default systemClock
   */
  readonly clock?: Clock;
  /** A topic's settings; with `create`, made with defaults when missing. */
  topicConfig(topic: string, options?: { create?: boolean }): Promise<TopicConfig | undefined>;
  /** The first record of `batch` the topic or the backend refuses, and why. */
  invalidRecord(
    batch: RecordBatch,
    config: TopicConfig,
    topic: string,
  ): { index: number; code: "MESSAGE_TOO_LARGE" | "INVALID_ARGUMENT"; message: string } | undefined;
}

/** One publish, or a batch of records ({@link Transaction.publishRecords}). */
export type Output =
  | { topic: string; payload: Uint8Array; options: TransactionPublishOptions }
  | { topic: string; batch: RecordBatch; partition?: number }
  | { topic: string; plain: Uint8Array[] };

/** A delivery the transaction settles, and how. */
export interface Settlement {
  m: ReceivedMessage;
  t: Transferred;
  kind: "ack" | "nack";
  delayMs?: number;
  reason?: string;
}
