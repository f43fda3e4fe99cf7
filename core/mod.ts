/**
 * The core of mq: queue semantics independent of storage. Web-standard
 * TypeScript only; what a library user needs: the client ({@link Mq}), the
 * message and option types, errors, administration, routing, dead letters
 * and the views of the store. Adapters plug in through the storage contract
 * of `./internal.ts` (the package's `./internal` export), which also holds
 * the plumbing adapter authors need; importing this module loads no adapter.
 *
 * @example
 * ```ts
 * import { Mq } from "./mod.ts";
 * import { MemoryAdapter } from "../adapters/memory/mod.ts";
 * const mq = new Mq(new MemoryAdapter());
 * await mq.publish("t", "hello");
 * ```
 *
 * @module
 */
export { Mq } from "./client.ts";
export { MqError } from "./errors.ts";
export { Subscription } from "./subscription.ts";
export type { Transaction } from "./transaction.ts";
export { formatReceipt, parseReceipt, ReceivedMessage } from "./message.ts";
export { backoffDelay, DEFAULT_BACKOFF, parseBackoff } from "./retry.ts";
export { ManualClock, systemClock } from "./clock.ts";
export type { Clock, TimerHandle } from "./clock.ts";
export { deadLetterTopic, DLQ_HEADERS } from "./dead_letter.ts";
export { redactUrl } from "./backend_url.ts";
export { BRIDGE_WINDOW, runBridge } from "./bridge.ts";
export type { BridgeOptions, BridgeResult, BridgeSink, SinkOptions } from "./bridge.ts";
export { compileTarget } from "./bridge_target.ts";
export type { TargetOf } from "./bridge_target.ts";
export { TopicAdmin } from "./topic_admin.ts";
export { ExchangeAdmin } from "./exchanges.ts";
export { assertPattern, Router } from "./routing.ts";
export { CORRELATION_ID, REPLY_TO } from "./request_reply.ts";
export { assertName, nameProblem } from "./names.ts";
export { formatDuration, parseDuration } from "./duration.ts";
export { parseStartFrom } from "./start_position.ts";
export { assertTopicOrPattern, isTopicPattern, topicMatches } from "./topic_pattern.ts";
export type { DoctorOptions, DoctorReport } from "./doctor.ts";
export { overview, RateTracker, topicMatcher } from "./overview.ts";
export { listDeadLetters, purgeDeadLetters, replayDeadLetters } from "./dead_letters.ts";
export type { BrowseFilter, BrowseOptions, BrowsePage } from "./browse.ts";
export { formatMetrics, METRICS_CONTENT_TYPE } from "./metrics.ts";
export { browseMessages } from "./browse.ts";
export type {
  MessageLimit,
  MqOptions,
  OutgoingMessage,
  PublishOptions,
  PublishRecordsOptions,
  PublishResult,
} from "./client.ts";
export type { MqErrorCode, MqErrorDetails } from "./errors.ts";
export type { SubscribeOptions } from "./subscription.ts";
export type { RecordBlock, TopicBlock } from "./record_block.ts";
export type { MessageFilter } from "./read_filter.ts";
export type { TransactionPublishOptions, TransactionResult } from "./transaction.ts";
export type { Message, Receipt, Transferred } from "./message.ts";
export type { MessageHandler, Payload } from "./types.ts";
export type { Backoff } from "./retry.ts";
export type { ConsumeOptions, ConsumeResult } from "./consume.ts";
export type { GroupInfo, TopicInfo, TopicSummary } from "./topic_admin.ts";
export type { TopicConfig } from "./topic_config.ts";
export type {
  GroupStats,
  Overview,
  OverviewOptions,
  RatedOverview,
  RatedTopic,
  RateTrackerOptions,
  TopicStats,
} from "./overview.ts";
export type {
  DeadLetter,
  DeadLetterRef,
  ListDeadLettersOptions,
  ReplayDeadLettersOptions,
} from "./dead_letters.ts";
export type { Binding, ExchangeType } from "./routing.ts";
export type { ExchangeInfo, ExchangeResolver, InboundBinding } from "./exchanges.ts";
export type { RequestOptions } from "./request_reply.ts";
export type { StartFrom } from "./start_position.ts";
export type { RecordBatch, RecordMeta, StoredRecord } from "./record.ts";
export type { Capabilities, CorruptionReport, ReconnectPolicy } from "./adapter.ts";
export type { OpenOptions } from "./registry.ts";
