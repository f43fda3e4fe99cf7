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
/** The user property of headers whose names are taken by those above (JSON). */
export const HEADERS = "mq-headers";
/** The header that names the MQTT topic a message came from. */
export const ORIGIN = "mqtt-topic";

const RESERVED = new Set([KEY, ID, HEADERS]);

/** MQTT 5 user properties as mqtt.js takes and gives them. */
export type UserProperties = Record<string, string | string[]>;

/**
 * The user properties of `m` (read from `topic`): each header by its name,
 * `mq-key` the key, `mq-id` the id (the one it was published with, else
 * `<topic>:<partition>-<offset>`); a header named like one of those goes in
 * `mq-headers` (JSON).
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
  let taken: Record<string, string> | undefined;
  if (r.headers) {
    for (const name in r.headers) {
      if (RESERVED.has(name)) (taken ??= {})[name] = r.headers[name];
      else out[name] = r.headers[name];
    }
  }
  if (r.key !== undefined) out[KEY] = r.key;
  out[ID] = r.id ?? `${topic}:${m.partition}-${r.offset}`;
  if (taken) out[HEADERS] = JSON.stringify(taken);
  return out;
}

/**
 * The message an MQTT PUBLISH brings in: the payload as it is, `mq-key` as
 * the key, `mq-id` as the id (so a second copy is dropped by the topic's
 * dedup window; without it, no id), `mq-headers` merged into the headers,
 * every other user property as a header (a repeated one: its last value),
 * and the header `mqtt-topic` = the topic.
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
    else if (name === HEADERS) {
      const taken = parseTaken(value);
      if (taken) Object.assign(headers, taken);
      else headers[name] = value;
    } else headers[name] = value;
  }
  headers[ORIGIN] = topic;
  return { payload, key, id, headers };
}

/** The headers of an `mq-headers` property, or undefined when it is not such a value. */
function parseTaken(text: string): Record<string, string> | undefined {
  try {
    const v = JSON.parse(text);
    if (!v || typeof v !== "object" || Array.isArray(v)) return undefined;
    if (!Object.values(v).every((x) => typeof x === "string")) return undefined;
    return v;
  } catch {
    return undefined;
  }
}
