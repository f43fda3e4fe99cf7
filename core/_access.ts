/**
 * The backend under a client, for the core's own modules (dead letters,
 * browsing, overviews) and for adapter authors' tests: not a property of
 * `Mq`, so that a library user goes through the rules the client applies.
 *
 * @module
 */
import type { CorruptionReport, StorageAdapter } from "./adapter.ts";

const adapters = new WeakMap<object, StorageAdapter>();

/**
 * Ties `client` to its backend (done once, by the `Mq` constructor), and
 * tells `onCorrupt` of each stretch of corrupt data the backend skips, once.
 */
export function bindAdapter(
  client: object,
  adapter: StorageAdapter,
  onCorrupt?: (report: CorruptionReport) => void,
): void {
  adapters.set(client, adapter);
  if (!onCorrupt) return;
  const seen = new Set<string>();
  adapter.onCorrupt = (r) => {
    const k = JSON.stringify([r.topic, r.partition, r.location, r.bytes, r.offsets]);
    if (seen.has(k)) return;
    seen.add(k);
    onCorrupt(r);
  };
}

/**
 * The backend of a client.
 *
 * @example
 * ```ts
 * import { Mq } from "./client.ts";
 * import { adapterOf } from "./_access.ts";
 * import { MemoryAdapter } from "../adapters/memory/mod.ts";
 * const mq = new Mq(new MemoryAdapter());
 * await mq.publish("t", "x");
 * console.log(await adapterOf(mq).bounds("t", 0)); // { start: 0, end: 1 }
 * ```
 * @throws {TypeError} for an object that is not a client
 */
export function adapterOf(client: object): StorageAdapter {
  const adapter = adapters.get(client);
  if (!adapter) throw new TypeError("not an mq client");
  return adapter;
}
