/**
 * The JSON envelope of CLI.md, one per line, both ways:
 * `{"topic","partition","offset","id","key","headers","timestamp","attempt","payload"}`,
 * with `payload_base64` for bytes that are not valid UTF-8.
 */
import type { Message } from "../core/message.ts";
import { MqError } from "../core/errors.ts";
import type { RecordMeta } from "../core/record.ts";

const strict = new TextDecoder("utf-8", { fatal: true });
const enc = new TextEncoder();

/** The envelope of a message, as one line of JSON. */
export function toEnvelope(m: Message, extra?: Record<string, unknown>): string {
  const e: Record<string, unknown> = {
    topic: m.topic,
    partition: m.partition,
    offset: m.offset,
    id: m.record.id ?? null,
    key: m.key ?? null,
    headers: m.headers,
    timestamp: new Date(m.timestamp).toISOString(),
    attempt: m.attempt,
  };
  try {
    e.payload = strict.decode(m.payload);
  } catch {
    e.payload_base64 = toBase64(m.payload);
  }
  if (extra) Object.assign(e, extra);
  return JSON.stringify(e);
}

/** A message parsed from an envelope line. */
export interface ParsedEnvelope {
  payload: Uint8Array;
  meta: RecordMeta | undefined;
}

/**
 * Parses one `--json-lines` line; only `payload` or `payload_base64` is required.
 *
 * @throws {MqError} `MALFORMED_MESSAGE` naming what is wrong
 */
export function fromEnvelope(line: string): ParsedEnvelope {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (e) {
    throw new MqError("MALFORMED_MESSAGE", `not valid JSON: ${(e as Error).message}`);
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) {
    throw new MqError("MALFORMED_MESSAGE", "expected a JSON object with payload or payload_base64");
  }
  const o = v as Record<string, unknown>;
  let payload: Uint8Array;
  if (typeof o.payload === "string") payload = enc.encode(o.payload);
  else if (typeof o.payload_base64 === "string") {
    try {
      payload = fromBase64(o.payload_base64);
    } catch {
      throw new MqError("MALFORMED_MESSAGE", "payload_base64 is not valid base64");
    }
  } else throw new MqError("MALFORMED_MESSAGE", "expected a payload or payload_base64 string");
  const meta: RecordMeta = {};
  if (o.key !== undefined && o.key !== null) {
    if (typeof o.key !== "string") throw new MqError("MALFORMED_MESSAGE", "key must be a string");
    meta.key = o.key;
  }
  if (o.id !== undefined && o.id !== null) {
    if (typeof o.id !== "string") throw new MqError("MALFORMED_MESSAGE", "id must be a string");
    meta.id = o.id;
  }
  if (o.headers !== undefined && o.headers !== null) {
    if (typeof o.headers !== "object" || Array.isArray(o.headers)) {
      throw new MqError("MALFORMED_MESSAGE", "headers must be an object");
    }
    for (const [k, val] of Object.entries(o.headers as object)) {
      if (typeof val !== "string") {
        throw new MqError("MALFORMED_MESSAGE", `header ${JSON.stringify(k)} must be a string`);
      }
    }
    meta.headers = o.headers as Record<string, string>;
  }
  if (o.timestamp !== undefined && o.timestamp !== null) {
    const t = typeof o.timestamp === "number" ? o.timestamp : Date.parse(String(o.timestamp));
    if (!Number.isFinite(t)) {
      throw new MqError("MALFORMED_MESSAGE", "timestamp must be an ISO time");
    }
    meta.timestamp = t;
  }
  return { payload, meta: Object.keys(meta).length > 0 ? meta : undefined };
}

/** Base64 of bytes. */
export function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

/** Bytes of base64. */
export function fromBase64(text: string): Uint8Array {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
