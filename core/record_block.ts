/**
 * Record blocks: many records of one partition as columns over one byte
 * buffer, with no object per record. A plain read (no group) hands these out
 * through {@link Subscription.blocks}, so that printing a million payloads is
 * a copy of bytes, not a million objects.
 *
 * @module
 */
import type { RecordMeta, StoredRecord } from "./record.ts";
import { ReceivedMessage } from "./message.ts";

/**
 * Records of one partition as columns: record `i` has its payload at
 * `data.subarray(starts[i], ends[i])`, its offset at `offsets[i]`, its
 * timestamp at `timestamps[i]` and its key, id, headers, delay and TTL (when
 * it has any) at `meta[i]`. Only the first `count` entries are valid.
 *
 * @example
 * ```ts
 * import { blockOf } from "./record_block.ts";
 * const block = blockOf([{ offset: 7, timestamp: 0, payload: new Uint8Array([104, 105]) }]);
 * block.data.subarray(block.starts[0], block.ends[0]); // the bytes "hi"
 * ```
 */
export interface RecordBlock {
  /** Number of valid records. */
  count: number;
  /** The bytes the payloads are views of. */
  data: Uint8Array;
  /** Start of each payload in `data`. */
  starts: Uint32Array;
  /** End (exclusive) of each payload in `data`. */
  ends: Uint32Array;
  /** Offset of each record. */
  offsets: Float64Array;
  /** Timestamp of each record, ms since the epoch. */
  timestamps: Float64Array;
  /** Per-record facts, or undefined when no record of the block has any. */
  meta: (RecordMeta | undefined)[] | undefined;
}

/** A block read from a topic: the records and where they come from. */
export interface TopicBlock extends RecordBlock {
  /** The topic. */
  topic: string;
  /** The partition. */
  partition: number;
}

/**
 * A block holding copies of `records` (for backends whose readers return
 * record objects).
 *
 * @example
 * ```ts
 * import { blockOf } from "./record_block.ts";
 * blockOf([]).count; // 0
 * ```
 */
export function blockOf(records: readonly StoredRecord[]): RecordBlock {
  const n = records.length;
  let total = 0;
  for (let i = 0; i < n; i++) total += records[i].payload.length;
  const data = new Uint8Array(total);
  const starts = new Uint32Array(n), ends = new Uint32Array(n);
  const offsets = new Float64Array(n), timestamps = new Float64Array(n);
  let meta: (RecordMeta | undefined)[] | undefined;
  let pos = 0;
  for (let i = 0; i < n; i++) {
    const r = records[i];
    data.set(r.payload, pos);
    starts[i] = pos;
    pos += r.payload.length;
    ends[i] = pos;
    offsets[i] = r.offset;
    timestamps[i] = r.timestamp;
    const m = metaOf(r);
    if (m) (meta ??= new Array(n))[i] = m;
  }
  return { count: n, data, starts, ends, offsets, timestamps, meta };
}

function metaOf(r: StoredRecord): RecordMeta | undefined {
  if (
    r.key === undefined && r.id === undefined && r.headers === undefined &&
    r.deliverAt === undefined && r.expiresAt === undefined && r.attempt === undefined
  ) return undefined;
  const m: RecordMeta = {};
  if (r.key !== undefined) m.key = r.key;
  if (r.id !== undefined) m.id = r.id;
  if (r.headers !== undefined) m.headers = r.headers;
  if (r.deliverAt !== undefined) m.deliverAt = r.deliverAt;
  if (r.expiresAt !== undefined) m.expiresAt = r.expiresAt;
  if (r.attempt !== undefined) m.attempt = r.attempt;
  return m;
}

/**
 * Record `i` of `block` as a stored record (its payload a view).
 *
 * @example
 * ```ts
 * import { blockOf, recordAt } from "./record_block.ts";
 * const block = blockOf([{ offset: 3, timestamp: 0, payload: new Uint8Array([1]), key: "k" }]);
 * recordAt(block, 0).key; // "k"
 * ```
 */
export function recordAt(block: RecordBlock, i: number): StoredRecord {
  const m = block.meta?.[i];
  const payload = block.data.subarray(block.starts[i], block.ends[i]);
  const r: StoredRecord = { offset: block.offsets[i], timestamp: block.timestamps[i], payload };
  if (m) {
    if (m.key !== undefined) r.key = m.key;
    if (m.id !== undefined) r.id = m.id;
    if (m.headers !== undefined) r.headers = m.headers;
    if (m.deliverAt !== undefined) r.deliverAt = m.deliverAt;
    if (m.expiresAt !== undefined) r.expiresAt = m.expiresAt;
    if (m.attempt !== undefined) r.attempt = m.attempt;
  }
  return r;
}

/**
 * The records of a topic block as messages (attempt 1: a plain read).
 *
 * @example
 * ```ts
 * import { blockOf, messagesOf } from "./record_block.ts";
 * const block = { ...blockOf([{ offset: 0, timestamp: 0, payload: new Uint8Array([104]) }]), topic: "t", partition: 0 };
 * messagesOf(block)[0].text(); // "h"
 * ```
 */
export function messagesOf(block: TopicBlock): ReceivedMessage[] {
  const out = new Array<ReceivedMessage>(block.count);
  for (let i = 0; i < block.count; i++) {
    out[i] = new ReceivedMessage(block.topic, block.partition, recordAt(block, i), 1);
  }
  return out;
}

/**
 * Records `from` to `to` (exclusive) of `block`, as a block over the same bytes and columns.
 *
 * @example
 * ```ts
 * import { blockOf, sliceBlock } from "./record_block.ts";
 * const two = blockOf([0, 1].map((offset) => ({ offset, timestamp: 0, payload: new Uint8Array(0) })));
 * sliceBlock(two, 1, 2).offsets[0]; // 1
 * ```
 */
export function sliceBlock<B extends RecordBlock>(block: B, from: number, to: number): B {
  return {
    ...block,
    count: to - from,
    starts: block.starts.subarray(from, to),
    ends: block.ends.subarray(from, to),
    offsets: block.offsets.subarray(from, to),
    timestamps: block.timestamps.subarray(from, to),
    meta: block.meta?.slice(from, to),
  };
}

/**
 * Keeps the records for which `keep(i)` is true, in order, moving them to
 * the front of the columns; returns the new count.
 *
 * @example
 * ```ts
 * import { blockOf, compactBlock } from "./record_block.ts";
 * const block = blockOf([0, 1, 2].map((offset) => ({ offset, timestamp: 0, payload: new Uint8Array(0) })));
 * compactBlock(block, (i) => i !== 1); // 2: offsets 0 and 2 are left
 * ```
 */
export function compactBlock(block: RecordBlock, keep: (i: number) => boolean): number {
  const { starts, ends, offsets, timestamps, meta } = block;
  let j = 0;
  for (let i = 0; i < block.count; i++) {
    if (!keep(i)) continue;
    if (i !== j) {
      starts[j] = starts[i];
      ends[j] = ends[i];
      offsets[j] = offsets[i];
      timestamps[j] = timestamps[i];
      if (meta) meta[j] = meta[i];
    }
    j++;
  }
  block.count = j;
  return j;
}
