/**
 * The stored format of byte-oriented backends (fs segments, KV values): records in CRC-checked frames (as
 * Kafka's record batches), at most ~256 KiB each unless one record is larger.
 *
 * Frame, little-endian: `u32 bodyLength, u32 crc32(body), body`, where body is
 * `u32 baseOffsetLow, u32 baseOffsetHigh, u32 count`, then `count` records:
 * `u32 recordLength, f64 timestampMs, u8 flags`, then as the flags say
 * `u16+key`, `u16+id`, `u32+headers JSON`, `f64 deliverAt`, `f64 expiresAt`,
 * `u16 attempt`, and the payload as the rest. The CRC (IEEE, see `_crc32.ts`)
 * covers the whole body, so a frame is valid or not as a whole.
 */
import { crc32 } from "./_crc32.ts";
import type { RecordBatch, RecordMeta, StoredRecord } from "../core/record.ts";
import type { RecordBlock } from "../core/record_block.ts";

/** Bytes of the `length` and `crc` fields before a frame body. */
export const FRAME_PREFIX = 8;
/** Bytes of a frame body's head: base offset and count. */
export const FRAME_HEAD = 12;
/** Bytes of a record before its optional fields: length, timestamp, flags. */
export const RECORD_HEAD = 13;
/** The largest frame body a reader accepts as plausible. */
export const MAX_FRAME_BODY = 64 * 1024 * 1024 + 1024 * 1024;
/** Frames are closed once their body reaches this size. */
export const FRAME_TARGET = 256 * 1024;

const F_KEY = 1, F_ID = 2, F_HEADERS = 4, F_DELIVER = 8, F_EXPIRES = 16, F_ATTEMPT = 32;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** A byte buffer that grows, reused across batches. */
export class ByteSink {
  /** The bytes; valid up to `length`. */
  bytes: Uint8Array;
  /** A view over `bytes`. */
  view: DataView;
  /** Bytes written. */
  length = 0;

  constructor(initial = 1 << 20) {
    this.bytes = new Uint8Array(initial);
    this.view = new DataView(this.bytes.buffer);
  }

  /** Makes room for `n` more bytes. */
  reserve(n: number): void {
    if (this.length + n <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.bytes.subarray(0, this.length));
    this.bytes = next;
    this.view = new DataView(next.buffer);
  }
}

/** Checksum of `bytes[start, end)`. */
function checksum(bytes: Uint8Array, start: number, end: number): number {
  return crc32(bytes, start, end);
}

/**
 * Appends the records of `batch`, with offsets from `firstOffset`, as frames
 * to `sink`; returns where each frame ends. A frame's body (its records with
 * their keys, ids and headers) stays within `target` bytes unless its one
 * record is larger.
 */
export function encodeFrames(
  batch: RecordBatch,
  firstOffset: number,
  sink: ByteSink,
  target: number = FRAME_TARGET,
): number[] {
  const ends: number[] = [];
  const { data, starts, ends: ends_, meta, count, timestamp } = batch;
  // Records that share one headers object (a connector's origin header)
  // share its JSON: one stringify a batch, not one a record.
  lastHeaders = undefined;
  lastJson = undefined;
  let payloadBytes = 0;
  for (let i = 0; i < count; i++) payloadBytes += ends_[i] - starts[i];
  const frames = Math.ceil(payloadBytes / Math.min(target, FRAME_TARGET)) + count / 64 + 1;
  sink.reserve(payloadBytes + count * RECORD_HEAD + frames * (FRAME_PREFIX + FRAME_HEAD));
  const ts = new Uint8Array(8);
  new DataView(ts.buffer).setFloat64(0, timestamp, true);
  let i = 0;
  // A record with its key, id and headers that overflowed a frame: it was
  // moved to open the next one and ends here (-1: none).
  let carried = -1;
  while (i < count) {
    const frameAt = sink.length;
    const bodyAt = frameAt + FRAME_PREFIX;
    let p = bodyAt + FRAME_HEAD;
    const first = i;
    if (carried >= 0) (p = carried), (carried = -1), i++;
    while (
      i < count && (i === first || p - bodyAt + RECORD_HEAD + (ends_[i] - starts[i]) <= target)
    ) {
      const m = meta?.[i];
      const s = starts[i], e = ends_[i];
      if (m) {
        sink.length = p;
        const q = encodeWithMeta(sink, m, data, s, e, timestamp);
        if (i > first && q - bodyAt > target) {
          // Over the target with its key, id and headers: it opens the next frame.
          sink.length = q;
          sink.reserve(FRAME_PREFIX + FRAME_HEAD);
          sink.bytes.copyWithin(p + FRAME_PREFIX + FRAME_HEAD, p, q);
          carried = q + FRAME_PREFIX + FRAME_HEAD;
          break;
        }
        p = q;
      } else {
        if (p + RECORD_HEAD + (e - s) + FRAME_PREFIX + FRAME_HEAD > sink.bytes.length) {
          sink.length = p;
          sink.reserve(RECORD_HEAD + (e - s) + FRAME_PREFIX + FRAME_HEAD);
        }
        const out = sink.bytes;
        const recLen = RECORD_HEAD - 4 + (e - s);
        out[p] = recLen,
          out[p + 1] = recLen >>> 8,
          out[p + 2] = recLen >>> 16,
          out[p + 3] = recLen >>> 24;
        out[p + 4] = ts[0], out[p + 5] = ts[1], out[p + 6] = ts[2], out[p + 7] = ts[3];
        out[p + 8] = ts[4], out[p + 9] = ts[5], out[p + 10] = ts[6], out[p + 11] = ts[7];
        out[p + 12] = 0;
        p += RECORD_HEAD;
        if (e - s < 64) { for (let j = s; j < e; j++) out[p++] = data[j]; }
        else (out.set(data.subarray(s, e), p), (p += e - s));
      }
      i++;
    }
    const dv = sink.view;
    const base = firstOffset + first;
    dv.setUint32(frameAt, p - bodyAt, true);
    dv.setUint32(bodyAt, base >>> 0, true);
    dv.setUint32(bodyAt + 4, (base / 0x100000000) >>> 0, true);
    dv.setUint32(bodyAt + 8, i - first, true);
    dv.setUint32(frameAt + 4, checksum(sink.bytes, bodyAt, p), true);
    sink.length = p;
    ends.push(p);
  }
  return ends;
}

/** The headers object {@link encodeWithMeta} stringified last in this batch, and its JSON. */
let lastHeaders: Record<string, string> | undefined;
let lastJson: string | undefined;

/** The headers of `m` as JSON (undefined when none), the last one's again when it is the same object. */
function headersJson(m: RecordMeta): string | undefined {
  const h = m.headers;
  if (!h) return undefined;
  if (h === lastHeaders) return lastJson;
  lastHeaders = h;
  return (lastJson = hasKeys(h) ? JSON.stringify(h) : undefined);
}

function encodeWithMeta(
  sink: ByteSink,
  m: RecordMeta,
  data: Uint8Array,
  s: number,
  e: number,
  timestamp: number,
): number {
  let flags = 0, bound = 0;
  const headers = headersJson(m);
  // Room for the worst case (3 bytes a UTF-16 unit); the strings are written
  // in place, so no encoded copy is made of them.
  if (m.key !== undefined) (flags |= F_KEY), (bound += 2 + 3 * m.key.length);
  if (m.id !== undefined) (flags |= F_ID), (bound += 2 + 3 * m.id.length);
  if (headers !== undefined) (flags |= F_HEADERS), (bound += 4 + 3 * headers.length);
  if (m.deliverAt !== undefined) (flags |= F_DELIVER), (bound += 8);
  if (m.expiresAt !== undefined) (flags |= F_EXPIRES), (bound += 8);
  if (m.attempt) (flags |= F_ATTEMPT), (bound += 2);
  sink.reserve(RECORD_HEAD + bound + (e - s));
  const out = sink.bytes, dv = sink.view;
  const at = sink.length;
  dv.setFloat64(at + 4, m.timestamp ?? timestamp, true);
  out[at + 12] = flags;
  let p = at + RECORD_HEAD;
  if (m.key !== undefined) {
    const q = utf8Into(m.key, out, p + 2);
    dv.setUint16(p, q - p - 2, true);
    p = q;
  }
  if (m.id !== undefined) {
    const q = utf8Into(m.id, out, p + 2);
    dv.setUint16(p, q - p - 2, true);
    p = q;
  }
  if (headers !== undefined) {
    const q = utf8Into(headers, out, p + 4);
    dv.setUint32(p, q - p - 4, true);
    p = q;
  }
  if (flags & F_DELIVER) (dv.setFloat64(p, m.deliverAt!, true), (p += 8));
  if (flags & F_EXPIRES) (dv.setFloat64(p, m.expiresAt!, true), (p += 8));
  if (flags & F_ATTEMPT) (dv.setUint16(p, Math.min(m.attempt!, 65535), true), (p += 2));
  if (e - s < 64) { for (let j = s; j < e; j++) out[p++] = data[j]; }
  else (out.set(data.subarray(s, e), p), (p += e - s));
  dv.setUint32(at, p - at - 4, true);
  return p;
}

/** Whether `o` has an own enumerable key (no array made, as `Object.keys` would). */
function hasKeys(o: Record<string, string>): boolean {
  for (const _ in o) return true;
  return false;
}

/**
 * Writes `text` as UTF-8 at `out[p]` (room for 3 bytes a UTF-16 unit is
 * there); returns where it ends. ASCII, what ids, keys and header names
 * mostly are, is copied by a loop: `TextEncoder` costs about a microsecond a
 * call for a short string, more than the rest of the record.
 */
function utf8Into(text: string, out: Uint8Array, p: number): number {
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7f) return p + enc.encodeInto(text.slice(i), out.subarray(p)).written!;
    out[p++] = c;
  }
  return p;
}

/**
 * Checks the frame at `pos` in `buf[0, end)`: its total length when whole and
 * its checksum matches, 0 when the bytes end before it does, -1 when corrupt.
 */
export function checkFrame(buf: Uint8Array, dv: DataView, pos: number, end: number): number {
  if (end - pos < FRAME_PREFIX) return 0;
  const bodyLen = dv.getUint32(pos, true);
  if (bodyLen < FRAME_HEAD + RECORD_HEAD || bodyLen > MAX_FRAME_BODY) return -1;
  const total = FRAME_PREFIX + bodyLen;
  if (end - pos < total) return 0;
  if (checksum(buf, pos + FRAME_PREFIX, pos + total) !== dv.getUint32(pos + 4, true)) return -1;
  return total;
}

/** The base offset of the frame at `pos`. */
export function frameBase(dv: DataView, pos: number): number {
  return dv.getUint32(pos + 8, true) + dv.getUint32(pos + 12, true) * 0x100000000;
}

/** The number of records of the frame at `pos`. */
export function frameCount(dv: DataView, pos: number): number {
  return dv.getUint32(pos + 16, true);
}

/**
 * Decodes the records of a checked frame whose offsets are at least
 * `minOffset` into `out`. Payloads are views, not copies. Returns false if the
 * frame's records do not add up (then nothing is added).
 */
export function decodeFrame(
  buf: Uint8Array,
  dv: DataView,
  pos: number,
  total: number,
  minOffset: number,
  out: StoredRecord[],
): boolean {
  const end = pos + total;
  const base = frameBase(dv, pos);
  const count = frameCount(dv, pos);
  const mark = out.length;
  let p = pos + FRAME_PREFIX + FRAME_HEAD;
  for (let i = 0; i < count; i++) {
    if (p + RECORD_HEAD > end) return (out.length = mark), false;
    const recEnd = p + 4 + dv.getUint32(p, true);
    if (recEnd > end || recEnd < p + RECORD_HEAD) return (out.length = mark), false;
    const offset = base + i;
    if (offset >= minOffset) {
      const timestamp = dv.getFloat64(p + 4, true);
      const flags = buf[p + 12];
      if (flags === 0) {
        out.push({ offset, timestamp, payload: buf.subarray(p + RECORD_HEAD, recEnd) });
      } else out.push(decodeMeta(buf, dv, p + RECORD_HEAD, recEnd, flags, offset, timestamp));
    }
    p = recEnd;
  }
  if (p !== end) return (out.length = mark), false;
  return true;
}

function decodeMeta(
  buf: Uint8Array,
  dv: DataView,
  p: number,
  end: number,
  flags: number,
  offset: number,
  timestamp: number,
): StoredRecord {
  const r: StoredRecord = { offset, timestamp, payload: buf };
  if (flags & F_KEY) {
    const n = dv.getUint16(p, true);
    r.key = dec.decode(buf.subarray(p + 2, p + 2 + n));
    p += 2 + n;
  }
  if (flags & F_ID) {
    const n = dv.getUint16(p, true);
    r.id = dec.decode(buf.subarray(p + 2, p + 2 + n));
    p += 2 + n;
  }
  if (flags & F_HEADERS) {
    const n = dv.getUint32(p, true);
    try {
      r.headers = JSON.parse(dec.decode(buf.subarray(p + 4, p + 4 + n)));
    } catch {
      r.headers = {};
    }
    p += 4 + n;
  }
  if (flags & F_DELIVER) (r.deliverAt = dv.getFloat64(p, true)), (p += 8);
  if (flags & F_EXPIRES) (r.expiresAt = dv.getFloat64(p, true)), (p += 8);
  if (flags & F_ATTEMPT) (r.attempt = dv.getUint16(p, true)), (p += 2);
  r.payload = buf.subarray(Math.min(p, end), end);
  return r;
}

/**
 * Decodes up to `room` records of a checked frame whose offsets are at least
 * `minOffset` into the columns of `block` (from `block.count` on; its arrays
 * must have room); payloads stay in `buf`, which must be `block.data`.
 * Returns how many were added, or -1 if the frame's records do not add up
 * (then nothing is added).
 *
 * @example
 * ```ts ignore
 * const total = checkFrame(buf, dv, pos, buf.length);
 * if (total > 0) decodeFrameColumns(buf, dv, pos, total, next, block, room);
 * ```
 */
export function decodeFrameColumns(
  buf: Uint8Array,
  dv: DataView,
  pos: number,
  total: number,
  minOffset: number,
  block: RecordBlock,
  room: number,
): number {
  const end = pos + total;
  const base = frameBase(dv, pos);
  const count = frameCount(dv, pos);
  const mark = block.count;
  const { starts, ends, offsets, timestamps } = block;
  let n = mark;
  let p = pos + FRAME_PREFIX + FRAME_HEAD;
  const first = Math.max(0, minOffset - base);
  const last = Math.min(count, first + room);
  for (let i = 0; i < count; i++) {
    if (p + RECORD_HEAD > end) return (block.count = mark), -1;
    const recEnd = p + 4 + dv.getUint32(p, true);
    if (recEnd > end || recEnd < p + RECORD_HEAD) return (block.count = mark), -1;
    if (i >= first && i < last) {
      const flags = buf[p + 12];
      offsets[n] = base + i;
      const timestamp = timestamps[n] = dv.getFloat64(p + 4, true);
      if (flags === 0) {
        starts[n] = p + RECORD_HEAD;
        if (block.meta) block.meta[n] = undefined;
      } else {
        const r = decodeMeta(buf, dv, p + RECORD_HEAD, recEnd, flags, base + i, timestamp);
        starts[n] = r.payload.byteOffset - buf.byteOffset;
        (block.meta ??= new Array(starts.length))[n] = r;
      }
      ends[n] = recEnd;
      n++;
    }
    // Records past what fits are still walked: a frame is valid as a whole or not.
    p = recEnd;
  }
  if (p !== end) return (block.count = mark), -1;
  block.count = n;
  return n - mark;
}
