/**
 * The hot path of bringing Redis stream entries in: an XREADGROUP reply
 * decoded straight from the bytes read into a batch of records to store and
 * the XACK commands that acknowledge it. The payloads stay where they were
 * read (the batch's `data` is the read buffer, `_resp.ts` never writes it
 * again); an entry's id is copied as bytes into its XACK and made into one
 * string, its message id; no Buffer, view or string per field for the
 * entries most programs write (`payload` and `mq-id`, or one field). Other
 * entries go through {@link messageOf}, the mapping's general rule, so the
 * two paths give the same records (tests/redis/entries_test.ts).
 *
 * @module
 */
import type { RecordBatch, RecordMeta } from "../../core/record.ts";
import { systemClock } from "../../core/clock.ts";
import { ID, KEY, messageOf, ORIGIN, PAYLOAD } from "./_mapping.ts";
import { cursor, Encoder, intAt, type Parsed } from "./_resp.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const PAYLOAD_BYTES = enc.encode(PAYLOAD);
const ID_BYTES = enc.encode(ID);
const KEY_BYTES = enc.encode(KEY);

/** What one XREADGROUP reply brings: the records to store, and the XACKs of every entry read. */
export interface EntriesRead {
  /** The entries that still had fields, as records (ids `redis:<stream>:<entry-id>`). */
  batch: RecordBatch;
  /** XACK commands (one a stream) of every entry read, deleted ones included, as RESP bytes. */
  acks: { bytes: Uint8Array; count: number };
  /** How many entries were read (deleted ones included). */
  entries: number;
}

/** The code units of the message id being made, reused for every entry. */
const codes: number[] = [];
/** Start and end of each field of the entry being read, reused. */
let fields = new Int32Array(64);

/** The length of the bulk string at `cursor.at` (`cursor.at` moves to its bytes), -1 for nil; NaN when cut short or not one. */
function bulkHead(b: Uint8Array, end: number): number {
  if (cursor.at >= end) return NaN;
  if (b[cursor.at] !== 0x24) throw new Error(`unexpected reply from Redis to XREADGROUP`);
  cursor.at++;
  return intAt(b, end);
}

/** The length of the array at `cursor.at` (`cursor.at` moves past its head), -1 for nil; NaN when cut short. */
function arrayHead(b: Uint8Array, end: number): number {
  if (cursor.at >= end) return NaN;
  if (b[cursor.at] !== 0x2a) throw new Error(`unexpected reply from Redis to XREADGROUP`);
  cursor.at++;
  return intAt(b, end);
}

/** Whether `b[from, from + n)` are the bytes of `name`. */
function is(b: Uint8Array, from: number, n: number, name: Uint8Array): boolean {
  if (n !== name.length) return false;
  for (let i = 0; i < n; i++) if (b[from + i] !== name[i]) return false;
  return true;
}

/** XACK's start for a stream and group (`$4 XACK`, the key, the group), by stream key. */
const ackHeads = new Map<string, Uint8Array>();
function ackHead(stream: string, group: string): Uint8Array {
  const k = `${group}\n${stream}`;
  let head = ackHeads.get(k);
  if (!head) {
    const e = new Encoder(256);
    e.command(["XACK", stream, group]);
    head = e.bytes.slice(`*3\r\n`.length, e.length);
    ackHeads.set(k, head);
  }
  return head;
}

/**
 * A parser (for `ValueReader.read`) of XREADGROUP replies for `group`:
 * the entries of every stream as one {@link EntriesRead}, or `null` when
 * the reply is nil (nothing new).
 *
 * @example
 * ```ts
 * import { entriesParser } from "./_entries.ts";
 * const reply = "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$7\r\npayload\r\n$2\r\nhi\r\n";
 * const bytes = new TextEncoder().encode(reply);
 * const read = entriesParser("g")(bytes, 0, bytes.length)!.value!;
 * read.batch.meta![0]!.id; // "redis:s:1-0"
 * ```
 */
export function entriesParser(
  group: string,
): (b: Uint8Array, at: number, end: number) => Parsed<EntriesRead | null> | undefined {
  return (b, at, end) => {
    cursor.at = at;
    const streams = arrayHead(b, end);
    if (Number.isNaN(streams)) return undefined;
    if (streams < 0) return { value: null, end: cursor.at };
    const acks = new Encoder(16 * 1024);
    let starts = new Uint32Array(1024), ends = new Uint32Array(1024);
    const meta: RecordMeta[] = [];
    let count = 0, entries = 0, ackCount = 0;
    for (let s = 0; s < streams; s++) {
      if (Number.isNaN(arrayHead(b, end))) return undefined; // [key, entries]
      const kn = bulkHead(b, end);
      if (Number.isNaN(kn) || cursor.at + kn + 2 > end) return undefined;
      const stream = dec.decode(b.subarray(cursor.at, cursor.at + kn));
      cursor.at += kn + 2;
      const m = arrayHead(b, end);
      if (Number.isNaN(m)) return undefined;
      if (m <= 0) continue;
      entries += m;
      if (count + m > starts.length) {
        const grownStarts = new Uint32Array(Math.max(starts.length * 2, count + m));
        grownStarts.set(starts);
        starts = grownStarts;
        const grownEnds = new Uint32Array(grownStarts.length);
        grownEnds.set(ends);
        ends = grownEnds;
      }
      // XACK key group id...: its head now (every entry read is acknowledged).
      acks.raw(enc.encode(`*${3 + m}\r\n`));
      acks.raw(ackHead(stream, group));
      ackCount++;
      const origin = Object.freeze({ [ORIGIN]: stream });
      const prefix = `redis:${stream}:`;
      for (let i = 0; i < prefix.length; i++) codes[i] = prefix.charCodeAt(i);
      for (let e = 0; e < m; e++) {
        if (Number.isNaN(arrayHead(b, end))) return undefined; // [id, fields]
        const idAt = cursor.at;
        const idn = bulkHead(b, end);
        if (Number.isNaN(idn) || cursor.at + idn + 2 > end) return undefined;
        const idFrom = cursor.at;
        cursor.at += idn + 2;
        acks.rawRange(b, idAt, cursor.at); // the id's bulk string, as it came
        const k = arrayHead(b, end);
        if (Number.isNaN(k)) return undefined;
        if (k < 0) continue; // deleted from the stream since: acknowledged, not stored
        if (2 * k > fields.length) fields = new Int32Array(4 * k);
        for (let f = 0; f < k; f++) {
          const n = bulkHead(b, end);
          if (Number.isNaN(n) || n < 0 || cursor.at + n + 2 > end) return undefined;
          fields[2 * f] = cursor.at;
          fields[2 * f + 1] = n;
          cursor.at += n + 2;
        }
        codes.length = prefix.length + idn;
        for (let i = 0; i < idn; i++) codes[prefix.length + i] = b[idFrom + i];
        const id = String.fromCharCode.apply(null, codes);
        // Field f is b[fields[2f], fields[2f] + fields[2f + 1]).
        if (
          (k === 2 && !is(b, fields[0], fields[1], KEY_BYTES)) ||
          (k === 4 && is(b, fields[0], fields[1], PAYLOAD_BYTES) &&
            is(b, fields[4], fields[5], ID_BYTES))
        ) {
          starts[count] = fields[2];
          ends[count] = fields[2] + fields[3];
          meta[count++] = { id, headers: origin };
          continue;
        }
        // Any other entry: the mapping's general rule.
        const views: Uint8Array[] = new Array(k);
        for (let f = 0; f < k; f++) {
          views[f] = b.subarray(fields[2 * f], fields[2 * f] + fields[2 * f + 1]);
        }
        const msg = messageOf(stream, dec.decode(b.subarray(idFrom, idFrom + idn)), views, origin);
        const payload = msg.payload as Uint8Array;
        if (payload.length === 0) starts[count] = ends[count] = 0;
        else {
          starts[count] = payload.byteOffset - b.byteOffset;
          ends[count] = starts[count] + payload.length;
        }
        meta[count++] = { id, key: msg.key, headers: msg.headers };
      }
    }
    return {
      value: {
        batch: {
          count,
          data: b,
          starts: starts.subarray(0, count),
          ends: ends.subarray(0, count),
          meta,
          timestamp: systemClock.now(),
        },
        acks: { bytes: acks.bytes.subarray(0, acks.length), count: ackCount },
        entries,
      },
      end: cursor.at,
    };
  };
}
