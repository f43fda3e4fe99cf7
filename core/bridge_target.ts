/**
 * `--target TEMPLATE`: where a bridge sends each message (the NATS subject,
 * the Redis stream key, the MQTT topic, the AMQP routing key, the Kafka
 * topic), filled from the message: `{topic}`, `{key}`, `{partition}`,
 * `{header.NAME}`.
 *
 * @module
 */
import type { ReceivedMessage } from "./message.ts";
import { MqError } from "./errors.ts";

/** Fills a --target template for one message. */
export type TargetOf = (topic: string, message: ReceivedMessage) => string;

type Part =
  | { kind: "text"; text: string }
  | { kind: "topic" }
  | { kind: "key" }
  | { kind: "partition" }
  | { kind: "header"; name: string };

/**
 * Compiles a --target template ({topic}, {key}, {partition}, {header.NAME}).
 *
 * @example
 * ```ts
 * import { compileTarget } from "./bridge_target.ts";
 * const targetOf = compileTarget("orders.{topic}");
 * // targetOf("eu", message) === "orders.eu"
 * ```
 * @param template the template @default "{topic}"
 * @throws {MqError} `INVALID_ARGUMENT` for an unknown placeholder or
 * unbalanced braces; the returned function throws `INVALID_ARGUMENT`
 * (`--target "{key}": message <topic>/<partition>/<offset> has no key`) when
 * a placeholder has no value.
 */
export function compileTarget(template = "{topic}"): TargetOf {
  const shown = JSON.stringify(template);
  const parts: Part[] = [];
  let text = "";
  for (let i = 0; i < template.length; i++) {
    const c = template[i];
    if (c === "}") {
      throw new MqError("INVALID_ARGUMENT", `--target ${shown}: unbalanced "}" at ${i + 1}`);
    }
    if (c !== "{") {
      text += c;
      continue;
    }
    const end = template.indexOf("}", i + 1);
    const open = template.indexOf("{", i + 1);
    if (end < 0 || (open >= 0 && open < end)) {
      throw new MqError("INVALID_ARGUMENT", `--target ${shown}: unbalanced "{" at ${i + 1}`);
    }
    const name = template.slice(i + 1, end);
    if (text) parts.push({ kind: "text", text });
    text = "";
    if (name === "topic" || name === "key" || name === "partition") parts.push({ kind: name });
    else if (name.startsWith("header.") && name.length > 7) {
      parts.push({ kind: "header", name: name.slice(7) });
    } else {
      throw new MqError(
        "INVALID_ARGUMENT",
        `--target ${shown}: unknown placeholder {${name}} (use {topic}, {key}, {partition} or {header.NAME})`,
      );
    }
    i = end;
  }
  if (text) parts.push({ kind: "text", text });
  if (parts.length === 1 && parts[0].kind === "topic") return (topic) => topic;
  if (parts.length === 1 && parts[0].kind === "text") {
    const fixed = parts[0].text;
    return () => fixed;
  }
  const missing = (topic: string, m: ReceivedMessage, what: string): never => {
    throw new MqError(
      "INVALID_ARGUMENT",
      `--target ${shown}: message ${topic}/${m.partition}/${m.offset} has no ${what}`,
    );
  };
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
          out += String(m.partition);
          break;
        case "key":
          out += m.key ?? missing(topic, m, "key");
          break;
        case "header":
          out += m.record.headers?.[p.name] ?? missing(topic, m, `header ${p.name}`);
      }
    }
    return out;
  };
}
