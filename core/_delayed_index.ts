/**
 * Delayed messages by id, so that one can be cancelled before its time:
 * `["delayed", topic]` maps the ids of messages not yet due to their delivery
 * time; `["cancelled", topic]` maps cancelled ids to the delivery time they
 * had, and keeps them for {@link CANCEL_KEEP_MS} after it, however long the
 * delay was, so that consumers that come later skip them too.
 *
 * @module
 */
import type { StorageAdapter } from "./adapter.ts";
import { MqError } from "./errors.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** How long a cancelled id is kept after the delivery time it had (7 days). */
export const CANCEL_KEEP_MS = 7 * 24 * 3_600_000;

type IdTimes = Record<string, number>;

async function update(
  adapter: StorageAdapter,
  key: string[],
  change: (doc: IdTimes) => void,
): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    const cur = await adapter.getState(key);
    const doc: IdTimes = cur ? JSON.parse(dec.decode(cur.value)) : {};
    change(doc);
    if (await adapter.compareAndSet(key, cur?.version ?? null, enc.encode(JSON.stringify(doc)))) {
      return;
    }
  }
  throw new MqError("CONFLICT", `${key.join("/")} is too busy to update`);
}

/** Drops the entries whose time (plus `keepMs`) has passed. */
function prune(doc: IdTimes, now: number, keepMs: number): void {
  for (const [id, t] of Object.entries(doc)) if (t + keepMs <= now) delete doc[id];
}

/** Notes delayed messages (id → delivery time). */
export function recordDelayed(
  adapter: StorageAdapter,
  topic: string,
  entries: [string, number][],
  now: number,
): Promise<void> {
  return update(adapter, ["delayed", topic], (doc) => {
    prune(doc, now, 0); // a message already due can no longer be cancelled
    for (const [id, t] of entries) doc[id] = t;
  });
}

/**
 * Cancels the delayed message `id`; false when no delayed message with that
 * id waits (unknown, already due, or already cancelled).
 */
export async function cancelDelayed(
  adapter: StorageAdapter,
  topic: string,
  id: string,
  now: number,
): Promise<boolean> {
  let deliverAt: number | undefined;
  await update(adapter, ["delayed", topic], (doc) => {
    deliverAt = doc[id] !== undefined && doc[id] > now ? doc[id] : undefined;
    if (deliverAt !== undefined) delete doc[id];
    prune(doc, now, 0);
  });
  if (deliverAt === undefined) return false;
  await update(adapter, ["cancelled", topic], (doc) => {
    prune(doc, now, CANCEL_KEEP_MS);
    doc[id] = deliverAt!;
  });
  return true;
}

/** The ids of cancelled messages of a topic. */
export async function loadCancelled(
  adapter: StorageAdapter,
  topic: string,
): Promise<Set<string>> {
  const cur = await adapter.getState(["cancelled", topic]);
  return new Set(cur ? Object.keys(JSON.parse(dec.decode(cur.value))) : []);
}
