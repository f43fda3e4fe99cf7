/**
 * The client alone: `connect(url)` and what a program that publishes and
 * consumes needs beside it (names, durations, start positions), without the
 * library's views (overview, dead-letter browsing, metrics, the bridge) that
 * `mod.ts` also exports. A short-lived process (the `mq` command) starts
 * faster from here; `mod.ts` re-exports everything in this module.
 *
 * @example
 * ```ts
 * import { connect, parseDuration } from "./connect.ts";
 * const mq = await connect("memory:");
 * await mq.publish("orders", "hello");
 * await mq.close();
 * parseDuration("1m"); // 60000 (ms)
 * ```
 *
 * @module
 */
import { Mq, type MqOptions } from "./core/client.ts";
import type { OpenOptions } from "./core/registry.ts";
import { builtinRegistry } from "./adapters/builtin.ts";

export { Mq } from "./core/client.ts";
export type { MqOptions, PublishOptions } from "./core/client.ts";
export type { OpenOptions } from "./core/registry.ts";
export { MqError } from "./core/errors.ts";
export type { MqErrorCode } from "./core/errors.ts";
export { assertName } from "./core/names.ts";
export { formatDuration, parseDuration } from "./core/duration.ts";
export { parseStartFrom } from "./core/start_position.ts";
export type { StartFrom } from "./core/start_position.ts";
export { assertTopicOrPattern, isTopicPattern } from "./core/topic_pattern.ts";
export { deadLetterTopic } from "./core/dead_letter.ts";
export type { RecordBatch, RecordMeta } from "./core/record.ts";
/** Building a {@link RecordBatch} for `publishRecords`, and picking records of one. */
export { batchOf, pickRecords } from "./core/record.ts";
export type { SubscribeOptions, Subscription } from "./core/subscription.ts";
export type { MessageFilter } from "./core/read_filter.ts";
export type { TopicConfig } from "./core/topic_config.ts";

/**
 * Opens the backend named by `url` and returns a client.
 *
 * @example
 * ```ts
 * import { connect } from "./connect.ts";
 * const mq = await connect("memory:");
 * const { offset } = await mq.publish("t", "x");
 * await mq.close();
 * ```
 * @throws {MqError} `UNKNOWN_SCHEME`, `INVALID_URL`, `IO`, `UNREACHABLE`
 */
export async function connect(
  url: string,
  options: MqOptions & OpenOptions = {},
): Promise<Mq> {
  return new Mq(await builtinRegistry().open(url, { create: options.create }), options);
}
