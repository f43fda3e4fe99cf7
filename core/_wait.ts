/**
 * Waiting for new records in any of a topic's partitions.
 *
 * @module
 */
import type { StorageAdapter } from "./adapter.ts";

/** Waits until any partition grows past its offset in `next`, or the timeout. */
export async function waitAny(
  adapter: StorageAdapter,
  topic: string,
  next: number[],
  signal: AbortSignal,
  timeoutMs: number,
): Promise<void> {
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    await Promise.race(
      next.map((offset, p) => adapter.waitFor(topic, p, offset, stop.signal, timeoutMs)),
    );
  } finally {
    stop.abort();
    signal.removeEventListener("abort", onAbort);
  }
}
