/**
 * A client on the memory backend and a {@link ManualClock}, for the core's
 * time-driven unit tests (leases, retries, retention, delays).
 *
 * @module
 */
import { MemoryAdapter } from "../adapters/memory/mod.ts";
import { Mq } from "./client.ts";
import { ManualClock } from "./clock.ts";
import type { SubscribeOptions } from "./subscription.ts";

/** A new client whose time stands at 2030-01-01 until the test moves it. */
export function clockedMq(): { mq: Mq; clock: ManualClock; adapter: MemoryAdapter } {
  const clock = new ManualClock(Date.UTC(2030, 0, 1));
  const adapter = new MemoryAdapter();
  return { mq: new Mq(adapter, { clock }), clock, adapter };
}

/**
 * What a group can take right now: a drain that waits for nothing (neither
 * leases held elsewhere nor retries not yet due), as payload text and attempt.
 */
export async function takeNow(
  mq: Mq,
  topic: string,
  group: string,
  options: SubscribeOptions = {},
  settle: "ack" | "keep" | "nack" = "keep",
): Promise<[string, number][]> {
  const sub = mq.subscribe(topic, { group, follow: false, awaitInFlight: false, ...options });
  const out: [string, number][] = [];
  for (;;) {
    const batch = await sub.take(100);
    if (batch === null) break;
    for (const m of batch) {
      out.push([m.text(), m.attempt]);
      if (settle === "ack") m.ack();
      if (settle === "nack") m.nack({ reason: "test" });
    }
    if (settle === "keep") break;
  }
  await sub.close();
  return out;
}
