/**
 * How `mq sub` prints a message: `raw` (payload and a newline), `json` (the
 * envelope), or a template such as `'{offset} {key} {payload} {header.trace}'`.
 */
import type { Message } from "../core/message.ts";
import { MqError } from "../core/errors.ts";
import { toEnvelope } from "./envelope.ts";

const dec = new TextDecoder();
const FIELDS = new Set([
  "topic",
  "partition",
  "offset",
  "id",
  "key",
  "timestamp",
  "attempt",
  "payload",
  "receipt",
]);

/** Turns a message into the text of one output line (without the newline). */
export type LineFormatter = (m: Message) => string;

/**
 * The formatter for `--format`; undefined for `raw`, which writes bytes as they are.
 *
 * @throws {MqError} `INVALID_ARGUMENT` for an unknown field in a template
 */
export function formatterFor(format: string): LineFormatter | undefined {
  if (format === "raw") return undefined;
  if (format === "json") {
    return (m) => toEnvelope(m, m.receipt ? { receipt: m.receipt } : undefined);
  }
  const parts = format.split(/(\{[^{}]*\})/);
  const pieces: (string | ((m: Message) => string))[] = [];
  for (const part of parts) {
    const f = /^\{([^{}]*)\}$/.exec(part);
    if (!f) {
      if (part) pieces.push(part);
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
