/**
 * What `mq pub` does to the records it read, from arguments or stdin: keys,
 * envelopes, empties and oversize lines (`prepare`), and a publish that
 * names the place of a refused record (`publishOrExplain`).
 *
 * @module
 */
import { MqError } from "../../core/errors.ts";
import {
  batchOf,
  type MqErrorCode,
  pickRecords,
  type RecordBatch,
  type RecordMeta,
} from "../../connect.ts";
import { note } from "../runtime.ts";
import { EXIT_USAGE, exitCodeOf } from "../exit_codes.ts";
import type { fromEnvelope } from "../envelope.ts";

/** An envelope line decoded (see `cli/envelope.ts`). */
export type Envelope = ReturnType<typeof fromEnvelope>;

/** The options of `mq pub`, as parsed. */
export interface PubOptions {
  null?: boolean;
  raw?: boolean;
  key?: string;
  keyDelimiter?: string;
  header: string[];
  id?: string;
  partition?: number;
  jsonLines?: boolean;
  skipInvalid?: boolean;
  skipEmpty?: boolean;
  json?: boolean;
  delay?: string;
  ttl?: string;
  exchange?: string;
  routingKey: string;
  allowUnroutable?: boolean;
  atomic?: boolean;
}

/** What a run published, dropped as duplicates or unroutable, and skipped as invalid. */
export interface Counter {
  n: number;
  duplicates: number;
  skipped: number;
  unroutable: number;
}

/** The size limit lines are checked against, and how to say it. */
export interface LineLimit {
  /** Why, in the words of the core's own check. */
  why: string;
  /** The longest line read (an envelope or "key SEP payload" line is longer than its message). */
  lineBytes: number;
  /** A line is the message itself (no -K, no --json-lines). */
  raw: boolean;
}

/**
 * Publishes a batch; on a refused record, publishes those before it and throws
 * an error naming its place (or, with --skip-invalid, reports it and goes on).
 */
export async function publishOrExplain(
  send: Send,
  batch: RecordBatch,
  opts: PubOptions,
  place: (index: number) => string,
  counter: Counter,
): Promise<void> {
  let rest = batch;
  let offset = 0;
  for (;;) {
    try {
      const r = await send(rest);
      counter.n += r.count;
      counter.duplicates += r.duplicates;
      return;
    } catch (e) {
      if (!MqError.is(e) || e.details.index === undefined) {
        // A failed write (a full disk, a lost broker): what was stored before
        // it is a clean prefix of the input; say how long.
        if (!MqError.is(e) || exitCodeOf(e.code) === EXIT_USAGE) throw e;
        counter.n += e.details.published ?? 0;
        const n = counter.n;
        throw new MqError(
          e.code,
          `${e.message}; published ${n} message${n === 1 ? "" : "s"} before the failure`,
          {
            cause: e,
            details: { published: counter.n },
          },
        );
      }
      const index = e.details.index;
      counter.n += e.details.published ?? 0;
      if (!opts.skipInvalid) {
        throw new MqError(
          e.code,
          `${place(offset + index)}: ${e.message}; published ${counter.n} before it`,
        );
      }
      note(`mq: warning: ${place(offset + index)}: ${e.message} (skipped)`);
      counter.skipped++;
      const keep = Array.from({ length: rest.count - index - 1 }, (_, j) => index + 1 + j);
      rest = pickRecords(rest, keep);
      offset += index + 1;
      if (rest.count === 0) return;
    }
  }
}

/** Publishes a batch; resolves to how many were stored and dropped as duplicates. */
export type Send = (b: RecordBatch) => Promise<{ count: number; duplicates: number }>;

/**
 * Turns raw lines (or arguments) into the records to publish: keys,
 * envelopes, empties, oversize lines. `lines` maps records back to line
 * numbers when some were dropped; `error` names the first bad line.
 */
export function prepare(
  raw: RecordBatch & { oversize: number[]; oversizeBytes?: number[] },
  opts: PubOptions,
  common: RecordMeta | undefined,
  lineBase: number,
  limit: LineLimit,
  unit: "line" | "argument" = "line",
  envelope?: (line: string) => Envelope,
): {
  batch: RecordBatch;
  lines: number[] | undefined;
  skipped: number;
  error?: string;
  code?: MqErrorCode;
} {
  const needsWork = opts.keyDelimiter !== undefined || opts.jsonLines || opts.skipEmpty ||
    raw.oversize.length > 0 || unit === "argument";
  if (!needsWork) {
    if (common) raw.meta = new Array(raw.count).fill(common);
    return { batch: raw, lines: undefined, skipped: 0 };
  }
  const enc = new TextEncoder(), dec = new TextDecoder();
  const sep = opts.keyDelimiter !== undefined ? enc.encode(opts.keyDelimiter) : undefined;
  const payloads: Uint8Array[] = [];
  const meta: (RecordMeta | undefined)[] = [];
  const lines: number[] = [];
  const oversize = new Map(raw.oversize.map((i, k) => [i, raw.oversizeBytes?.[k] ?? -1]));
  let skipped = 0;
  for (let i = 0; i < raw.count; i++) {
    let bytes = raw.data.subarray(raw.starts[i], raw.ends[i]);
    const line = lineBase + i + 1;
    if (opts.skipEmpty && bytes.length === 0 && !oversize.has(i)) continue;
    let m: RecordMeta | undefined = common ? { ...common } : undefined;
    try {
      if (oversize.has(i)) {
        const bytes = oversize.get(i)!;
        const size = bytes < 0 ? `over ${limit.lineBytes}` : `${bytes}`;
        throw new MqError(
          "MESSAGE_TOO_LARGE",
          limit.raw
            ? `message is ${size} bytes; ${limit.why}`
            : `line is ${size} bytes, too long for a message: ${limit.why}`,
        );
      }
      if (opts.jsonLines) {
        if (!envelope) throw new Error("prepare: --json-lines needs the envelope decoder");
        const env = envelope(dec.decode(bytes));
        bytes = env.payload;
        if (env.meta) m = { ...m, ...env.meta };
      } else if (sep) {
        const at = indexOfBytes(bytes, sep);
        if (at < 0) {
          throw new MqError(
            "MALFORMED_MESSAGE",
            `no key delimiter ${JSON.stringify(opts.keyDelimiter)} in the line`,
          );
        }
        m = { ...m, key: dec.decode(bytes.subarray(0, at)) };
        bytes = bytes.subarray(at + sep.length);
      }
    } catch (e) {
      if (!MqError.is(e)) throw e;
      if (opts.skipInvalid) {
        note(`mq: warning: ${unit} ${line}: ${e.message} (skipped)`);
        skipped++;
        continue;
      }
      const batch = batchOf(payloads, meta, raw.timestamp);
      return { batch, lines, skipped, error: `${unit} ${line}: ${e.message}`, code: e.code };
    }
    payloads.push(bytes);
    meta.push(m);
    lines.push(line);
  }
  return { batch: batchOf(payloads, meta, raw.timestamp), lines, skipped };
}

function indexOfBytes(hay: Uint8Array, needle: Uint8Array): number {
  if (needle.length === 1) return hay.indexOf(needle[0]);
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
