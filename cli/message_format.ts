/**
 * How `mq sub` prints a message: `raw` (payload and a newline), `json` (the
 * envelope), or a template such as `'{offset} {key} {payload} {header.trace}'`
 * (with `\t` and `\n` as a tab and a newline).
 */
import type { Message } from "../mod.ts";
import { MqError } from "../core/errors.ts";
import { toBase64, toEnvelope } from "./envelope.ts";

const dec = new TextDecoder();
const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));
const FIELDS = new Set([
  "topic",
  "partition",
  "offset",
  "id",
  "key",
  "timestamp",
  "attempt",
  "payload",
  "payload_base64",
  "payload_hex",
  "headers",
  "receipt",
]);

const ESCAPES: Record<string, string> = { t: "\t", n: "\n", "\\": "\\" };

/** A template's literal text with `\t`, `\n` and `\\` as a tab, a newline and a backslash. */
function unescape(text: string): string {
  return text.replace(/\\([tn\\])/g, (_, c: string) => ESCAPES[c]);
}

/** Turns a message into the text of one output line (without the newline). */
export type LineFormatter = (m: Message) => string;

/**
 * The formatter for `--format`; undefined for `raw`, which writes bytes as
 * they are. Anything but `raw` and `json` must be a template with at least
 * one placeholder (`--format RAW` is a mistake, not a template).
 *
 * @example
 * ```ts
 * import { formatterFor } from "./message_format.ts";
 * const line = formatterFor("{offset}\\t{payload}"); // offset, a tab, the payload
 * ```
 * @throws {MqError} `INVALID_ARGUMENT` for an unknown word or field
 */
export function formatterFor(format: string): LineFormatter | undefined {
  if (format === "raw") return undefined;
  if (format === "json") {
    return (m) => toEnvelope(m, m.receipt ? { receipt: m.receipt } : undefined);
  }
  const parts = format.split(/(\{[^{}]*\})/);
  if (parts.length === 1) {
    throw new MqError(
      "INVALID_ARGUMENT",
      `unknown --format ${
        JSON.stringify(format)
      }: use raw, json, or a template with at least one {field}, e.g. '{offset} {payload}'`,
    );
  }
  const pieces: (string | ((m: Message) => string))[] = [];
  for (const part of parts) {
    const f = /^\{([^{}]*)\}$/.exec(part);
    if (!f) {
      if (part) pieces.push(unescape(part));
      continue;
    }
    const name = f[1];
    if (name.startsWith("header.")) {
      const h = name.slice(7);
      pieces.push((m) => m.headers[h] ?? "");
    } else if (FIELDS.has(name)) {
      pieces.push((m) => field(m, name));
    } else {
      throw new MqError(
        "INVALID_ARGUMENT",
        `unknown field {${name}} in --format: use raw, json, or a template of {${
          [...FIELDS].join("} {")
        }} {header.NAME}`,
      );
    }
  }
  return (m) => {
    let s = "";
    for (const p of pieces) s += typeof p === "string" ? p : p(m);
    return s;
  };
}

function field(m: Message, name: string): string {
  switch (name) {
    case "payload":
      return dec.decode(m.payload);
    case "payload_base64":
      return toBase64(m.payload);
    case "payload_hex": {
      let hex = "";
      for (const b of m.payload) hex += HEX[b];
      return hex;
    }
    case "headers":
      return JSON.stringify(m.headers);
    case "id":
      return m.record.id ?? "";
    case "timestamp":
      return new Date(m.timestamp).toISOString();
    case "key":
      return m.key ?? "";
    case "receipt":
      return m.receipt ?? "";
    default:
      return String((m as unknown as Record<string, unknown>)[name]);
  }
}
