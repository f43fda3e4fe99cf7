/**
 * Records: what a publish hands to storage ({@link RecordBatch}) and what
 * storage hands back ({@link StoredRecord}).
 *
 * @module
 */
import { systemClock } from "./clock.ts";

/** Per-record facts besides the payload; all optional. */
export interface RecordMeta {
  /** Partitioning key: records with one key keep their order. */
  key?: string;
  /** Message id, used for deduplication. */
  id?: string;
  /** Headers, names to values. */
  headers?: Record<string, string>;
  /** Creation time in ms since the epoch (default: the batch's). */
  timestamp?: number;
  /** Not to be delivered before this time (ms since the epoch). */
  deliverAt?: number;
  /** Never to be delivered at or after this time (ms since the epoch). */
  expiresAt?: number;
  /** Attempts already made elsewhere (kept when a message is replayed or bridged). */
  attempt?: number;
}

/**
 * A batch of records to append, laid out for speed: payload `i` is
 * `data.subarray(starts[i], ends[i])`, so a chunk of stdin can be published
 * without copying each line.
 */
export interface RecordBatch {
  /** Number of records. */
  count: number;
  /** The bytes the payloads are cut from. */
  data: Uint8Array;
  /** Start of each payload in `data`. */
  starts: Uint32Array;
  /** End (exclusive) of each payload in `data`. */
  ends: Uint32Array;
  /** Per-record facts, or undefined when no record has any. */
  meta?: (RecordMeta | undefined)[];
  /** Timestamp of every record without its own, ms since the epoch. */
  timestamp: number;
}

/** A record as storage returns it. */
export interface StoredRecord extends RecordMeta {
  /** Position within its partition, from 0. */
  offset: number;
  /** Creation time, ms since the epoch. */
  timestamp: number;
  /** The payload bytes. */
  payload: Uint8Array;
}

/** Creates a batch from separate payloads (copied into one buffer), stamped `timestamp` (default: now). */
export function batchOf(
  payloads: Uint8Array[],
  meta?: (RecordMeta | undefined)[],
  timestamp: number = systemClock.now(),
): RecordBatch {
  let total = 0;
  for (const p of payloads) total += p.length;
  const data = new Uint8Array(total);
  const starts = new Uint32Array(payloads.length);
  const ends = new Uint32Array(payloads.length);
  let pos = 0;
  for (let i = 0; i < payloads.length; i++) {
    data.set(payloads[i], pos);
    starts[i] = pos;
    pos += payloads[i].length;
    ends[i] = pos;
  }
  return { count: payloads.length, data, starts, ends, meta, timestamp };
}

/** The records `indices` of `batch`, as a batch over the same bytes. */
export function pickRecords(batch: RecordBatch, indices: ArrayLike<number>): RecordBatch {
  const n = indices.length;
  const starts = new Uint32Array(n);
  const ends = new Uint32Array(n);
  const meta = batch.meta ? new Array<RecordMeta | undefined>(n) : undefined;
  for (let j = 0; j < n; j++) {
    const i = indices[j];
    starts[j] = batch.starts[i];
    ends[j] = batch.ends[i];
    if (meta) meta[j] = batch.meta![i];
  }
  return { count: n, data: batch.data, starts, ends, meta, timestamp: batch.timestamp };
}

/** The first `n` records of `batch`. */
export function headOf(batch: RecordBatch, n: number): RecordBatch {
  return sliceOf(batch, 0, n);
}

/** Records `from` to `to` (exclusive) of `batch`, over the same bytes. */
export function sliceOf(batch: RecordBatch, from: number, to: number): RecordBatch {
  if (from === 0 && to === batch.count) return batch;
  return {
    count: to - from,
    data: batch.data,
    starts: batch.starts.subarray(from, to),
    ends: batch.ends.subarray(from, to),
    meta: batch.meta?.slice(from, to),
    timestamp: batch.timestamp,
  };
}
