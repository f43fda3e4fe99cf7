/**
 * Settling a leased delivery by its receipt, from any process: what `mq ack`
 * and `mq nack` do. An unknown or expired receipt changes nothing.
 *
 * @module
 */
import type { StorageAdapter } from "./adapter.ts";
import { MqError } from "./errors.ts";
import { parseReceipt } from "./message.ts";
import type { Clock } from "./clock.ts";
import { loadGroup, updateGroup } from "./_group_store.ts";
import { release, settle } from "./_lease_table.ts";
import type { TopicConfig } from "./topic_config.ts";
import { type Backoff, backoffDelay, DEFAULT_BACKOFF } from "./retry.ts";
import { deadLetterMeta, deadLetterTopic } from "./dead_letter.ts";
import type { RecordMeta, StoredRecord } from "./record.ts";

/** What a settle by receipt needs from the client. */
export interface ReceiptContext {
  adapter: StorageAdapter;
  now: () => number;
  /** The timers (the wait after a conflicting writer of the group state). @default systemClock */
  clock?: Clock;
  config: (topic: string) => Promise<TopicConfig | undefined>;
  publishDeadLetter: (topic: string, payload: Uint8Array, meta: RecordMeta) => Promise<void>;
}

/** How to settle. */
export type Settlement =
  | { kind: "ack" }
  | { kind: "nack"; delayMs?: number; reason?: string; backoff?: Backoff; maxAttempts?: number };

function invalid(receipt: string, why: string): MqError {
  return new MqError("INVALID_ARGUMENT", `receipt ${JSON.stringify(receipt)} ${why}`);
}

/**
 * Acks or nacks the delivery a receipt names.
 *
 * @throws {MqError} `INVALID_ARGUMENT` for a malformed, unknown or expired receipt
 */
export async function settleReceipt(
  ctx: ReceiptContext,
  topic: string,
  receipt: string,
  how: Settlement,
): Promise<void> {
  const r = parseReceipt(receipt);
  if (!r) {
    throw invalid(
      receipt,
      "is not a receipt (expected GROUP:PARTITION:OFFSET:TOKEN, as mq take prints)",
    );
  }
  const config = await ctx.config(topic);
  if (!config) throw new MqError("TOPIC_NOT_FOUND", `topic "${topic}" does not exist`);
  const now = ctx.now();
  const state = await loadGroup(ctx.adapter, topic, r.group);
  const lease = state?.partitions[r.partition]?.leases.find((l) =>
    l.token === r.token && l.from <= r.offset && r.offset < l.to
  );
  if (!lease) {
    throw invalid(
      receipt,
      "is unknown, already settled, or its lease expired and went to another consumer",
    );
  }
  if (lease.until <= now) throw invalid(receipt, "expired: its visibility timeout passed");
  const range = [{ from: r.offset, to: r.offset + 1 }];
  let dead = false;
  if (how.kind === "nack" && lease.attempt >= (how.maxAttempts ?? config.maxAttempts)) {
    dead = true;
    const record = await readOne(ctx.adapter, topic, r.partition, r.offset);
    if (record) {
      await ctx.publishDeadLetter(
        deadLetterTopic(topic, config.dlq),
        record.payload,
        deadLetterMeta(topic, r.partition, record, {
          reason: how.reason ?? "nacked",
          attempts: lease.attempt,
          firstFailure: lease.firstFailure,
          lastFailure: now,
        }),
      );
    }
  }
  await updateGroup(ctx.adapter, topic, r.group, () => ({ partitions: {} }), (s) => {
    const cursor = s.partitions[r.partition];
    const held = cursor?.leases.some((l) =>
      l.token === r.token && l.from <= r.offset && r.offset < l.to
    );
    if (!cursor || !held) {
      throw invalid(receipt, "is unknown, already settled, or its lease expired");
    }
    if (how.kind === "ack" || dead) {
      settle(cursor, r.token, range);
      if (dead) s.deadLettered = (s.deadLettered ?? 0) + 1;
    } else {
      const delay = how.delayMs ?? backoffDelay(lease.attempt, how.backoff ?? DEFAULT_BACKOFF);
      release(cursor, r.token, range, now + delay, now);
    }
  }, { clock: ctx.clock });
}

/** The record at `offset`, if it is stored. */
export async function readOne(
  adapter: StorageAdapter,
  topic: string,
  partition: number,
  offset: number,
): Promise<StoredRecord | undefined> {
  const reader = await adapter.openReader(topic, partition, offset);
  try {
    const [rec] = await reader.read(1);
    return rec?.offset === offset ? rec : undefined;
  } finally {
    reader.close();
  }
}
