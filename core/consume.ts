/**
 * `consume`: run a handler for each message of a group with bounded
 * concurrency; a handler that resolves acks, one that throws nacks (retried
 * with backoff, dead-lettered after the last attempt).
 *
 * @module
 */
import { type Clock, systemClock } from "./clock.ts";
import type { ReceivedMessage } from "./message.ts";
import type { Subscription } from "./subscription.ts";
import type { SubscribeOptions } from "./types.ts";

/** Options of {@link consume}. */
export interface ConsumeOptions extends Omit<SubscribeOptions, "group"> {
  /** The group. */
  group: string;
  /** Handlers running at once. @default 1 */
  concurrency?: number;
  /** Messages claimed ahead of the handlers (one state write per batch). @default 256 */
  prefetch?: number;
}

/** What a consume run did. */
export interface ConsumeResult {
  /** Messages whose handler resolved. */
  acked: number;
  /** Handler failures (each retried or dead-lettered). */
  failed: number;
}

/** Runs `handler` over a subscription; resolves when it ends. Leases are extended on `clock`'s interval. */
export async function consume(
  sub: Subscription,
  options: ConsumeOptions,
  handler: (m: ReceivedMessage) => unknown | Promise<unknown>,
  clock: Clock = systemClock,
): Promise<ConsumeResult> {
  const concurrency = Math.max(1, options.concurrency ?? 1);
  const prefetch = Math.max(concurrency, options.prefetch ?? 256);
  const result: ConsumeResult = { acked: 0, failed: 0 };
  const running = new Set<Promise<void>>();
  const run = async (m: ReceivedMessage) => {
    try {
      await handler(m);
      m.ack();
      result.acked++;
    } catch (e) {
      m.nack({ reason: e instanceof Error ? e.message : String(e) });
      result.failed++;
    }
  };
  // Leases are extended while handlers hold them.
  const visibility = options.visibilityMs ?? 30_000;
  const heartbeat = clock.setInterval(
    () => void sub.extend().catch(() => {}),
    Math.max(50, visibility / 3),
  );
  try {
    for (;;) {
      const batch = await sub.take(prefetch);
      if (batch === null) break;
      if (concurrency === 1) {
        for (const m of batch) await run(m);
        continue;
      }
      for (const m of batch) {
        while (running.size >= concurrency) await Promise.race(running);
        const p = run(m).finally(() => running.delete(p));
        running.add(p);
      }
      // Keep the pipeline full: claim more once half the slots are free.
      while (running.size > concurrency / 2) await Promise.race(running);
    }
    await Promise.all(running);
  } finally {
    heartbeat.cancel();
    await sub.close();
  }
  return result;
}
