/**
 * What adapter authors and the project's own packages need beside the public
 * surface (`mod.ts`): the storage contract an adapter implements, record
 * batches and blocks, topic-config defaults, backend URL parsing, the
 * registry of schemes, and the backend under a client. Not
 * for applications: it may change with any release.
 *
 * @example
 * ```ts
 * import { adapterOf, batchOf } from "./internal.ts";
 * import { Mq } from "./mod.ts";
 * import { MemoryAdapter } from "../adapters/memory/mod.ts";
 * const mq = new Mq(new MemoryAdapter());
 * await mq.publishRecords("t", batchOf([new TextEncoder().encode("x")]));
 * console.log(await adapterOf(mq).bounds("t", 0)); // { start: 0, end: 1 }
 * ```
 *
 * @module
 */
export { adapterOf } from "./_access.ts";
export { batchOf, headOf, pickRecords, sliceOf } from "./record.ts";
export { blockOf, messagesOf, recordAt } from "./record_block.ts";
export { DEFAULT_TOPIC_CONFIG, MAX_REPLICAS } from "./topic_config.ts";
export { parseBackendUrl } from "./backend_url.ts";
export type { BackendUrl } from "./backend_url.ts";
export { Registry } from "./registry.ts";
export type { LazyDescriber, LazyFactory, OpenOptions } from "./registry.ts";
export { DLQ_STDERR_BYTES } from "./dead_letter.ts";
export type { BrokerConnector, IntoOptions } from "./bridge.ts";
export type {
  AdapterFactory,
  Capabilities,
  CorruptionReport,
  DeduplicatedAppend,
  LogReader,
  PartitionBounds,
  PartitionWrite,
  ReconnectPolicy,
  StateWrite,
  StorageAdapter,
  StorageCheckOptions,
  StorageFinding,
  TransactionCommit,
  TransactionCommitted,
  TransactionWrite,
  Versioned,
} from "./adapter.ts";
