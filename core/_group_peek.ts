/**
 * Peeking at a group: the next messages it would get, without taking them.
 *
 * @module
 */
import type { StorageAdapter } from "./adapter.ts";
import { ReceivedMessage } from "./message.ts";
import { claim, newCursor } from "./_lease_table.ts";
import { loadGroup } from "./_group_store.ts";
import { loadCancelled } from "./_delayed_index.ts";
import { retainedSince, type TopicConfig } from "./topic_config.ts";
import { readOne } from "./_receipts.ts";

/**
 * The next `count` messages group `group` of `topic` would get, without
 * taking them (what `Mq.peek` answers): the claim a consumer would make, on
 * a copy of the group's state that is never written back, less what a
 * consumer skips (expired, before retention, not yet due, cancelled).
 */
export async function peekGroup(
  adapter: StorageAdapter,
  topic: string,
  config: TopicConfig,
  group: string,
  count: number,
  now: number,
): Promise<ReceivedMessage[]> {
  const state = (await loadGroup(adapter, topic, group)) ?? { partitions: {} };
  const since = retainedSince(config, now);
  let cancelled: Set<string> | undefined;
  const out: ReceivedMessage[] = [];
  let left = count;
  for (let p = 0; p < config.partitions && left > 0; p++) {
    const bounds = await adapter.bounds(topic, p);
    // Claims on a copy of the state (never written back), again after
    // skipping what a consumer would not get: the next `count` it would.
    const cursor = state.partitions[p] ?? newCursor(bounds.start);
    let claims = claim(cursor, bounds, left, now, Infinity, "peek");
    while (claims.length > 0 && left > 0) {
      for (const c of claims) {
        for (let o = c.from; o < c.to && left > 0; o++) {
          const r = await readOne(adapter, topic, p, o);
          if (
            !r || (since !== undefined && r.timestamp < since) ||
            (r.expiresAt !== undefined && r.expiresAt <= now) || (r.deliverAt ?? 0) > now
          ) continue;
          if (r.deliverAt !== undefined) {
            cancelled ??= await loadCancelled(adapter, topic);
            if (cancelled.has(r.id ?? `${p}-${r.offset}`)) continue;
          }
          out.push(new ReceivedMessage(topic, p, r, c.attempt));
          left--;
        }
      }
      claims = left > 0 ? claim(cursor, bounds, left, now, Infinity, "peek") : [];
    }
  }
  return out;
}
