/**
 * The leases an earlier run of a bridge left on a topic: a run killed
 * mid-batch (kill -9) leaves its last batch leased to a consumer that is
 * gone. A rerun that read on at once would send the messages after that
 * batch before it (it comes again only once its lease expires); so a rerun
 * first waits for those leases to expire, and its first claim then takes
 * them before anything newer (expired leases go first, oldest first).
 *
 * @module
 */
import type { Mq } from "./client.ts";
import { adapterOf } from "./_access.ts";
import { loadGroup } from "./_group_store.ts";

/**
 * When the last lease `group` holds on `topic` expires (ms, on the source's
 * clock), or undefined when none is held now. A group document that cannot
 * be read counts as none (the subscription reports it).
 *
 * @example
 * ```ts
 * import { Mq } from "./client.ts";
 * import { MemoryAdapter } from "../adapters/memory/mod.ts";
 * import { leasedUntil } from "./_bridge_leases.ts";
 * const mq = new Mq(new MemoryAdapter());
 * await leasedUntil(mq, "orders", "bridge"); // undefined: nothing leased
 * ```
 */
export async function leasedUntil(
  source: Mq,
  topic: string,
  group: string,
): Promise<number | undefined> {
  const state = await loadGroup(adapterOf(source), topic, group).catch(() => undefined);
  if (!state) return undefined;
  let until = -Infinity;
  for (const c of Object.values(state.partitions)) {
    for (const l of c.leases) until = Math.max(until, l.until);
  }
  return until > source.clock.now() ? until : undefined;
}
