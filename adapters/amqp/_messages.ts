/**
 * How messages cross between mq and RabbitMQ (the table in `bridge.ts`): the
 * properties and headers of an outgoing message, and an incoming one as mq
 * stores it, with a content-derived id when it carries no `message-id`.
 *
 * @module
 */
import type { AMQPMessage, AMQPProperties } from "@cloudamqp/amqp-client";
import type { OutgoingMessage } from "../../core/client.ts";

/** The header that carries the mq key. */
const KEY = "mq-key";
/** The content type header that travels as the AMQP property. */
const CONTENT_TYPE = "content-type";
/** The headers and properties of one outgoing message. */
export function propertiesOf(
  id: string,
  key: string | undefined,
  own: Record<string, string> | undefined,
  timestamp: number,
): AMQPProperties {
  const props: AMQPProperties = { deliveryMode: 2, messageId: id, timestamp: new Date(timestamp) };
  let headers: Record<string, string> | undefined;
  if (own) {
    for (const k in own) {
      if (k === CONTENT_TYPE) props.contentType = own[k];
      else (headers ??= {})[k] = own[k];
    }
  }
  if (key !== undefined) (headers ??= {})[KEY] = key;
  if (headers) props.headers = headers;
  return props;
}

/** A header value of AMQP as mq's text. */
function headerText(v: unknown): string {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return String(v);
  if (v instanceof Date) return v.toISOString();
  if (v instanceof Uint8Array) return new TextDecoder().decode(v);
  return JSON.stringify(v);
}

const enc = new TextEncoder();

/** `amqp:<queue>:<sha-256>` of what a message is, for a message without a message-id. */
async function fallbackId(queue: string, m: AMQPMessage): Promise<string> {
  const { messageId: _, ...props } = m.properties;
  const head = enc.encode(JSON.stringify([m.exchange, m.routingKey, props]));
  const body = m.body ?? new Uint8Array(0);
  const all = new Uint8Array(head.length + 1 + body.length);
  all.set(head);
  all.set(body, head.length + 1);
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  let hex = "";
  for (const b of hash) hex += b.toString(16).padStart(2, "0");
  return `amqp:${queue}:${hex}`;
}

/** An incoming message as mq stores it (the id may still be computed). */
export async function incoming(queue: string, m: AMQPMessage): Promise<OutgoingMessage> {
  return incomingNow(queue, m) ?? incomingAs(queue, m, await fallbackId(queue, m));
}

/**
 * An incoming message as {@link incoming} makes it, at once when it carries
 * a message-id (no promise a message: most do), else undefined (its id is
 * computed from its content, asynchronously).
 *
 * @example
 * ```ts ignore
 * const out = incomingNow("orders", delivered) ?? await incoming("orders", delivered);
 * ```
 */
export function incomingNow(queue: string, m: AMQPMessage): OutgoingMessage | undefined {
  const id = m.properties.messageId;
  return id ? incomingAs(queue, m, id) : undefined;
}

function incomingAs(queue: string, m: AMQPMessage, id: string): OutgoingMessage {
  const headers: Record<string, string> = {};
  let key: string | undefined;
  const own = m.properties.headers;
  for (const k in own) {
    const v = own[k];
    if (k === KEY && typeof v === "string") key = v;
    else headers[k] = headerText(v);
  }
  if (m.properties.contentType !== undefined) headers[CONTENT_TYPE] = m.properties.contentType;
  headers["amqp-queue"] = queue;
  headers["amqp-exchange"] = m.exchange;
  headers["amqp-routing-key"] = m.routingKey;
  return { payload: m.body ?? new Uint8Array(0), key, headers, id };
}
