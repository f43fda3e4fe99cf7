/**
 * The checks of records before they are written: the topic's size limit (or
 * the backend's, when lower), well-formed metadata, and the backend's own
 * refusals; and the cutting of a batch into runs the backend takes at once.
 *
 * @module
 */
import type { StorageAdapter } from "./adapter.ts";
import { headOf, type RecordBatch, sliceOf } from "./record.ts";
import type { TopicConfig } from "./topic_config.ts";
import type { MessageLimit } from "./types.ts";

/** Limits on per-record metadata. */
const MAX_KEY_CHARS = 1024, MAX_ID_CHARS = 1024, MAX_HEADER_BYTES = 64 * 1024;

const enc = new TextEncoder();

/**
 * `batch` cut into runs of at most `maxBytes` (at least one record each),
 * counting each record as stored: its payload, its key, id and headers, and
 * some bytes of framing.
 */
export function splitBySize(batch: RecordBatch, maxBytes: number | undefined): RecordBatch[] {
  if (maxBytes === undefined || batch.count === 0) return [batch];
  const { starts, ends, meta } = batch;
  const sizeOf = (i: number) => {
    const m = meta?.[i];
    let n = ends[i] - starts[i] + RECORD_FRAMING_BYTES;
    if (m) {
      n += (m.key?.length ?? 0) * 3 + (m.id?.length ?? 0) * 3;
      if (m.headers) n += JSON.stringify(m.headers).length * 3;
    }
    return n;
  };
  let total = 0;
  for (let i = 0; i < batch.count && total <= maxBytes; i++) total += sizeOf(i);
  if (total <= maxBytes) return [batch];
  const out: RecordBatch[] = [];
  let from = 0, bytes = 0;
  for (let i = 0; i < batch.count; i++) {
    const size = sizeOf(i);
    if (i > from && bytes + size > maxBytes) {
      out.push(sliceOf(batch, from, i));
      from = i;
      bytes = 0;
    }
    bytes += size;
  }
  out.push(sliceOf(batch, from, batch.count));
  return out;
}

/** What a stored record costs besides its payload and metadata, at most (length, time, flags, times). */
const RECORD_FRAMING_BYTES = 40;

/**
 * The first record of `batch` the topic or the backend refuses, and why: the
 * topic's size limit (or the backend's, when lower), malformed metadata, and
 * whatever the backend's own `checkRecords` refuses.
 */
export function firstInvalid(
  batch: RecordBatch,
  config: TopicConfig,
  topic: string,
  adapter: StorageAdapter,
): { index: number; code: "MESSAGE_TOO_LARGE" | "INVALID_ARGUMENT"; message: string } | undefined {
  const own = firstInvalidHere(batch, config, topic, adapter.capabilities.maxMessageBytes);
  const theirs = adapter.checkRecords?.(own ? headOf(batch, own.index) : batch);
  return theirs ? { ...theirs, code: "MESSAGE_TOO_LARGE" } : own;
}

/** The largest payload of `topic` here: its own limit, or the backend's where lower, and why. */
export function limitOf(
  config: TopicConfig,
  topic: string,
  backendMax: number | undefined,
): MessageLimit {
  const bytes = Math.min(config.maxMessageBytes, backendMax ?? Infinity);
  return {
    bytes,
    why: bytes < config.maxMessageBytes
      ? `this backend stores at most ${bytes}`
      : `topic "${topic}" allows at most ${bytes} (--max-message-bytes)`,
  };
}

function firstInvalidHere(
  batch: RecordBatch,
  config: TopicConfig,
  topic: string,
  backendMax?: number,
): { index: number; code: "MESSAGE_TOO_LARGE" | "INVALID_ARGUMENT"; message: string } | undefined {
  const { bytes: max, why } = limitOf(config, topic, backendMax);
  const { starts, ends, meta } = batch;
  for (let i = 0; i < batch.count; i++) {
    const size = ends[i] - starts[i];
    if (size > max) {
      return { index: i, code: "MESSAGE_TOO_LARGE", message: `message is ${size} bytes; ${why}` };
    }
    const m = meta?.[i];
    if (!m) continue;
    let problem: string | undefined;
    if (m.key !== undefined && (typeof m.key !== "string" || m.key.length > MAX_KEY_CHARS)) {
      problem = `key must be a string of at most ${MAX_KEY_CHARS} characters`;
    } else if (
      m.id !== undefined &&
      (typeof m.id !== "string" || m.id.length === 0 || m.id.length > MAX_ID_CHARS)
    ) {
      problem = `id must be a string of 1 to ${MAX_ID_CHARS} characters`;
    } else if (m.headers !== undefined) {
      if (typeof m.headers !== "object" || m.headers === null || Array.isArray(m.headers)) {
        problem = "headers must be an object of names to string values";
      } else {
        // At most 6 bytes of JSON a UTF-16 unit (an escape), 6 more a header (quotes, colon, comma).
        let bound = 2;
        for (const k in m.headers) {
          if (!Object.hasOwn(m.headers, k)) continue;
          const v = (m.headers as Record<string, unknown>)[k];
          if (typeof v !== "string" || k.length === 0) {
            problem = `header ${JSON.stringify(k)} must have a name and a string value`;
            break;
          }
          bound += 6 * (k.length + v.length) + 6;
        }
        // The headers as JSON are measured only when they may be too long (not per message).
        if (
          !problem && bound > MAX_HEADER_BYTES &&
          enc.encode(JSON.stringify(m.headers)).length > MAX_HEADER_BYTES
        ) {
          problem = `headers must not exceed ${MAX_HEADER_BYTES} bytes`;
        }
      }
    }
    if (problem) return { index: i, code: "INVALID_ARGUMENT", message: problem };
  }
  return undefined;
}
