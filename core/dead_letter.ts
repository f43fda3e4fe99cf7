/**
 * Dead letters: a message that failed too often (or expired, where the topic
 * says so) moves to the dead-letter topic with headers that say why.
 *
 * @module
 */
import type { RecordMeta, StoredRecord } from "./record.ts";
import { MAX_NAME_LENGTH } from "./names.ts";

/** Header names mq sets on a dead letter. */
export const DLQ_HEADERS = {
  reason: "mq-dlq-reason",
  attempts: "mq-dlq-attempts",
  topic: "mq-dlq-topic",
  partition: "mq-dlq-partition",
  offset: "mq-dlq-offset",
  firstFailure: "mq-dlq-first-failure",
  lastFailure: "mq-dlq-last-failure",
  stderr: "mq-dlq-stderr",
} as const;

/** The most bytes of a command's stderr a dead letter keeps (its last lines). */
export const DLQ_STDERR_BYTES = 2048;

/** Why and when a message is dead-lettered. */
export interface DeadLetterCause {
  reason: string;
  attempts: number;
  firstFailure?: number;
  lastFailure: number;
  /** What the last attempt wrote to stderr (its end, at most {@link DLQ_STDERR_BYTES}). */
  stderr?: string;
}

/**
 * The dead-letter topic of `topic`: the configured one, else `<topic>.dlq`;
 * where that would be over the 200 characters a name may have, the name is
 * shortened and a hash of the whole keeps it apart from others
 * (`<first 187 characters>-<8 hex digits>.dlq`), so that every topic can
 * dead-letter.
 */
export function deadLetterTopic(topic: string, configured?: string): string {
  if (configured !== undefined) return configured;
  const name = `${topic}.dlq`;
  if (name.length <= MAX_NAME_LENGTH) return name;
  const head = topic.slice(0, MAX_NAME_LENGTH - 13);
  return `${head}-${fnv1a(topic)}.dlq`;
}

/** FNV-1a (32 bits) of a string, as 8 hex digits. */
function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, "0");
}

/** The metadata of the dead letter for `record` of `topic`/`partition`. */
export function deadLetterMeta(
  topic: string,
  partition: number,
  record: StoredRecord,
  cause: DeadLetterCause,
): RecordMeta {
  return {
    key: record.key,
    id: record.id ?? `${partition}-${record.offset}`,
    timestamp: record.timestamp,
    headers: {
      ...record.headers,
      [DLQ_HEADERS.reason]: cause.reason,
      [DLQ_HEADERS.attempts]: String(cause.attempts),
      [DLQ_HEADERS.topic]: topic,
      [DLQ_HEADERS.partition]: String(partition),
      [DLQ_HEADERS.offset]: String(record.offset),
      [DLQ_HEADERS.firstFailure]: new Date(cause.firstFailure ?? cause.lastFailure).toISOString(),
      [DLQ_HEADERS.lastFailure]: new Date(cause.lastFailure).toISOString(),
      ...(cause.stderr ? { [DLQ_HEADERS.stderr]: cause.stderr } : {}),
    },
  };
}

/** The headers of a replayed message: the original ones, without mq's dead-letter headers. */
export function withoutDeadLetterHeaders(
  headers: Record<string, string> | undefined,
): Record<string, string> | undefined {
  if (!headers) return undefined;
  const names = new Set<string>(Object.values(DLQ_HEADERS));
  const out = Object.fromEntries(Object.entries(headers).filter(([k]) => !names.has(k)));
  return Object.keys(out).length > 0 ? out : undefined;
}
