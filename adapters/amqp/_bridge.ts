/**
 * Bridging to and from RabbitMQ (AMQP 0-9-1), loaded only when a bridge
 * names `amqp://` or `amqps://`: `amqp://user:pass@host:port/vhost`, with
 * `?exchange=NAME` (going out; default the default exchange) and
 * `?prefetch=N` (coming in; default 2048, stored and acked in windows of half that).
 *
 * Client: `@cloudamqp/amqp-client`, written for the web platform: bodies are
 * plain `Uint8Array`s, copied out of its frame buffer (so a stored payload
 * never pins a pooled `Buffer`), and confirms are promises.
 *
 * | mq               | AMQP, going out (`--to`)                   | coming in (`--from`)                       |
 * | ---------------- | ------------------------------------------ | ------------------------------------------ |
 * | payload          | body, bytes as they are                    | body                                       |
 * | target           | routing key (`--target`, default `{topic}`) on `?exchange=` | -                         |
 * | key              | header `mq-key`                            | header `mq-key`                            |
 * | headers          | AMQP headers (long strings)                | AMQP headers (numbers, booleans as text; tables as JSON) |
 * | `content-type`   | the `content-type` property                | the property, as header `content-type`     |
 * | id               | `message-id` (the mq id, else `<topic>:<partition>-<offset>`) | `message-id`; without one `amqp:<queue>:<sha-256 of exchange, routing key, properties, body>` |
 * | origin           | -                                          | headers `amqp-queue`, `amqp-exchange`, `amqp-routing-key` |
 *
 * Going out: persistent messages (delivery mode 2), `mandatory`, publisher
 * confirms awaited for the whole batch before the local position moves; a
 * message no queue takes (returned) stops the bridge (`UNROUTABLE`, exit 1)
 * unless `--allow-unroutable`, which reports and drops it. At least once: a
 * batch resent after a failure goes out again with the same `message-id`.
 * Coming in: manual acks (one `multiple` ack per stored batch) only after the
 * batch is stored, with a prefetch window; a redelivery carries the same
 * `message-id` (or the same content, for the fallback), so the topic's dedup
 * window drops it: exactly once into mq within that window. Two messages
 * without a `message-id` and with the same content are one message to the
 * fallback: publishers that repeat identical messages should set one.
 *
 * @module
 */
import {
  type AMQPChannel,
  type AMQPClient,
  AMQPError,
  type AMQPMessage,
} from "@cloudamqp/amqp-client";
import type { BridgeSink, IntoOptions, SinkOptions } from "../../core/bridge.ts";
import { BRIDGE_WINDOW, isFatal, windowEnd } from "../../core/bridge.ts";
import { compileTarget } from "../../core/bridge_target.ts";
import type { BackendUrl } from "../../core/backend_url.ts";
import type { Mq, OutgoingMessage } from "../../core/client.ts";
import { MqError } from "../../core/errors.ts";
import { backoffDelay } from "../../core/retry.ts";
import { connect, notFound, parseAmqpUrl } from "./_connection.ts";
import { incoming, incomingNow, propertiesOf } from "./_messages.ts";

/** How long a batch waits for its publisher confirms before the connection counts as dead. */
const CONFIRM_MS = 30_000;

// When a connection dies with publishes in flight, the client rejects both a
// publish's send and its confirm; nothing can wait on the confirm once the send
// failed, so that rejection would end the process. The failure is already
// handled (the batch fails and is sent again): those rejections are dropped.
globalThis.addEventListener("unhandledrejection", (e) => {
  if (e.reason instanceof AMQPError) e.preventDefault();
});

/**
 * A sink that publishes each message to the exchange of the URL with the
 * routing key of `--target`: persistent, mandatory, and confirmed.
 *
 * @example
 * ```ts ignore
 * const sink = await subjectSink(parseBackendUrl("amqp://guest:guest@127.0.0.1:5672/?exchange=events"), {});
 * ```
 * @throws {MqError} `INVALID_URL`, `INVALID_ARGUMENT` (the exchange does not
 * exist, a bad template), `UNREACHABLE`
 */
export async function subjectSink(url: BackendUrl, options: SinkOptions): Promise<BridgeSink> {
  const t = parseAmqpUrl(url);
  const targetOf = compileTarget(options.target);
  let onState = options.onState;
  let client: AMQPClient | undefined = await connect(t);
  let channel: AMQPChannel | undefined;
  let lost = false;
  /** Messages returned (no queue took them) since the last look, and the first's routing key. */
  let returned = 0;
  let returnedKey = "";
  const open = async () => {
    if (!client || client.closed) {
      channel = undefined;
      client = await connect(t);
      if (lost) onState?.(`reconnected to ${t.shown}`);
      lost = false;
    }
    if (!channel || channel.closed) {
      const ch = await client.channel();
      await ch.confirmSelect();
      ch.onReturn = (m: AMQPMessage) => {
        if (returned++ === 0) returnedKey = m.routingKey;
      };
      client.onerror = (e) => {
        if (!lost) {
          onState?.(`disconnected from ${t.shown} (${e.message}); reconnecting with backoff`);
        }
        lost = true;
      };
      channel = ch;
    }
    return channel;
  };
  // Fails early, with one line, when the exchange is not there.
  if (t.exchange !== "") {
    const ch = await client.channel();
    try {
      await ch.exchangeDeclare(t.exchange, "direct", { passive: true });
      await ch.close();
    } catch (e) {
      await client.close().catch(() => {});
      if (notFound(e)) {
        throw new MqError(
          "INVALID_ARGUMENT",
          `exchange ${JSON.stringify(t.exchange)} does not exist on ${t.shown}`,
        );
      }
      throw e;
    }
  }
  await open();
  return {
    async send(topic, messages) {
      let ch: AMQPChannel;
      try {
        ch = await open();
      } catch (e) {
        if (!lost) {
          onState?.(
            `disconnected from ${t.shown} (${(e as Error).message}); reconnecting with backoff`,
          );
        }
        lost = true;
        throw e;
      }
      returned = 0;
      const pending: Promise<number>[] = new Array(messages.length);
      // Routing keys are worked out first: a template without a value fails before anything goes.
      const keys = messages.map((m) => targetOf(topic, m));
      for (let i = 0; i < messages.length; i++) {
        const m = messages[i];
        if (keys[i].length > 255) {
          throw new MqError(
            "INVALID_ARGUMENT",
            `routing key of message ${topic}/${m.partition}/${m.offset} is ${
              keys[i].length
            } bytes; AMQP takes at most 255`,
          );
        }
        const id = m.record.id ?? `${topic}:${m.partition}-${m.offset}`;
        pending[i] = ch.basicPublish(
          t.exchange,
          keys[i],
          m.payload,
          propertiesOf(id, m.key, m.record.headers, m.timestamp),
          true,
        );
      }
      // Confirms that never come (a connection that died without a word) fail the batch,
      // which is then sent again on a new connection.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const silent = new Promise<"silent">((r) =>
        timer = setTimeout(() => r("silent"), CONFIRM_MS)
      );
      const settled = await Promise.race([Promise.allSettled(pending), silent]);
      clearTimeout(timer);
      if (settled === "silent") {
        const c = client;
        client = undefined;
        channel = undefined;
        c?.close().catch(() => {});
        if (!lost) {
          onState?.(
            `no confirms from ${t.shown} in ${CONFIRM_MS / 1000}s; reconnecting with backoff`,
          );
        }
        lost = true;
        throw new MqError(
          "UNREACHABLE",
          `no publisher confirms from ${t.shown} in ${CONFIRM_MS / 1000}s`,
        );
      }
      const failed = settled.find((s) => s.status === "rejected");
      if (failed) {
        if (client?.closed) {
          if (!lost) onState?.(`disconnected from ${t.shown}; reconnecting with backoff`);
          lost = true;
        }
        throw (failed as PromiseRejectedResult).reason;
      }
      if (returned > 0) {
        const n = returned;
        returned = 0;
        if (!options.allowUnroutable) {
          throw new MqError(
            "UNROUTABLE",
            `${n} message${n === 1 ? "" : "s"} of topic "${topic}" reached no queue: ${
              t.exchange === "" ? "the default exchange" : `exchange "${t.exchange}"`
            } has no binding for routing key ${
              JSON.stringify(returnedKey)
            } (--allow-unroutable drops them instead)`,
          );
        }
        onState?.(
          `dropped ${n} unroutable message${n === 1 ? "" : "s"} of topic "${topic}" (routing key ${
            JSON.stringify(returnedKey)
          })`,
        );
      }
    },
    watch(say) {
      onState = say;
    },
    async close() {
      await client?.close().catch(() => {});
      client = undefined;
    },
  };
}

/** Reads `EXCHANGE:PATTERN`. @throws {MqError} `INVALID_ARGUMENT` */
function parseBind(spec: string): { exchange: string; pattern: string } {
  const at = spec.indexOf(":");
  if (at <= 0) {
    throw new MqError(
      "INVALID_ARGUMENT",
      `--bind ${JSON.stringify(spec)}: expected EXCHANGE:PATTERN (e.g. events:orders.#)`,
    );
  }
  return { exchange: spec.slice(0, at), pattern: spec.slice(at + 1) };
}

/**
 * Brings messages of RabbitMQ queues into a local topic: the queues of
 * `--subjects` (which must exist) and, with `--bind EXCHANGE:PATTERN`, a
 * durable queue named by `--group` bound to those exchanges. Manual acks
 * after each stored batch, a prefetch window, reconnects with backoff (one
 * line per change); without `follow` it stops once the queues are empty and
 * everything taken is stored and acked.
 *
 * @example
 * ```ts ignore
 * const n = await bridgeInto(parseBackendUrl("amqp://guest:guest@127.0.0.1:5672"), mq, {
 *   subjects: ["orders"], into: "orders", group: "bridge", follow: false,
 * });
 * ```
 * @throws {MqError} `INVALID_URL`, `INVALID_ARGUMENT` (a queue or exchange
 * that does not exist, a bad `--bind`), `UNREACHABLE`, or the target's errors
 */
export async function bridgeInto(
  url: BackendUrl,
  target: Mq,
  options: IntoOptions,
): Promise<number> {
  const t = parseAmqpUrl(url);
  const binds = (options.bind ?? []).map(parseBind);
  const queues = [...options.subjects];
  if (binds.length > 0) queues.push(options.group);
  if (queues.length === 0) {
    throw new MqError(
      "INVALID_ARGUMENT",
      "--from amqp:// needs --subjects QUEUE or --bind EXCHANGE:PATTERN",
    );
  }
  const say = (line: string) => options.onState?.(line);
  const signal = options.signal;
  let total = 0;
  let client: AMQPClient | undefined = await connect(t);

  /** Checks queues and exchanges, declares and binds the group's queue. */
  const prepare = async (c: AMQPClient) => {
    for (const q of options.subjects) {
      const ch = await c.channel();
      try {
        await ch.queueDeclare(q, { passive: true });
        await ch.close();
      } catch (e) {
        if (notFound(e)) {
          throw new MqError(
            "INVALID_ARGUMENT",
            `queue ${JSON.stringify(q)} does not exist on ${t.shown}`,
          );
        }
        throw e;
      }
    }
    if (binds.length === 0) return;
    const ch = await c.channel();
    await ch.queueDeclare(options.group, { durable: true, autoDelete: false, exclusive: false });
    for (const b of binds) {
      try {
        await ch.queueBind(options.group, b.exchange, b.pattern);
      } catch (e) {
        if (notFound(e)) {
          throw new MqError(
            "INVALID_ARGUMENT",
            `--bind ${b.exchange}:${b.pattern}: exchange ${
              JSON.stringify(b.exchange)
            } does not exist on ${t.shown}`,
          );
        }
        throw e;
      }
    }
    await ch.close();
  };

  /** One connection's life: consume until stopped, drained, or the connection fails. */
  const session = async (c: AMQPClient): Promise<"done" | "stopped"> => {
    const ch = await c.channel();
    await ch.prefetch(t.prefetch);
    const buffer: { queue: string; m: AMQPMessage }[] = [];
    // Half the prefetch window: the broker keeps sending while a window is stored.
    const windowMessages = Math.max(1, Math.min(BRIDGE_WINDOW.messages, t.prefetch >> 1));
    let wake: (() => void) | undefined;
    let lastDelivery = Date.now();
    let failure: Error | undefined;
    const poke = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    c.onerror = (e) => {
      failure = e;
      poke();
    };
    const onAbort = () => poke();
    signal?.addEventListener("abort", onAbort);
    try {
      for (const q of queues) {
        await ch.basicConsume(q, { noAck: false }, (m) => {
          buffer.push({ queue: q, m });
          lastDelivery = Date.now();
          if (buffer.length === 1 || buffer.length >= windowMessages) poke();
        });
      }
      for (;;) {
        if (failure || c.closed) throw failure ?? new Error("the connection closed");
        if (signal?.aborted) return "stopped";
        if (buffer.length === 0) {
          if (!options.follow && Date.now() - lastDelivery >= 200) {
            let ready = 0;
            const probe = await c.channel();
            for (const q of queues) {
              ready += (await probe.queueDeclare(q, { passive: true })).messageCount;
            }
            await probe.close();
            if (ready === 0 && buffer.length === 0) return "done";
          }
          await new Promise<void>((r) => {
            wake = r;
            setTimeout(poke, 100);
          });
          continue;
        }
        // Let a burst fill a window before it is stored: storing costs about
        // the same for one message as for a thousand.
        for (let seen = -1; buffer.length < windowMessages && buffer.length !== seen;) {
          seen = buffer.length;
          await new Promise((r) => setTimeout(r, 5));
        }
        // Stored and acked a window at a time (at most BRIDGE_WINDOW's messages
        // and bytes), so that only one window's copies are held at once.
        const end = windowEnd(
          buffer,
          0,
          windowMessages,
          BRIDGE_WINDOW.bytes,
          (b) => b.m.bodySize,
        );
        const batch = buffer.splice(0, end);
        // At once for messages with a message-id; a promise only for those without.
        const out: OutgoingMessage[] = new Array(batch.length);
        let later: Promise<void>[] | undefined;
        for (let i = 0; i < batch.length; i++) {
          const { queue, m } = batch[i];
          const now = incomingNow(queue, m);
          if (now) out[i] = now;
          else (later ??= []).push(incoming(queue, m).then((o) => void (out[i] = o)));
        }
        if (later) await Promise.all(later);
        const last = batch[batch.length - 1].m.deliveryTag;
        batch.length = 0;
        const r = await target.publishBatch(options.into, out);
        total += r.count;
        // Delivery tags grow on a channel: one ack settles the whole window.
        await ch.basicAck(last, true);
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  };

  let failing = false;
  try {
    for (let attempt = 1;; attempt++) {
      if (signal?.aborted) break;
      try {
        client ??= await connect(t);
        await prepare(client);
        if (failing) say(`reconnected to ${t.shown}`);
        else say(`reading ${queues.join(", ")} from ${t.shown}`);
        failing = false;
        attempt = 0;
        const end = await session(client);
        if (end === "done" || end === "stopped") break;
      } catch (e) {
        if (isFatal(e) || signal?.aborted) throw e;
        if (!failing) {
          say(`disconnected from ${t.shown} (${(e as Error).message}); reconnecting with backoff`);
        }
        failing = true;
        const c = client;
        client = undefined;
        c?.close().catch(() => {});
        await new Promise((r) =>
          setTimeout(r, backoffDelay(Math.max(attempt, 1), { baseMs: 200, maxMs: 5000 }))
        );
      }
    }
  } finally {
    await client?.close().catch(() => {});
  }
  return total;
}
