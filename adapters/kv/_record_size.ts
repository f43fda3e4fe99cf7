/**
 * How large a record the kv backend stores: its frame, with key, id and
 * headers, must fit one Deno KV value. {@link firstTooLarge} finds the first
 * record of a batch that does not, {@link tooLargeError} names it.
 *
 * @module
 */
import { MqError } from "../../core/errors.ts";
import type { RecordBatch } from "../../core/record.ts";
import { FRAME_HEAD, FRAME_PREFIX, RECORD_HEAD } from "../_frame_codec.ts";
import { KV_VALUE_BYTES, utf8Length } from "./_limits.ts";

/** Bytes of framing around a record without key, id or headers. */
const RECORD_OVERHEAD = FRAME_PREFIX + FRAME_HEAD + RECORD_HEAD;
/** The largest payload of a record without key, id, headers, delay or TTL: 65,503 bytes. */
export const MAX_PAYLOAD_BYTES = KV_VALUE_BYTES - RECORD_OVERHEAD;

/** A record too large for one value: where, and its sizes. */
export interface TooLarge {
  index: number;
  payload: number;
  extra: number;
  limit: number;
}

/** The first record of `batch` whose frame would not fit one KV value. */
export function firstTooLarge(batch: RecordBatch): TooLarge | undefined {
  const { starts, ends, meta, count } = batch;
  for (let i = 0; i < count; i++) {
    const payload = ends[i] - starts[i];
    const m = meta?.[i];
    if (!m) {
      if (payload > MAX_PAYLOAD_BYTES) {
        return { index: i, payload, extra: 0, limit: MAX_PAYLOAD_BYTES };
      }
      continue;
    }
    // Cheap bound first: a UTF-16 unit is at most three UTF-8 bytes.
    let fixed = 0, bound = 0;
    if (m.key !== undefined) (fixed += 2), (bound += 3 * m.key.length);
    if (m.id !== undefined) (fixed += 2), (bound += 3 * m.id.length);
    const headers = m.headers && Object.keys(m.headers).length > 0
      ? JSON.stringify(m.headers)
      : undefined;
    if (headers !== undefined) (fixed += 4), (bound += 3 * headers.length);
    if (m.deliverAt !== undefined) fixed += 8;
    if (m.expiresAt !== undefined) fixed += 8;
    if (m.attempt) fixed += 2;
    const limit = MAX_PAYLOAD_BYTES - fixed;
    if (payload + bound <= limit) continue;
    const extra = (m.key !== undefined ? utf8Length(m.key) : 0) +
      (m.id !== undefined ? utf8Length(m.id) : 0) +
      (headers !== undefined ? utf8Length(headers) : 0);
    if (payload + extra > limit) return { index: i, payload, extra, limit };
  }
  return undefined;
}

/** The `MESSAGE_TOO_LARGE` error of `t`, `published` records before it stored. */
export function tooLargeError(t: TooLarge, published: number): MqError {
  const what = t.extra > 0
    ? `message is ${t.payload + t.extra} bytes with its key, id and headers (payload ${t.payload})`
    : `message is ${t.payload} bytes`;
  return new MqError(
    "MESSAGE_TOO_LARGE",
    `${what}; the kv backend stores at most ${t.limit} in one Deno KV value`,
    { details: { index: t.index, published } },
  );
}
