/**
 * Retention: a topic keeps messages by age, count and bytes. Count and bytes
 * are limits per partition (as Kafka's `retention.bytes`): a topic of N
 * partitions keeps up to N times as much. With overflow `reject`, a publish
 * that would exceed the count or bytes fails with `TOPIC_FULL`; with
 * `drop-oldest` (the default) the oldest are trimmed. Bytes are what the
 * backend stores (`storedBytes`, framing included). Age applies at once: a
 * message older than the retention age is trimmed at the next publish, and
 * until then neither read nor delivered ({@link retainedSince}).
 *
 * @module
 */
import type { StorageAdapter } from "./adapter.ts";
import { MqError } from "./errors.ts";
import type { RecordBatch } from "./record.ts";
import type { TopicConfig } from "./topic_config.ts";
import { resolveStart } from "./start_position.ts";

export { retainedSince } from "./topic_config.ts";

export { hasRetention } from "./topic_config.ts";

/**
 * For `reject` topics: throws `TOPIC_FULL` when `batch` would not fit.
 *
 * @throws {MqError} `TOPIC_FULL`
 */
export async function checkRoom(
  adapter: StorageAdapter,
  topic: string,
  config: TopicConfig,
  partition: number,
  batch: RecordBatch,
): Promise<void> {
  if (config.overflow !== "reject") return;
  const b = await adapter.bounds(topic, partition);
  if (config.maxMessages !== undefined && b.end - b.start + batch.count > config.maxMessages) {
    throw new MqError(
      "TOPIC_FULL",
      `topic "${topic}" is full: ${
        b.end - b.start
      } of ${config.maxMessages} messages (--overflow reject)`,
    );
  }
  if (config.maxBytes !== undefined && adapter.storedBytes) {
    let payload = 0;
    for (let i = 0; i < batch.count; i++) payload += batch.ends[i] - batch.starts[i];
    const have = await adapter.storedBytes(topic, partition);
    // What the batch will take stored: its payload, or, when the partition's
    // records are larger on average (framing, headers), that average each.
    const average = b.end > b.start ? have / (b.end - b.start) : 0;
    const add = Math.max(payload, Math.ceil(batch.count * average));
    if (have + add > config.maxBytes) {
      throw new MqError(
        "TOPIC_FULL",
        `topic "${topic}" is full: ${have} of ${config.maxBytes} bytes (--overflow reject)`,
      );
    }
  }
}

/** Trims a partition to the topic's limits (drop-oldest, and age for every topic). */
export async function enforceRetention(
  adapter: StorageAdapter,
  topic: string,
  config: TopicConfig,
  partition: number,
  now: number,
): Promise<void> {
  const b = await adapter.bounds(topic, partition);
  let cut = b.start;
  if (config.retentionAgeMs !== undefined) {
    cut = Math.max(
      cut,
      await resolveStart(adapter, topic, partition, { agoMs: config.retentionAgeMs }, now),
    );
  }
  if (config.overflow === "drop-oldest") {
    if (config.maxMessages !== undefined) cut = Math.max(cut, b.end - config.maxMessages);
  }
  if (cut > b.start) await adapter.trim(topic, partition, Math.min(cut, b.end));
  if (config.overflow === "drop-oldest" && config.maxBytes !== undefined && adapter.storedBytes) {
    // Drop the oldest in proportion to the excess, and again while the
    // messages dropped were smaller than the average (a few rounds at most).
    let start = Math.max(cut, b.start);
    for (let round = 0; round < 8 && start < b.end; round++) {
      const bytes = await adapter.storedBytes(topic, partition);
      if (bytes <= config.maxBytes) break;
      const perMessage = bytes / (b.end - start);
      const next = Math.min(
        b.end,
        start + Math.max(1, Math.ceil((bytes - config.maxBytes) / perMessage)),
      );
      await adapter.trim(topic, partition, next);
      start = next;
    }
  }
}
