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
import { Router } from "./routing.ts";
import { backoffDelay } from "./retry.ts";
import { MqError, type MqErrorCode } from "./errors.ts";
import type { BackendUrl } from "./backend_url.ts";

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
  /** Releases the sink. */
  close(): Promise<void>;
}

/** Options every connector's sink takes. */
export interface SinkOptions {
  /** Where each message goes (a template of `compileTarget`, core/bridge_target.ts). @default "{topic}" */
  target?: string;
  /** Drop a message no queue takes (AMQP `mandatory` returns) instead of failing. @default false */
  allowUnroutable?: boolean;
  /** Told of each change of the connection's state, as one line. */
  onState?: (line: string) => void;
}

/** Options of bringing messages in. */
export interface IntoOptions {
  /** What to read: subjects, stream keys, topic filters, queues or topics. */
  subjects: string[];
  /** The local topic to store them in. */
  into: string;
  /** Names the broker-side position (durable consumer, consumer group, queue). */
  group: string;
  /** Keep bringing new messages in; false drains what is there and returns. */
  follow: boolean;
  /** Stops the bridge. */
  signal?: AbortSignal;
  /** Told of each state change, as one line. */
  onState?: (line: string) => void;
  /** AMQP: `EXCHANGE:PATTERN` bindings of a durable queue named by `group`. */
  bind?: string[];
}

/**
 * What one broker's module exports (adapters/<broker>/bridge.ts).
 *
 * @example
 * ```ts ignore
 * const connector: BrokerConnector = await import("../adapters/kafka/bridge.ts");
 * const sink = await connector.subjectSink(parseBackendUrl("kafka://127.0.0.1:9092"), {});
 * ```
 */
export interface BrokerConnector {
  /** A sink that sends local topics to the broker (`mq bridge --to URL`). */
  subjectSink(url: BackendUrl, options: SinkOptions): Promise<BridgeSink>;
  /** Brings messages of the broker into `options.into`; resolves to how many were stored. */
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
  /** Told of each state change, as one line ("forwarding", "target unreachable, retrying", ...). */
  onState?: (line: string) => void;
}

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
  const result: BridgeResult = {};
  const running = new Map<string, Promise<void>>();
  // One line per change of state: forwarding, or failing (however often, however it fails).
  let failing = false;
  let forwarding = false;
  const say = (line: string) => options.onState?.(line);
  sink.watch?.(say);
  // Stops every topic's forwarding: the caller's signal, or the first failure.
  const stop = new AbortController();
  if (options.signal?.aborted) stop.abort();
  options.signal?.addEventListener("abort", () => stop.abort(), { once: true });
  let failure: { error: unknown } | undefined;

  const forward = async (topic: string) => {
    const sub = source.subscribe(topic, {
      group,
      follow: options.follow ?? true,
      signal: stop.signal,
      batchSize: 1024,
    });
    try {
      for (;;) {
        const batch = await sub.take(8192);
        if (batch === null) break;
        for (let attempt = 1;; attempt++) {
          try {
            await sink.send(topic, batch);
            if (!forwarding || failing) say(failing ? "forwarding again" : "forwarding");
            forwarding = true;
            failing = false;
            break;
          } catch (e) {
            if (stop.signal.aborted || isFatal(e)) throw e;
            if (!failing) {
              say(`target unavailable (${(e as Error).message}); retrying with backoff`);
            }
            failing = true;
            await new Promise((r) =>
              setTimeout(r, backoffDelay(attempt, { baseMs: 100, maxMs: 5000 }))
            );
          }
        }
        sub.ackAll(batch);
        result[topic] = (result[topic] ?? 0) + batch.length;
      }
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
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, 1000);
      stop.signal.addEventListener("abort", done, { once: true });
      function done() {
        clearTimeout(timer);
        stop.signal.removeEventListener("abort", done);
        resolve();
      }
    });
  }
  await Promise.all(running.values());
  if (failure) throw failure.error;
  return result;
}

/**
 * A sink that publishes into another mq backend, keeping keys, headers,
 * times and explicit ids (which the target's dedup window then guards).
 */
export function mqSink(target: Mq): BridgeSink {
  return {
    async send(topic, messages) {
      await target.publishBatch(
        topic,
        messages.map((m) => ({
          payload: m.payload,
          key: m.key,
          id: m.record.id,
          headers: m.record.headers,
          timestamp: m.timestamp,
        })),
      );
    },
    close: () => target.close(),
  };
}
