/**
 * How an mq message maps to an MQTT 5 PUBLISH and back (the table is in
 * `bridge.ts`).
 *
 * @module
 */
import type { ReceivedMessage } from "../../core/message.ts";
import type { OutgoingMessage } from "../../core/client.ts";

/** The user property of the key. */
export const KEY = "mq-key";
/** The user property of the message id. */
export const ID = "mq-id";
/**
 * The user property (JSON `{ key?, id?, headers? }`) of what cannot be a
 * user property as it is: a header named like one of mq's, or a name or
 * value MQTT does not take (control characters, which a broker may answer
 * by closing the connection).
 */
export const META = "mq-meta";
/** The header that names the MQTT topic a message came from. */
export const ORIGIN = "mqtt-topic";

const RESERVED = new Set([KEY, ID, META]);

/** MQTT 5 user properties: name to value (a list: a repeated name, of which the last counts). */
export type UserProperties = Record<string, string | string[]>;

/**
 * Whether MQTT takes `s` as a UTF-8 string as it is: well-formed, without
 * the control characters U+0000-U+001F and U+007F-U+009F.
 *
 * @example
 * ```ts
 * import { mqttSafe } from "./_mapping.ts";
 * [mqttSafe("a b"), mqttSafe("a\nb")]; // [true, false]
 * ```
 */
export function mqttSafe(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x1f || (c >= 0x7f && c <= 0x9f)) return false;
  }
  return s.isWellFormed();
}

/** JSON with the C1 controls escaped too (JSON.stringify leaves U+007F-U+009F as they are). */
function json(v: unknown): string {
  return JSON.stringify(v).replace(
    /[\u007f-\u009f]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/**
 * The user properties of `m` (read from `topic`): each header by its name,
 * `mq-key` the key, `mq-id` the id (the one it was published with, else
 * `<topic>:<partition>-<offset>`); what cannot travel so goes in `mq-meta`.
 *
 * @example
 * ```ts
 * import { userPropertiesOf } from "./_mapping.ts";
 * import { ReceivedMessage } from "../../core/message.ts";
 * const m = new ReceivedMessage("t", 0, { offset: 4, timestamp: 0, payload: new Uint8Array(), key: "k" }, 1);
 * userPropertiesOf("t", m); // { "mq-key": "k", "mq-id": "t:0-4" }
 * ```
 */
export function userPropertiesOf(topic: string, m: ReceivedMessage): UserProperties {
  const r = m.record;
  const out: UserProperties = {};
  let meta: { key?: string; id?: string; headers?: Record<string, string> } | undefined;
  if (r.headers) {
    for (const name in r.headers) {
      const value = r.headers[name];
      if (RESERVED.has(name) || !mqttSafe(name) || !mqttSafe(value)) {
        ((meta ??= {}).headers ??= {})[name] = value;
      } else out[name] = value;
    }
  }
  if (r.key !== undefined) {
    if (mqttSafe(r.key)) out[KEY] = r.key;
    else (meta ??= {}).key = r.key;
  }
  const id = r.id ?? `${topic}:${m.partition}-${r.offset}`;
  if (mqttSafe(id)) out[ID] = id;
  else (meta ??= {}).id = id;
  if (meta) out[META] = json(meta);
  return out;
}

/**
 * The message an MQTT PUBLISH brings in: the payload as it is, `mq-key` as
 * the key, `mq-id` as the id (none without it), `mq-meta` merged in, every
 * other user property as a header (a repeated one: its last value), and the
 * header `mqtt-topic` = the topic.
 *
 * @example
 * ```ts
 * import { messageOf } from "./_mapping.ts";
 * const m = messageOf("a/b", new Uint8Array([1]), { level: "info", "mq-id": "x" });
 * [m.id, m.headers]; // ["x", { level: "info", "mqtt-topic": "a/b" }]
 * ```
 */
export function messageOf(
  topic: string,
  payload: Uint8Array,
  properties: UserProperties | undefined,
): OutgoingMessage & { headers: Record<string, string> } {
  const headers: Record<string, string> = {};
  let key: string | undefined, id: string | undefined;
  for (const name in properties ?? {}) {
    const v = properties![name];
    const value = Array.isArray(v) ? v[v.length - 1] : v;
    if (name === KEY) key = value;
    else if (name === ID) id = value;
    else if (name === META) {
      const meta = parseMeta(value);
      if (!meta) headers[name] = value; // not ours, or damaged: kept as it came
      else {
        Object.assign(headers, meta.headers ?? {});
        key = meta.key ?? key;
        id = meta.id ?? id;
      }
    } else headers[name] = value;
  }
  headers[ORIGIN] = topic;
  return { payload, key, id, headers };
}

/** What a bridge put in `mq-meta`, or undefined when `text` is not such a value. */
function parseMeta(
  text: string,
): { key?: string; id?: string; headers?: Record<string, string> } | undefined {
  try {
    const v = JSON.parse(text);
    if (!v || typeof v !== "object" || Array.isArray(v)) return undefined;
    for (const k of ["key", "id"]) {
      if (v[k] !== undefined && typeof v[k] !== "string") return undefined;
    }
    const h = v.headers;
    if (h !== undefined) {
      if (!h || typeof h !== "object" || Array.isArray(h)) return undefined;
      if (!Object.values(h).every((x) => typeof x === "string")) return undefined;
    }
    return v;
  } catch {
    return undefined;
  }
}
