/**
 * How an mq message maps to a Redis stream entry and back (the table is in
 * `bridge.ts`).
 *
 * @module
 */
import type { ReceivedMessage } from "../../core/message.ts";
import type { OutgoingMessage } from "../../core/client.ts";
import { headersFromJson } from "../_bridge_in.ts";
import { Encoder } from "./_resp.ts";

/** The entry field of the payload. */
export const PAYLOAD = "payload";
/** The entry field of the key. */
export const KEY = "mq-key";
/** The entry field of the message id. */
export const ID = "mq-id";
/** The entry field of headers whose names are taken by the fields above (JSON). */
export const HEADERS = "mq-headers";
/** The header that names the stream a message came from. */
export const ORIGIN = "redis-stream";

const RESERVED = new Set([PAYLOAD, KEY, ID, HEADERS]);
const dec = new TextDecoder();

/**
 * The arguments of the XADD that stores `m` (read from `topic`) in `stream`:
 * `payload` the bytes as they are (not copied), `mq-key` the key, `mq-id` the id (the one
 * it was published with, else `<topic>:<partition>-<offset>`), each header
 * as a field of its name (a name taken by those fields in `mq-headers`, JSON).
 *
 * @example
 * ```ts
 * import { xaddArgs } from "./_mapping.ts";
 * import { ReceivedMessage } from "../../core/message.ts";
 * const m = new ReceivedMessage("t", 0, { offset: 4, timestamp: 0, payload: new Uint8Array([1]) }, 1);
 * xaddArgs("s", "t", m).slice(0, 4); // ["XADD", "s", "*", "payload"]
 * ```
 */
export function xaddArgs(
  stream: string,
  topic: string,
  m: ReceivedMessage,
  maxlen?: number,
): (string | Uint8Array)[] {
  const args: (string | Uint8Array)[] = maxlen === undefined
    ? ["XADD", stream, "*", PAYLOAD, m.payload]
    : ["XADD", stream, "MAXLEN", "~", String(maxlen), "*", PAYLOAD, m.payload];
  const r = m.record;
  if (r.key !== undefined) args.push(KEY, r.key);
  args.push(ID, r.id ?? `${topic}:${m.partition}-${r.offset}`);
  if (r.headers) {
    let taken: Record<string, string> | undefined;
    for (const name in r.headers) {
      if (RESERVED.has(name)) (taken ??= {})[name] = r.headers[name];
      else args.push(name, r.headers[name]);
    }
    if (taken) args.push(HEADERS, JSON.stringify(taken));
  }
  return args;
}

/**
 * Encodes the XADDs of messages of `topic` to `stream` as {@link xaddArgs}
 * says, into `encoder`: a message with no key, id or headers (most are) from
 * bytes made once per stream (the command's start, `mq-id`'s
 * `<topic>:<partition>-` head) plus its payload and offset, with no array or
 * string per message; any other through {@link xaddArgs}. The bytes are the
 * same either way.
 *
 * @example
 * ```ts
 * import { xaddEncoder } from "./_mapping.ts";
 * import { Encoder } from "./_resp.ts";
 * import { ReceivedMessage } from "../../core/message.ts";
 * const encoder = new Encoder(1024);
 * const m = new ReceivedMessage("t", 0, { offset: 4, timestamp: 0, payload: new Uint8Array([1]) }, 1);
 * xaddEncoder(encoder, "s", "t")(m);
 * new TextDecoder().decode(encoder.bytes.subarray(0, 9)); // "*7\r\n$4\r\nXADD"
 * ```
 */
export function xaddEncoder(
  encoder: Encoder,
  stream: string,
  topic: string,
  maxlen?: number,
): (m: ReceivedMessage) => void {
  const start = new Encoder(256);
  const head: string[] = maxlen === undefined
    ? ["XADD", stream, "*", PAYLOAD]
    : ["XADD", stream, "MAXLEN", "~", String(maxlen), "*", PAYLOAD];
  // The command's start: `*argc` and the arguments before the payload.
  start.command(head);
  const argc = head.length + 3;
  const prefix = new Uint8Array(start.length + 8);
  const count = new TextEncoder().encode(`*${argc}\r\n`);
  const skip = `*${head.length}\r\n`.length;
  prefix.set(count);
  prefix.set(start.bytes.subarray(skip, start.length), count.length);
  const plainStart = prefix.subarray(0, count.length + start.length - skip);
  const idField = new TextEncoder().encode(`$${ID.length}\r\n${ID}\r\n`);
  const idHeads: Uint8Array[] = [];
  return (m) => {
    const r = m.record;
    if (r.key !== undefined || r.id !== undefined || r.headers !== undefined) {
      encoder.command(xaddArgs(stream, topic, m, maxlen));
      return;
    }
    encoder.raw(plainStart);
    encoder.bulk(m.payload);
    encoder.raw(idField);
    const idHead = idHeads[m.partition] ??= new TextEncoder().encode(`${topic}:${m.partition}-`);
    encoder.bulkWithNumber(idHead, r.offset);
  };
}

const encoder = new TextEncoder();
const PAYLOAD_BYTES = encoder.encode(PAYLOAD), KEY_BYTES = encoder.encode(KEY);
const ID_BYTES = encoder.encode(ID), HEADERS_BYTES = encoder.encode(HEADERS);

/** Whether `bytes` are `name`'s (no string made for a field name). */
function isName(bytes: Uint8Array, name: Uint8Array): boolean {
  if (bytes.length !== name.length) return false;
  for (let i = 0; i < name.length; i++) if (bytes[i] !== name[i]) return false;
  return true;
}

/**
 * The message an entry of `stream` brings in: field `payload` (else the
 * only field, whatever its name) as the payload, `mq-key` as the key,
 * `mq-headers` merged into the headers, `mq-id` dropped (the entry's id
 * takes its place), every other field as a header (as
 * UTF-8 text), the header `redis-stream` = `stream`, and the id
 * `redis:<stream>:<entry-id>`. An entry with no header fields (most are)
 * gets `origin` as its headers when given (one object for a stream's
 * entries, `{ "redis-stream": stream }`, that nothing changes: their JSON is
 * made once a batch).
 *
 * @example
 * ```ts
 * import { Buffer } from "node:buffer";
 * import { messageOf } from "./_mapping.ts";
 * const m = messageOf("s", "1-0", [Buffer.from("payload"), Buffer.from("hi"), Buffer.from("level"), Buffer.from("info")]);
 * m.headers; // { level: "info", "redis-stream": "s" }
 * ```
 */
export function messageOf(
  stream: string,
  entryId: string,
  fields: Uint8Array[],
  origin?: Readonly<Record<string, string>>,
): OutgoingMessage & { headers: Record<string, string> } {
  let headers: Record<string, string> | undefined;
  let payload: Uint8Array | undefined;
  let key: string | undefined;
  if (fields.length === 2 && !isName(fields[0], KEY_BYTES)) payload = fields[1];
  else {
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const name = fields[i];
      const value = fields[i + 1];
      if (payload === undefined && isName(name, PAYLOAD_BYTES)) payload = value;
      else if (isName(name, KEY_BYTES)) key = dec.decode(value);
      else if (isName(name, ID_BYTES)) continue; // the id it went out with: it comes in with the entry's
      else if (isName(name, HEADERS_BYTES)) {
        const taken = headersFromJson(dec.decode(value));
        if (taken) Object.assign(headers ??= {}, taken);
        else (headers ??= {})[HEADERS] = dec.decode(value);
      } else (headers ??= {})[dec.decode(name)] = dec.decode(value);
    }
  }
  if (headers) headers[ORIGIN] = stream;
  else headers = (origin as Record<string, string> | undefined) ?? { [ORIGIN]: stream };
  return {
    payload: payload ?? new Uint8Array(0),
    key,
    headers,
    id: `redis:${stream}:${entryId}`,
  };
}
