/**
 * `--target` templates of bridges: where each outgoing message goes (the NATS
 * subject, the Redis stream key, the MQTT topic, the AMQP routing key, the
 * Kafka topic), filled from the message's topic, key, partition and headers.
 *
 * | placeholder | value |
 * | --- | --- |
 * | `{topic}` | the local topic the message was read from |
 * | `{key}` | its key (an error when it has none) |
 * | `{partition}` | its partition number |
 * | `{header.NAME}` | its header `NAME` (an error when it has none) |
 *
 * Everything else is copied as it is; `{` and `}` appear only around a
 * placeholder.
 *
 * @example
 * ```ts
 * import { compileTarget } from "./bridge_target.ts";
 * import { ReceivedMessage } from "./message.ts";
 * const targetOf = compileTarget("orders.{header.region}.{key}");
 * const m = new ReceivedMessage("orders", 0, {
 *   offset: 7,
 *   timestamp: 0,
 *   payload: new Uint8Array(),
 *   key: "c-42",
 *   headers: { region: "eu" },
 * }, 1);
 * targetOf("orders", m); // "orders.eu.c-42"
 * ```
 *
 * @module
 */
import type { ReceivedMessage } from "./message.ts";
import { MqError } from "./errors.ts";

/** Fills a `--target` template for one message. */
export type TargetOf = (topic: string, message: ReceivedMessage) => string;

/** One piece of a compiled template. */
type Part =
  | { kind: "text"; text: string }
  | { kind: "topic" }
  | { kind: "key" }
  | { kind: "partition" }
  | { kind: "header"; name: string };

const PLACEHOLDERS = "{topic}, {key}, {partition} or {header.NAME}";

/**
 * Compiles a `--target` template (`{topic}`, `{key}`, `{partition}`,
 * `{header.NAME}`) into a function that fills it for one message.
 *
 * @example
 * ```ts
 * import { compileTarget } from "./bridge_target.ts";
 * import { ReceivedMessage } from "./message.ts";
 * const m = new ReceivedMessage("orders", 3, {
 *   offset: 1,
 *   timestamp: 0,
 *   payload: new Uint8Array(),
 * }, 1);
 * compileTarget()("orders", m); // "orders"
 * compileTarget("mq/{topic}/{partition}")("orders", m); // "mq/orders/3"
 * ```
 *
 * @param template the template. @default "{topic}"
 * @throws {MqError} `INVALID_ARGUMENT` for an unknown placeholder, unbalanced
 * braces or an empty template; the returned function throws
 * `INVALID_ARGUMENT` (`--target "{key}": message orders/0/5 has no key`)
 * when a placeholder has no value for a message
 */
export function compileTarget(template: string = "{topic}"): TargetOf {
  const parts = parseTemplate(template);
  if (parts.length === 1 && parts[0].kind === "topic") return (topic) => topic;
  if (parts.length === 1 && parts[0].kind === "text") {
    const text = parts[0].text;
    return () => text;
  }
  const quoted = JSON.stringify(template);
  const missing = (topic: string, m: ReceivedMessage, what: string) =>
    new MqError(
      "INVALID_ARGUMENT",
      `--target ${quoted}: message ${topic}/${m.partition}/${m.offset} has no ${what}`,
    );
  return (topic, m) => {
    let out = "";
    for (const p of parts) {
      switch (p.kind) {
        case "text":
          out += p.text;
          break;
        case "topic":
          out += topic;
          break;
        case "partition":
          out += m.partition;
          break;
        case "key": {
          const key = m.key;
          if (key === undefined) throw missing(topic, m, "key");
          out += key;
          break;
        }
        case "header": {
          const value = m.record.headers?.[p.name];
          if (value === undefined) throw missing(topic, m, `header ${JSON.stringify(p.name)}`);
          out += value;
          break;
        }
      }
    }
    return out;
  };
}

/**
 * The pieces of `template`.
 *
 * @throws {MqError} `INVALID_ARGUMENT`
 */
function parseTemplate(template: string): Part[] {
  const bad = (why: string) =>
    new MqError("INVALID_ARGUMENT", `--target ${JSON.stringify(template)}: ${why}`);
  if (template === "") throw bad(`is empty; give a template such as "{topic}"`);
  const parts: Part[] = [];
  let at = 0;
  while (at < template.length) {
    const open = template.indexOf("{", at);
    const close = template.indexOf("}", at);
    if (close >= 0 && (open < 0 || close < open)) {
      throw bad(`unbalanced "}" at character ${close + 1}`);
    }
    if (open < 0) {
      parts.push({ kind: "text", text: template.slice(at) });
      break;
    }
    if (open > at) parts.push({ kind: "text", text: template.slice(at, open) });
    if (close < 0) throw bad(`unbalanced "{" at character ${open + 1}`);
    const inner = template.slice(open + 1, close);
    if (inner.includes("{")) throw bad(`unbalanced "{" at character ${open + 1}`);
    if (inner === "topic") parts.push({ kind: "topic" });
    else if (inner === "key") parts.push({ kind: "key" });
    else if (inner === "partition") parts.push({ kind: "partition" });
    else if (inner.startsWith("header.") && inner.length > "header.".length) {
      parts.push({ kind: "header", name: inner.slice("header.".length) });
    } else throw bad(`unknown placeholder {${inner}}; use ${PLACEHOLDERS}`);
    at = close + 1;
  }
  return parts;
}
