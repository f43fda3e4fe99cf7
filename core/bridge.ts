/**
 * The bridge: forwards topics of one backend to a sink (another backend, or a
 * broker's subjects) as a group on the source, acking only after the sink has
 * stored a batch. So it resumes after a crash or an outage where it stopped,
 * and loses nothing; message ids travel along, so a resend is deduplicated
 * where the target can (JetStream's `Nats-Msg-Id`, mq's dedup window).
 *
 * @module
 */
import type { Mq } from "./client.ts";
import type { ReceivedMessage } from "./message.ts";
import type { Subscription } from "./subscription.ts";
import type { BackendUrl } from "./backend_url.ts";
import { Router } from "./routing.ts";
import { backoffDelay } from "./retry.ts";
import { MqError, type MqErrorCode } from "./errors.ts";
import { compileTarget, type TargetOf } from "./bridge_target.ts";
import { leasedUntil } from "./_bridge_leases.ts";

/** Errors of a send that no retry mends: the bridge stops with them. */
const FATAL: ReadonlySet<MqErrorCode> = new Set([
  "MESSAGE_TOO_LARGE",
  "INVALID_ARGUMENT",
  "INVALID_NAME",
  "INVALID_URL",
  "MALFORMED_MESSAGE",
  "CONFLICT",
  "CLOSED",
  "UNROUTABLE",
]);

/**
 * True when no retry mends `e` (bridges in either direction stop with it):
 * an {@link MqError} of a kind such as `MESSAGE_TOO_LARGE` or `INVALID_URL`.
 */
export function isFatal(e: unknown): boolean {
  return MqError.is(e) && FATAL.has(e.code);
}

/** Where bridged messages go. */
export interface BridgeSink {
  /**
   * Stores `messages` of `topic`; resolves once the target has them. A
   * failure is retried with backoff, unless it is an {@link MqError} of a
   * kind no retry mends (`MESSAGE_TOO_LARGE`, `INVALID_ARGUMENT`, ...),
   * which stops the bridge.
   */
  send(topic: string, messages: ReceivedMessage[]): Promise<void>;
  /**
   * Optional: reports the target's connection state as it changes, one line
   * per change ("disconnected from ...", "reconnected to ...").
   */
  watch?(onState: (line: string) => void): void;
  /**
   * Optional: how many sends may be in flight at once, for a sink that
   * stores overlapping sends in the order they were called (a pipelined
   * connection). {@link runBridge} then starts the next window before the
   * last one is confirmed, and still acks each only once it and those
   * before it are. @default 1
   */
  inFlight?: number;
  /** Releases the sink. */
  close(): Promise<void>;
}

/**
 * Options every connector's sink takes (`mq bridge --to URL`).
 *
 * @example
 * ```ts
 * import type { SinkOptions } from "./bridge.ts";
 * const options: SinkOptions = { target: "mq.{topic}.{key}", onState: (l) => console.error(l) };
 * ```
 */
export interface SinkOptions {
  /**
   * Where each message goes: a template of `{topic}`, `{key}`, `{partition}`,
   * `{header.NAME}` (see `compileTarget` in `bridge_target.ts`): the NATS
   * subject, the Redis stream key, the MQTT topic, the AMQP routing key, the
   * Kafka topic. @default "{topic}"
   */
  target?: string;
  /**
   * Brokers that can tell a message went nowhere (AMQP's mandatory flag):
   * accept that rather than fail. @default false
   */
  allowUnroutable?: boolean;
  /** Told of each change of the connection's state, as one line. */
  onState?: (line: string) => void;
}

/**
 * Options of bringing messages in from a broker (`mq bridge --from URL`).
 *
 * @example
 * ```ts
 * import type { IntoOptions } from "./bridge.ts";
 * const options: IntoOptions = {
 *   subjects: ["sensors/#"],
 *   into: "sensors",
 *   group: "bridge",
 *   follow: false,
 * };
 * ```
 */
export interface IntoOptions {
  /** What to bring in: subjects, stream keys, topic filters, queues, topics (per broker). */
  subjects: string[];
  /** The local topic to store them in. */
  into: string;
  /** Names the broker-side position (durable consumer, consumer group, client id). */
  group: string;
  /** Keep bringing new messages in; false drains what is there and returns. */
  follow: boolean;
  /** Stops the bridge. */
  signal?: AbortSignal;
  /** Told of each state change, as one line. */
  onState?: (line: string) => void;
  /** AMQP: `EXCHANGE:PATTERN` bindings of the bridge's own queue (repeatable). */
  bind?: string[];
}

/**
 * What one broker's module exports (`adapters/<broker>/_bridge.ts`), loaded by
 * its URL scheme only when a bridge uses it.
 *
 * Every connector keeps to these rules:
 * - at least once: `subjectSink(...).send` resolves only once the broker
 *   confirmed every message of the batch (so the local position moves only
 *   then); `bridgeInto` acks to the broker only after `publishBatch`
 *   resolved;
 * - every incoming message gets a stable id from its origin where there is
 *   one (`redis:<stream>:<entry-id>`, `kafka:<topic>:<partition>:<offset>`,
 *   ...), so mq's dedup window drops a redelivery; the origin is kept as a
 *   header;
 * - a bounded window of unconfirmed messages, in count and bytes (memory
 *   stays flat): going out, {@link runBridge} hands a sink at most
 *   {@link BRIDGE_WINDOW} per send; coming in, a connector stores and acks
 *   batches cut by {@link windowEnd} to the same bound (Kafka: a fetch of
 *   up to 8,192 small records at once, within the same bytes);
 * - a broker outage is retried with backoff, one line per change of state;
 *   {@link isFatal} errors stop the bridge (`INVALID_ARGUMENT`, `INVALID_URL`
 *   map to exit 2).
 *
 * @example
 * ```ts
 * import type { BrokerConnector } from "./bridge.ts";
 * async function mirror(connector: BrokerConnector, url: import("./backend_url.ts").BackendUrl) {
 *   const sink = await connector.subjectSink(url, { target: "{topic}" });
 *   await sink.close();
 * }
 * ```
 */
export interface BrokerConnector {
  /** A sink onto the broker (`mq bridge --to URL`). */
  subjectSink(url: BackendUrl, options: SinkOptions): Promise<BridgeSink>;
  /** Brings `options.subjects` into `options.into`; resolves to how many messages were stored. */
  bridgeInto(url: BackendUrl, target: Mq, options: IntoOptions): Promise<number>;
}

/** Options of {@link runBridge}. */
export interface BridgeOptions {
  /** Topic patterns to forward (`*` one word, `#` any words). @default ["#"] */
  topics?: string[];
  /** The source group that keeps the bridge's position. @default "bridge" */
  group?: string;
  /** Keep forwarding new messages (and new topics); false drains and returns. @default true */
  follow?: boolean;
  /** Stops the bridge. */
  signal?: AbortSignal;
  /**
   * How long a batch being forwarded is leased (ms): after a crash, the
   * batch is forwarded again (a duplicate the target drops by id) this long after. @default 30000
   */
  visibilityMs?: number;
  /** Told of each state change, as one line ("forwarding", "target unreachable, retrying", ...). */
  onState?: (line: string) => void;
  /**
   * How long a target may stay unavailable before the run fails with
   * `UNREACHABLE` (ms): a drain (`follow: false`) should not wait for ever
   * on a broker that is gone. What was forwarded before stays acked.
   * @default Infinity
   */
  retryForMs?: number;
  /**
   * The window of unconfirmed messages: a send to the sink holds at most
   * this many messages and about this many payload bytes (a single larger
   * message goes alone), and the next send starts only once the sink
   * confirmed it (or, for a sink with {@link BridgeSink.inFlight}, once
   * fewer than that many are unconfirmed). A slow target slows the bridge;
   * memory stays flat.
   * @default { messages: 1024, bytes: 1 MiB }
   */
  window?: { messages?: number; bytes?: number };
}

/** The default window of unconfirmed messages of a bridge (see {@link BridgeOptions.window}). */
export const BRIDGE_WINDOW: Readonly<{ messages: number; bytes: number }> = Object.freeze({
  messages: 1024,
  bytes: 1 << 20,
});

/**
 * The end of the window that starts at `from` in `batch`: at most `messages`
 * messages and `bytes` bytes (each message's `sizeOf`), but at least one
 * message. Connectors use it both ways: a send, a store and its ack.
 *
 * @example
 * ```ts
 * import { windowEnd } from "./bridge.ts";
 * const sizes = [600, 600, 10];
 * windowEnd(sizes, 0, 1024, 1000, (n) => n); // 1: the second would pass 1000 bytes
 * windowEnd(sizes, 1, 1024, 1000, (n) => n); // 3
 * ```
 */
export function windowEnd<T>(
  batch: readonly T[],
  from: number,
  messages: number,
  bytes: number,
  sizeOf: (m: T) => number,
): number {
  const last = Math.min(batch.length, from + messages);
  if (from >= last) return from;
  let size = sizeOf(batch[from]);
  let to = from + 1;
  for (; to < last; to++) {
    const next = size + sizeOf(batch[to]);
    if (next > bytes) break;
    size = next;
  }
  return to;
}

/** The payload bytes of a message (the size {@link windowEnd} counts going out). */
const payloadSize = (m: ReceivedMessage) => m.payload.length;

/** What a bridge run forwarded, per topic. */
export type BridgeResult = Record<string, number>;

/** Forwards matching topics of `source` to `sink` until drained or stopped. */
export async function runBridge(
  source: Mq,
  sink: BridgeSink,
  options: BridgeOptions = {},
): Promise<BridgeResult> {
  const patterns = options.topics?.length ? options.topics : ["#"];
  const matcher = new Router(
    "topic",
    patterns.map((key) => ({ destination: "x", destinationKind: "topic", key })),
  );
  const group = options.group ?? "bridge";
  const windowMessages = Math.max(1, options.window?.messages ?? BRIDGE_WINDOW.messages);
  const windowBytes = Math.max(1, options.window?.bytes ?? BRIDGE_WINDOW.bytes);
  const result: BridgeResult = {};
  const running = new Map<string, Promise<void>>();
  // One line per change of state: forwarding, or failing (however often, however it fails).
  let failing = false;
  const retryForMs = options.retryForMs ?? Infinity;
  let forwarding = false;
  const say = (line: string) => options.onState?.(line);
  sink.watch?.(say);
  // Stops every topic's forwarding: the caller's signal, or the first failure.
  const stop = new AbortController();
  if (options.signal?.aborted) stop.abort();
  options.signal?.addEventListener("abort", () => stop.abort(), { once: true });
  let failure: { error: unknown } | undefined;

  const depth = Math.max(1, Math.floor(sink.inFlight ?? 1));

  /**
   * Sends the windows of `sub` to the sink, up to `depth` at once (a sink
   * that keeps its sends in call order), and acks each only once it and
   * every window before it were confirmed. A failure waits for the other
   * sends in flight to end, then sends again from the first unconfirmed
   * window, in order (at least once: those after it may be stored twice).
   * With several in flight, the next batch is read while they are sent.
   */
  const pipeline = async (sub: Subscription, topic: string) => {
    /** Windows read and not sent (or to be sent again), in order. */
    const queue: ReceivedMessage[][] = [];
    /** Windows sent and not confirmed yet, in order, with how their send ended. */
    const flying: { batch: ReceivedMessage[]; sent: Promise<unknown> }[] = [];
    let reading: Promise<ReceivedMessage[] | null> | undefined;
    let ended = false;
    // When the sends began to fail (each topic counts its own), and how often.
    let failingSince: number | undefined;
    let attempt = 0;
    const ok = Symbol("sent");
    try {
      for (;;) {
        while (flying.length < depth && queue.length > 0 && !stop.signal.aborted) {
          const batch = queue.shift()!;
          // Settled to a value: a failure is seen in order, never unhandled.
          const sent = sink.send(topic, batch).then(() => ok, (e) => ({ e }));
          flying.push({ batch, sent });
        }
        // Read ahead only where several windows may be in flight: for one,
        // a read ahead held a second window and was no faster (Kafka, 1M).
        if (
          !ended && !reading && queue.length === 0 && !stop.signal.aborted &&
          (depth > 1 || flying.length === 0)
        ) {
          reading = sub.take();
          reading.catch(() => {}); // awaited below; a failure meanwhile is not unhandled
        }
        if (flying.length === 0) {
          if (!reading) break;
          const taken = await reading;
          reading = undefined;
          if (taken === null) ended = true;
          else {
            for (let from = 0; from < taken.length;) {
              const to = windowEnd(taken, from, windowMessages, windowBytes, payloadSize);
              queue.push(from === 0 && to === taken.length ? taken : taken.slice(from, to));
              from = to;
            }
          }
          continue;
        }
        const head = flying[0];
        const outcome = await head.sent;
        if (outcome === ok) {
          flying.shift();
          if (!forwarding || failing) say(failing ? "forwarding again" : "forwarding");
          forwarding = true;
          failing = false;
          failingSince = undefined;
          attempt = 0;
          sub.ackAll(head.batch);
          result[topic] = (result[topic] ?? 0) + head.batch.length;
          continue;
        }
        // The first unconfirmed window failed: let the others end, then
        // send again from it, in order.
        const e = (outcome as { e: unknown }).e;
        await Promise.all(flying.map((f) => f.sent));
        queue.unshift(...flying.splice(0).map((f) => f.batch));
        if (stop.signal.aborted || isFatal(e)) throw e;
        if (!failing) {
          say(`target unavailable (${(e as Error).message}); retrying with backoff`);
        }
        failingSince ??= source.clock.now();
        failing = true;
        const delay = backoffDelay(++attempt, { baseMs: 100, maxMs: 5000 });
        if (source.clock.now() - failingSince + delay > retryForMs) {
          const n = Object.values(result).reduce((a, b) => a + b, 0);
          throw new MqError(
            "UNREACHABLE",
            `the target stayed unavailable for ${
              Math.round((source.clock.now() - failingSince) / 1000)
            } s (${(e as Error).message}); ${n} message${
              n === 1 ? "" : "s"
            } forwarded before, the rest stay for the next run`,
            { cause: e },
          );
        }
        await source.clock.sleep(delay, stop.signal);
        if (stop.signal.aborted) throw e;
      }
    } finally {
      // Sends still out end before the subscription releases their windows
      // (a read ahead ends when the subscription closes).
      await Promise.all(flying.map((f) => f.sent));
    }
  };

  const forward = async (topic: string) => {
    // A run killed mid-way (kill -9) left its last windows leased: they go
    // first, once their leases expired, then the ones after them, in order.
    const until = await leasedUntil(source, topic, group);
    if (until !== undefined && !stop.signal.aborted) {
      const s = Math.ceil((until - source.clock.now()) / 1000);
      say(
        `${topic}: waiting ${s} s for the leases of an earlier run to expire (its messages go first)`,
      );
      await source.clock.sleep(until - source.clock.now() + 1, stop.signal);
    }
    const sub = source.subscribe(topic, {
      group,
      follow: options.follow ?? true,
      signal: stop.signal,
      // Reads lease as many windows as may be in flight (one for most sinks):
      // memory stays at what the sink holds.
      batchSize: windowMessages * depth,
      batchBytes: windowBytes * depth,
      visibilityMs: options.visibilityMs,
    });
    try {
      await pipeline(sub, topic);
    } finally {
      await sub.close();
    }
  };

  for (;;) {
    for (const t of await source.topics.list()) {
      if (running.has(t.name) || matcher.route(t.name).length === 0) continue;
      if (t.name.startsWith("mq-reply.")) continue;
      running.set(
        t.name,
        forward(t.name).catch((error) => {
          failure ??= { error };
          stop.abort();
        }),
      );
    }
    if (options.follow === false || stop.signal.aborted) break;
    // Look for new topics now and then.
    await source.clock.sleep(1000, stop.signal);
  }
  await Promise.all(running.values());
  if (failure) throw failure.error;
  return result;
}

/**
 * A sink that publishes into another mq backend, keeping keys, headers,
 * times and explicit ids (which the target's dedup window then guards); each
 * message goes to the topic of its name, or the one `options.target` names.
 *
 * @example
 * ```ts
 * import { Mq } from "./client.ts";
 * import { MemoryAdapter } from "../adapters/memory/mod.ts";
 * import { mqSink, runBridge } from "./bridge.ts";
 * const source = new Mq(new MemoryAdapter());
 * await source.publish("orders", "one");
 * const sink = mqSink(new Mq(new MemoryAdapter()), { target: "copy.{topic}" });
 * await runBridge(source, sink, { follow: false }); // { orders: 1 }, into "copy.orders"
 * await sink.close();
 * ```
 * @throws {MqError} `INVALID_ARGUMENT` for a bad `options.target`
 */
export function mqSink(target: Mq, options: SinkOptions = {}): BridgeSink {
  const targetOf = options.target === undefined || options.target === "{topic}"
    ? undefined
    : compileTarget(options.target);
  const publish = (topic: string, messages: ReceivedMessage[]) =>
    target.publishBatch(
      topic,
      messages.map((m) => ({
        payload: m.payload,
        key: m.key,
        id: m.record.id,
        headers: m.record.headers,
        timestamp: m.timestamp,
      })),
    );
  return {
    async send(topic, messages) {
      if (!targetOf) {
        await publish(topic, messages);
        return;
      }
      for (const [to, list] of groupByTarget(topic, messages, targetOf)) {
        await publish(to, list);
      }
    },
    close: () => target.close(),
  };
}

/**
 * The messages of a batch by where `targetOf` sends them, each list in the
 * batch's order; every target is named before anything is sent, so a
 * message the template cannot name stops a bridge with none of its batch out.
 *
 * @example
 * ```ts
 * import { groupByTarget } from "./bridge.ts";
 * import { compileTarget } from "./bridge_target.ts";
 * groupByTarget("orders", [], compileTarget("{topic}.{key}")).size; // 0
 * ```
 * @throws {MqError} `INVALID_ARGUMENT` from `targetOf`
 */
export function groupByTarget(
  topic: string,
  messages: ReceivedMessage[],
  targetOf: TargetOf,
): Map<string, ReceivedMessage[]> {
  const out = new Map<string, ReceivedMessage[]>();
  for (const m of messages) {
    const to = targetOf(topic, m);
    const list = out.get(to);
    if (list) list.push(m);
    else out.set(to, [m]);
  }
  return out;
}
