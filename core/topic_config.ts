/**
 * A topic's settings, their defaults and their validation.
 *
 * @module
 */
import { MqError } from "./errors.ts";
import { assertName } from "./names.ts";
import { describe, isObject, isOffset, type LocatesState, parseStateDoc } from "./_state_docs.ts";

/** A topic's settings. */
export interface TopicConfig {
  /** Number of partitions; a key's hash picks one. @default 1 */
  partitions: number;
  /** Largest payload accepted, in bytes. @default 1048576 (1 MiB) */
  maxMessageBytes: number;
  /** Records older than this are removed (ms); undefined keeps them. */
  retentionAgeMs?: number;
  /** At most this many records are kept, per partition. */
  maxMessages?: number;
  /** At most this many bytes are kept, per partition (as the backend stores them). */
  maxBytes?: number;
  /** What a full topic does with a new message. @default "drop-oldest" */
  overflow: "drop-oldest" | "reject";
  /** A message id seen within this window is dropped (ms). @default 120000 */
  dedupWindowMs: number;
  /** Deliveries before a message is dead-lettered. @default 5 */
  maxAttempts: number;
  /** Dead-letter topic. @default `<topic>.dlq` */
  dlq?: string;
  /** Expired messages (TTL) go to the dead-letter topic too (`--dlq-expired`). @default false */
  deadLetterExpired?: boolean;
  /**
   * Copies of each message the backend keeps, on different servers (1 to 5;
   * backends that replicate, such as NATS JetStream in a cluster).
   * @default the backend's (a `nats://` URL's `?replicas=N`, else 1); unset where the backend keeps one copy
   */
  replicas?: number;
  /** When the topic was created (ms since the epoch). */
  createdAt: number;
}

/** The largest `maxMessageBytes` a topic may set (64 MiB). */
export const MAX_MESSAGE_BYTES_LIMIT = 64 * 1024 * 1024;

/** Defaults for a topic created by a publish. */
export const DEFAULT_TOPIC_CONFIG: Omit<TopicConfig, "createdAt"> = {
  partitions: 1,
  maxMessageBytes: 1024 * 1024,
  overflow: "drop-oldest",
  dedupWindowMs: 120_000,
  maxAttempts: 5,
};

/**
 * A complete, validated config from user-given settings.
 *
 * @throws {MqError} `INVALID_ARGUMENT` naming the setting
 */
export function makeTopicConfig(given: Partial<TopicConfig>, now: number): TopicConfig {
  const c: TopicConfig = { ...DEFAULT_TOPIC_CONFIG, ...dropUndefined(given), createdAt: now };
  positiveInt("partitions", c.partitions, 1, 1024);
  positiveInt("max-message-bytes", c.maxMessageBytes, 1, MAX_MESSAGE_BYTES_LIMIT);
  positiveInt("max-attempts", c.maxAttempts, 1, 1_000_000);
  if (c.maxMessages !== undefined) {
    positiveInt("max-messages", c.maxMessages, 1, Number.MAX_SAFE_INTEGER);
  }
  if (c.maxBytes !== undefined) positiveInt("max-bytes", c.maxBytes, 1, Number.MAX_SAFE_INTEGER);
  if (c.overflow !== "drop-oldest" && c.overflow !== "reject") {
    throw new MqError(
      "INVALID_ARGUMENT",
      `overflow must be drop-oldest or reject, not ${JSON.stringify(c.overflow)}`,
    );
  }
  if (c.dlq !== undefined) assertName("topic", c.dlq);
  if (c.replicas !== undefined) positiveInt("replicas", c.replicas, 1, MAX_REPLICAS);
  return c;
}

/** The most copies a topic may ask for (as JetStream allows). */
export const MAX_REPLICAS = 5;

/**
 * A new topic's settings with its replicas settled for a backend: the
 * topic's own, else the backend's default; refused above 1 where the backend
 * keeps one copy.
 *
 * @example
 * ```ts
 * import { makeTopicConfig, withReplicas } from "./topic_config.ts";
 * const c = withReplicas(makeTopicConfig({}, 0), { persistent: true, multiProcess: true, defaultReplicas: 3 });
 * c.replicas; // 3
 * ```
 * @throws {MqError} `INVALID_ARGUMENT` for more than one replica on a backend that keeps one copy
 */
export function withReplicas(
  config: TopicConfig,
  capabilities: { defaultReplicas?: number },
): TopicConfig {
  if (capabilities.defaultReplicas === undefined) {
    if (config.replicas !== undefined && config.replicas > 1) {
      throw new MqError(
        "INVALID_ARGUMENT",
        `replicas must be 1 on this backend (it keeps one copy of each message); ` +
          `more need a replicating backend such as a NATS cluster`,
      );
    }
    return config;
  }
  return { ...config, replicas: config.replicas ?? capabilities.defaultReplicas };
}

function positiveInt(name: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new MqError(
      "INVALID_ARGUMENT",
      `${name} must be a whole number from ${min} to ${max}, not ${v}`,
    );
  }
}

function dropUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * Parses and checks a topic's settings document.
 *
 * @throws {MqError} `CORRUPT` naming the topic, the document and what is wrong
 */
export function parseTopicConfig(
  adapter: LocatesState,
  topic: string,
  bytes: Uint8Array,
): TopicConfig {
  return parseStateDoc<TopicConfig>(
    adapter,
    ["topics", topic],
    `settings of topic "${topic}"`,
    bytes,
    topicConfigProblem,
  );
}

/** What is wrong with a topic settings document's shape, if anything. */
export function topicConfigProblem(v: unknown): string | undefined {
  if (!isObject(v)) return `it holds ${describe(v)}, not an object`;
  for (const f of ["partitions", "maxMessageBytes", "dedupWindowMs", "maxAttempts"]) {
    if (!isOffset(v[f])) return `"${f}" is ${describe(v[f])}, not a whole number`;
  }
  if ((v.partitions as number) < 1) return `"partitions" is ${v.partitions}, not at least 1`;
  if (v.dlq !== undefined && typeof v.dlq !== "string") {
    return `"dlq" is ${describe(v.dlq)}, not a topic name`;
  }
  return undefined;
}

/** True when the topic limits what it keeps. */
export function hasRetention(c: TopicConfig): boolean {
  return c.retentionAgeMs !== undefined || c.maxMessages !== undefined || c.maxBytes !== undefined;
}

/**
 * The oldest timestamp a topic still keeps at `now` (records older are gone
 * for readers even before they are trimmed), or undefined without an age limit.
 */
export function retainedSince(c: TopicConfig | undefined, now: number): number | undefined {
  return c?.retentionAgeMs === undefined ? undefined : now - c.retentionAgeMs;
}
