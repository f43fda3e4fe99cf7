/**
 * The storage contract: what an adapter gives the core. The core builds topics,
 * groups, leases and routing on these operations, so every rule lives once.
 *
 * Contract notes, as every adapter must honour them (the conformance suite in
 * `tests/conformance/` checks each):
 * - `append` is safe to call concurrently, also from several processes when
 *   `capabilities.multiProcess` is set; offsets are dense, never reused, and
 *   in append order per partition; when it resolves the records are stored as
 *   durably as the adapter's sync policy says.
 * - `openReader` returns records in offset order; a reader never returns a
 *   corrupt record, and skips records that were trimmed.
 * - `compareAndSet` is atomic against every other caller of the same key.
 *
 * @module
 */
import type { RecordBatch, StoredRecord } from "./record.ts";
import type { RecordBlock } from "./record_block.ts";
import type { TopicConfig } from "./topic_config.ts";

/** What a backend can do; the core fills in the rest, tests skip what is ruled out. */
export interface Capabilities {
  /** Data survives closing and reopening the backend. */
  persistent: boolean;
  /** Several processes may use the same store at once. */
  multiProcess: boolean;
  /** The largest payload the backend can store, when it is below a topic's limit. */
  maxMessageBytes?: number;
  /**
   * The most payload bytes one `append` can write atomically (as one
   * contiguous run of offsets); the core splits larger batches. Unset: no limit.
   */
  maxAppendBytes?: number;
  /**
   * Set by backends that keep copies of each record on several servers: the
   * copies a topic gets unless it says otherwise (a topic's `replicas`).
   * Unset: one copy, and a topic asking for more is refused.
   */
  defaultReplicas?: number;
  /**
   * How `Mq.transaction` holds: `"atomic"` (the backend has
   * {@link StorageAdapter.commitTransaction}: every write and settlement of a
   * transaction in one commit, readers never see a part) or
   * `"effectively-once"` (no atomic commit: outputs carry ids derived from the
   * input and are deduplicated, the input is settled after they are stored, so
   * a crash repeats nothing within the dedup window). Unset: derived from
   * whether `commitTransaction` exists.
   */
  transactions?: "atomic" | "effectively-once";
  /**
   * The most bytes (messages with their framing, and state documents) one
   * atomic transaction can commit; a larger one is refused with
   * `TRANSACTION_TOO_LARGE` before anything is written. Unset: no limit.
   */
  maxTransactionBytes?: number;
  /**
   * True where appends to one partition by several clients at the same
   * moment may interleave their records, so that one batch's records do not
   * get one consecutive run of offsets (each client's own order holds,
   * nothing is lost or repeated): NATS JetStream, which has no atomic batch.
   * Unset: every `append` gets a dense run of offsets, whoever else appends.
   */
  interleavedAppends?: boolean;
}

/**
 * How a backend reached over a network rides through failures that pass (a
 * lost connection, a leader election): see {@link StorageAdapter.setReconnectPolicy}.
 */
export interface ReconnectPolicy {
  /**
   * How long one operation keeps retrying such a failure before it fails
   * (ms; `Infinity` for long-running consumers). @default 20000
   */
  retryForMs: number;
  /** Told each change of the connection's state, one line each ("disconnected from ..."). */
  onState?: (line: string) => void;
}

/** A position within a partition: the first offset kept and the next to be written. */
export interface PartitionBounds {
  /** The lowest offset still stored (records below were trimmed). */
  start: number;
  /** The offset the next appended record will get. */
  end: number;
}

/** A sequential reader over one partition. */
export interface LogReader {
  /**
   * Up to `max` records from the reader's position, in offset order; an empty
   * array when nothing more is stored right now.
   */
  read(max: number): Promise<StoredRecord[]>;
  /**
   * Optional: the offset the next record returned will have at least. Where
   * it is past the last record returned, the offsets between were skipped as
   * unreadable (corrupt; reported through `onCorrupt`) or trimmed.
   */
  position?(): number;
  /**
   * Optional, the fast path of plain reads: up to `max` records from the
   * reader's position as columns over one buffer (no object per record), an
   * empty block when nothing more is stored right now. Where it is missing
   * the core builds blocks from {@link LogReader.read}. A reader is read
   * either way, not both.
   */
  readBlock?(max: number): Promise<RecordBlock>;
  /** Releases the reader's resources. */
  close(): void;
}

/** A state document and its version, for compare-and-set. */
export interface Versioned {
  /** The document's bytes. */
  value: Uint8Array;
  /** Opaque version; changes on every write. */
  version: string;
}

/** A storage backend. Keys of state documents are lists of validated names. */
export interface StorageAdapter {
  /** What this backend can do. */
  readonly capabilities: Capabilities;

  /** Appends `batch` to a partition; resolves to the offset of its first record. */
  append(topic: string, partition: number, batch: RecordBatch): Promise<number>;
  /** Opens a reader at offset `from` (clamped to what is stored). */
  openReader(topic: string, partition: number, from: number): Promise<LogReader>;
  /** The partition's bounds; `{start: 0, end: 0}` for one never written. */
  bounds(topic: string, partition: number): Promise<PartitionBounds>;
  /**
   * Resolves when the partition's end is beyond `offset`, or when `signal`
   * aborts, or after `timeoutMs` at the latest (callers then check again).
   */
  waitFor(
    topic: string,
    partition: number,
    offset: number,
    signal: AbortSignal,
    timeoutMs: number,
  ): Promise<void>;
  /** Removes records below `before` (all of them when `before` is the end). */
  trim(topic: string, partition: number, before: number): Promise<void>;
  /** Removes every partition of a topic's log. */
  dropLog(topic: string): Promise<void>;
  /**
   * Bytes of the records a partition holds now (from its start to its end),
   * where the backend can tell cheaply; retention by bytes needs it.
   */
  storedBytes?(topic: string, partition: number): Promise<number>;

  /**
   * Optional: appends every write, to several topics and partitions, all or
   * none (one atomic operation; exchange fan-out uses it). Resolves to each
   * write's first offset, or to `undefined`, having written nothing, when the
   * writes do not fit in one atomic operation of this backend (the core then
   * writes them one by one).
   */
  appendAtomic?(writes: PartitionWrite[]): Promise<number[] | undefined>;

  /**
   * Optional, for backends that deduplicate natively: appends `batch`,
   * dropping every record whose `meta.id` was appended to this partition
   * within the last `windowMs` as of `now` (a backend with a clock of its own,
   * such as a broker's, may use that instead), and later repeats of an id within the batch,
   * atomically with the append, so that concurrent publishers of one id store
   * it once. Records without an id are always kept. Where this is missing the
   * core reserves ids in state documents before appending.
   */
  appendDeduplicated?(
    topic: string,
    partition: number,
    batch: RecordBatch,
    windowMs: number,
    now: number,
  ): Promise<DeduplicatedAppend>;

  /**
   * Optional: the first record of `batch` this backend cannot store (say,
   * too large with its key, id and headers for one value), and why. The core
   * asks before anything of a batch is written, so that a refusal names the
   * right record and nothing after it is stored.
   */
  checkRecords?(batch: RecordBatch): { index: number; message: string } | undefined;

  /**
   * Optional: makes the storage of a new topic with its settings (say,
   * replicated streams, `config.replicas` copies each) before the core saves
   * them; a refusal (more replicas than the cluster has) fails the creation
   * with nothing saved. Called again for a topic that exists: a no-op then.
   */
  prepareTopic?(topic: string, config: TopicConfig): Promise<void>;

  /**
   * Optional, for backends reached over a network: how long operations keep
   * retrying failures that pass, and where to report the connection's state.
   */
  setReconnectPolicy?(policy: ReconnectPolicy): void;

  /**
   * Optional: one atomic commit of a transaction: appends every write (to any
   * topics and partitions) and replaces every state document whose version is
   * still the expected one, all or nothing; readers never see a part of it,
   * and a crash before it returns leaves all of it or none (after recovery).
   * Resolves to each write's first offset, or to `"conflict"`, having written
   * nothing, when a state document's version changed (the core then reads
   * again and retries).
   *
   * @throws {MqError} `TRANSACTION_TOO_LARGE`, having written nothing, when the
   * commit exceeds what this backend can do atomically
   */
  commitTransaction?(commit: TransactionCommit): Promise<TransactionCommitted | "conflict">;

  /** Reads a state document. */
  getState(key: string[]): Promise<Versioned | undefined>;
  /**
   * Writes `value` under `key` if its version is still `expected` (null: the
   * key must not exist); returns false, writing nothing, otherwise.
   */
  compareAndSet(key: string[], expected: string | null, value: Uint8Array): Promise<boolean>;
  /** Deletes the document `key` and every document below it. */
  deleteState(key: string[]): Promise<void>;
  /** The names directly below `prefix` that hold a document. */
  listState(prefix: string[]): Promise<string[]>;

  /**
   * Optional: where the document `key` lives, as a user can find it (the
   * fs backend's file path), for error messages about a damaged document.
   */
  stateLocation?(key: string[]): string;

  /**
   * Optional: told of every stretch of corrupt bytes a reader skips (once per
   * stretch and reader). The core sets it (see `MqOptions.onCorrupt`); an
   * adapter that can detect corruption calls it.
   */
  onCorrupt?: ((report: CorruptionReport) => void) | undefined;

  /**
   * Optional: checks the stored logs as `mq doctor` does (frames, offsets,
   * indexes, leftover files) and, with `repair`, fixes what can be fixed
   * without losing an acknowledged message. The core checks state documents
   * on top, on every backend.
   */
  checkStorage?(options: StorageCheckOptions): Promise<StorageFinding[]>;

  /** Releases everything; later calls fail with `CLOSED`. */
  close(): Promise<void>;
}

/** Corrupt bytes skipped by a reader, or unreadable offsets settled by a group. */
export interface CorruptionReport {
  /** The topic. */
  topic: string;
  /** The partition. */
  partition: number;
  /** Where: a segment file on fs, a key on kv. */
  location: string;
  /** The bytes `[from, to)` of `location` skipped, where known. */
  bytes?: { from: number; to: number };
  /** The offsets `[from, to)` that could not be read, where known. */
  offsets?: { from: number; to: number };
  /** The group that settled these offsets unread, when a group did. */
  group?: string;
  /** Where the bytes were moved when a writer cut them off (a side file). */
  quarantined?: string;
}

/** What {@link StorageAdapter.checkStorage} looks at. */
export interface StorageCheckOptions {
  /** The topics to check, with their partition counts. */
  topics: { name: string; partitions: number }[];
  /**
   * True when every topic is checked: data of topics not in `topics` (whose
   * settings are gone) is then a leftover.
   */
  wholeStore: boolean;
  /** Fix what can be fixed without losing an acknowledged message. */
  repair: boolean;
}

/** One problem {@link StorageAdapter.checkStorage} (or the core's checks) found. */
export interface StorageFinding {
  /** The topic, where the problem belongs to one. */
  topic?: string;
  /** The partition, where it belongs to one. */
  partition?: number;
  /** The file or key. */
  location: string;
  /** What is wrong. */
  problem: string;
  /** What a repair did about it (only with `repair`, when it could). */
  repaired?: string;
}

/** One batch of an {@link StorageAdapter.appendAtomic} call. */
export interface PartitionWrite {
  /** The topic. */
  topic: string;
  /** The partition. */
  partition: number;
  /** The records. */
  batch: RecordBatch;
}

/** A compare-and-set of a state document within a {@link TransactionCommit}. */
export interface StateWrite {
  /** The document's key. */
  key: string[];
  /** The version it must still have (null: it must not exist). */
  expected: string | null;
  /** The new value. */
  value: Uint8Array;
}

/** One append of a {@link TransactionCommit}. */
export interface TransactionWrite extends PartitionWrite {
  /**
   * For a backend with `appendDeduplicated`: drop the records whose id this
   * partition holds within `windowMs` as of `now` (and later repeats within
   * the write), in the same commit.
   */
  dedup?: { windowMs: number; now: number };
}

/** What {@link StorageAdapter.commitTransaction} wrote. */
export interface TransactionCommitted {
  /** Per write, the offset of its first record kept. */
  firsts: number[];
  /** Per write with `dedup`, the indices of the records kept (their offsets follow `firsts`). */
  kept: (number[] | undefined)[];
}

/** What {@link StorageAdapter.commitTransaction} writes, all or nothing. */
export interface TransactionCommit {
  /** The appends, in order (several to one partition follow each other). */
  writes: TransactionWrite[];
  /** The state documents to replace (each key at most once). */
  states: StateWrite[];
}

/** What {@link StorageAdapter.appendDeduplicated} stored. */
export interface DeduplicatedAppend {
  /** The offset of the first record kept (-1 when none was). */
  first: number;
  /** Indices (into the batch) of the records kept, in order; their offsets are `first`, `first + 1`, ... */
  kept: number[];
}

/** Opens an adapter for a parsed URL. */
export type AdapterFactory = (url: URL) => Promise<StorageAdapter>;
