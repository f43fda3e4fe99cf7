/**
 * The JSON envelope of CLI.md, one per line, both ways:
 * `{"topic","partition","offset","id","key","headers","timestamp","attempt","payload"}`,
 * with exactly one of `payload` (UTF-8 text), `payload_json` (a JSON object or
 * array that prints back as the same bytes) and `payload_base64` (not valid
 * UTF-8), and `deliver_at` / `expires_at` (ISO 8601) for a delay or a TTL.
 */
import type { Message, RecordMeta } from "../mod.ts";
import { MqError } from "../core/errors.ts";

const strict = new TextDecoder("utf-8", { fatal: true });
const PAYLOAD_FIELDS = ["payload", "payload_json", "payload_base64"] as const;
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
  if (m.record.deliverAt !== undefined) e.deliver_at = new Date(m.record.deliverAt).toISOString();
  if (m.record.expiresAt !== undefined) e.expires_at = new Date(m.record.expiresAt).toISOString();
  let json: string | undefined;
  try {
    const text = strict.decode(m.payload);
    if (isCanonicalJson(text)) json = text;
    else e.payload = text;
  } catch {
    e.payload_base64 = toBase64(m.payload);
  }
  if (extra) Object.assign(e, extra);
  const line = JSON.stringify(e);
  // The payload's own bytes are its JSON (they print back the same): spliced in as they are.
  return json === undefined ? line : `${line.slice(0, -1)},"payload_json":${json}}`;
}

/**
 * True when `text` is a JSON object or array that `JSON.stringify` prints
 * back as the very same text (so that a copy through `payload_json` keeps
 * every byte).
 *
 * @example
 * ```ts
 * import { isCanonicalJson } from "./envelope.ts";
 * isCanonicalJson('{"a":1}'); // true
 * isCanonicalJson('{ "a": 1 }'); // false: printed back, it would lose its spaces
 * ```
 */
export function isCanonicalJson(text: string): boolean {
  const c = text.charCodeAt(0);
  if (c !== 123 && c !== 91) return false; // "{" or "["
  try {
    return JSON.stringify(JSON.parse(text)) === text;
  } catch {
    return false;
  }
}

/** A message parsed from an envelope line. */
export interface ParsedEnvelope {
  payload: Uint8Array;
  meta: RecordMeta | undefined;
}

/**
 * Parses one `--json-lines` line; exactly one of `payload`, `payload_json`
 * and `payload_base64` is required; `deliver_at` and `expires_at` are kept.
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
    throw new MqError(
      "MALFORMED_MESSAGE",
      "expected a JSON object with payload, payload_json or payload_base64",
    );
  }
  const o = v as Record<string, unknown>;
  const given = PAYLOAD_FIELDS.filter((f) => o[f] !== undefined && o[f] !== null);
  if (given.length !== 1) {
    throw new MqError(
      "MALFORMED_MESSAGE",
      given.length === 0
        ? "expected one of payload, payload_json or payload_base64"
        : `expected one of payload, payload_json or payload_base64, not ${given.join(" and ")}`,
    );
  }
  let payload: Uint8Array;
  if (given[0] === "payload") {
    if (typeof o.payload !== "string") {
      throw new MqError("MALFORMED_MESSAGE", "payload must be a string");
    }
    payload = enc.encode(o.payload);
  } else if (given[0] === "payload_json") {
    if (typeof o.payload_json !== "object") {
      throw new MqError("MALFORMED_MESSAGE", "payload_json must be a JSON object or array");
    }
    payload = enc.encode(JSON.stringify(o.payload_json));
  } else {
    if (typeof o.payload_base64 !== "string") {
      throw new MqError("MALFORMED_MESSAGE", "payload_base64 must be a string");
    }
    try {
      payload = fromBase64(o.payload_base64);
    } catch {
      throw new MqError("MALFORMED_MESSAGE", "payload_base64 is not valid base64");
    }
  }
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
  for (const [field, name] of [["deliver_at", "deliverAt"], ["expires_at", "expiresAt"]] as const) {
    const value = o[field];
    if (value === undefined || value === null) continue;
    const t = typeof value === "string" && /^\d{4}-\d{2}-\d{2}/.test(value)
      ? Date.parse(value)
      : NaN;
    if (!Number.isFinite(t)) {
      throw new MqError("MALFORMED_MESSAGE", `${field} must be an ISO 8601 time`);
    }
    meta[name] = t;
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
