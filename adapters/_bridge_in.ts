/**
 * What the Redis and MQTT connectors share coming in: storing a batch with
 * its origin's ids (through the dedup window, or as it is), finding the
 * ids stored since a time (to drop a redelivery), a step retried with
 * backoff (one line when it starts failing, one when it works again), and a
 * sleep that a signal cuts short.
 *
 * @module
 */
import { isFatal } from "../core/bridge.ts";
import { backoffDelay } from "../core/retry.ts";
import type { Mq, OutgoingMessage, PublishResult } from "../core/client.ts";
import { batchOf, type RecordMeta } from "../core/record.ts";
import { MqError } from "../core/errors.ts";

const enc = new TextEncoder();

/**
 * Stores `messages` in `topic` as they are, ids included, but not through
 * the topic's dedup window: for a connector whose ids do not tell a
 * redelivery (MQTT's, which only a publisher sets).
 *
 * @example
 * ```ts
 * import { Mq } from "../core/client.ts";
 * import { MemoryAdapter } from "./memory/mod.ts";
 * import { storeAsIs } from "./_bridge_in.ts";
 * const mq = new Mq(new MemoryAdapter());
 * (await storeAsIs(mq, "t", [{ payload: "x", id: "redis:s:1-0" }])).count; // 1
 * ```
 */
export function storeAsIs(
  target: Mq,
  topic: string,
  messages: OutgoingMessage[],
): Promise<PublishResult> {
  return target.publishRecords(topic, recordsOf(messages), { deduplicate: false });
}

/**
 * Stores `messages` in `topic` with their ids through the topic's dedup
 * window (native, decided with the append, on every built-in backend), so
 * that a redelivery within the window is dropped; `duplicates` says how many
 * were.
 *
 * @example
 * ```ts
 * import { Mq } from "../core/client.ts";
 * import { MemoryAdapter } from "./memory/mod.ts";
 * import { storeWithIds } from "./_bridge_in.ts";
 * const mq = new Mq(new MemoryAdapter());
 * await storeWithIds(mq, "t", [{ payload: "x", id: "redis:s:1-0" }]);
 * (await storeWithIds(mq, "t", [{ payload: "x", id: "redis:s:1-0" }])).duplicates; // 1
 * ```
 */
export function storeWithIds(
  target: Mq,
  topic: string,
  messages: OutgoingMessage[],
): Promise<PublishResult> {
  return target.publishRecords(topic, recordsOf(messages));
}

/** `messages` as a batch: payload bytes, ids, keys and headers. */
function recordsOf(messages: OutgoingMessage[]) {
  const payloads: Uint8Array[] = new Array(messages.length);
  const meta: (RecordMeta | undefined)[] = new Array(messages.length);
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    payloads[i] = typeof m.payload === "string" ? enc.encode(m.payload) : m.payload;
    meta[i] = { id: m.id, key: m.key, headers: m.headers };
  }
  return batchOf(payloads, meta);
}

/**
 * The ids starting with `prefix` of the messages stored in `topic` at or
 * after `since` (ms since the epoch); none when the topic does not exist.
 *
 * @example
 * ```ts
 * import { Mq } from "../core/client.ts";
 * import { MemoryAdapter } from "./memory/mod.ts";
 * import { storedIdsSince } from "./_bridge_in.ts";
 * const mq = new Mq(new MemoryAdapter());
 * await mq.publish("t", "x", { id: "redis:s:1-0" });
 * (await storedIdsSince(mq, "t", 0, "redis:s:")).size; // 1
 * ```
 */
export async function storedIdsSince(
  target: Mq,
  topic: string,
  since: number,
  prefix: string,
): Promise<Set<string>> {
  const ids = new Set<string>();
  const sub = target.subscribe(topic, { from: new Date(since), follow: false, batchSize: 4096 });
  try {
    for (;;) {
      const batch = await sub.take(8192);
      if (batch === null) break;
      for (const m of batch) if (m.record.id?.startsWith(prefix)) ids.add(m.record.id);
    }
  } catch (e) {
    if (!MqError.is(e, "TOPIC_NOT_FOUND")) throw e;
  } finally {
    await sub.close();
  }
  return ids;
}

/**
 * Runs steps with backoff: `run(what, fn)` retries `fn` until it succeeds
 * (undefined once `signal` stopped it); an error {@link isFatal} says no
 * retry mends, or one `fatal` says so, is thrown at once.
 *
 * @example
 * ```ts
 * import { retrier } from "./_bridge_in.ts";
 * const run = retrier({ onState: (line) => console.error(line) });
 * await run("reading", () => Promise.resolve(1)); // 1
 * ```
 */
export function retrier(options: {
  signal?: AbortSignal;
  onState?: (line: string) => void;
  fatal?: (e: unknown) => boolean;
  /** The line once a failing step works again. @default "bringing messages in again" */
  recovered?: string;
}): <T>(what: string, fn: () => Promise<T>) => Promise<T | undefined> {
  let failing = false;
  const { signal } = options;
  return async (what, fn) => {
    for (let attempt = 1;; attempt++) {
      if (signal?.aborted) return undefined;
      try {
        const r = await fn();
        if (failing) {
          failing = false;
          options.onState?.(options.recovered ?? "bringing messages in again");
        }
        return r;
      } catch (e) {
        if (signal?.aborted) return undefined;
        if (isFatal(e) || options.fatal?.(e)) throw e;
        if (!failing) {
          failing = true;
          options.onState?.(`${what} failed (${(e as Error).message}); retrying with backoff`);
        }
        await sleep(backoffDelay(attempt, { baseMs: 100, maxMs: 5000 }), signal);
      }
    }
  };
}

/**
 * Resolves after `ms`, or at once when `signal` aborts.
 *
 * @example
 * ```ts
 * import { sleep } from "./_bridge_in.ts";
 * await sleep(1);
 * ```
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * The headers a connector put in one JSON field or property (`mq-headers`:
 * headers whose names its own fields take), or undefined when `text` is not
 * such a value.
 *
 * @example
 * ```ts
 * import { headersFromJson } from "./_bridge_in.ts";
 * headersFromJson('{"payload":"p"}'); // { payload: "p" }
 * headersFromJson("[1]"); // undefined
 * ```
 */
export function headersFromJson(text: string): Record<string, string> | undefined {
  try {
    const v = JSON.parse(text);
    if (!v || typeof v !== "object" || Array.isArray(v)) return undefined;
    if (!Object.values(v).every((x) => typeof x === "string")) return undefined;
    return v;
  } catch {
    return undefined;
  }
}
