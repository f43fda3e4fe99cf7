/**
 * Delayed messages by id, so that one can be cancelled before its time:
 * `["delayed", topic]` maps ids to their delivery time, `["cancelled", topic]`
 * holds cancelled ids until well after their time.
 *
 * @module
 */
import type { StorageAdapter } from "./adapter.ts";
import { MqError } from "./errors.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
/** How long an entry is kept after its delivery time. */
const KEEP_MS = 24 * 3_600_000;

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

function prune(doc: IdTimes, now: number): void {
  for (const [id, t] of Object.entries(doc)) if (t + KEEP_MS < now) delete doc[id];
}

/** Notes delayed messages (id → delivery time). */
export function recordDelayed(
  adapter: StorageAdapter,
  topic: string,
  entries: [string, number][],
  now: number,
): Promise<void> {
  return update(adapter, ["delayed", topic], (doc) => {
    prune(doc, now);
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
  let found = false;
  await update(adapter, ["delayed", topic], (doc) => {
    found = doc[id] !== undefined && doc[id] > now;
    if (found) delete doc[id];
    prune(doc, now);
  });
  if (!found) return false;
  await update(adapter, ["cancelled", topic], (doc) => {
    prune(doc, now);
    doc[id] = now;
  });
  return true;
}

/** The ids of cancelled messages of a topic. */
export async function loadCancelled(
  adapter: StorageAdapter,
  topic: string,
  _now: number,
): Promise<Set<string>> {
  const cur = await adapter.getState(["cancelled", topic]);
  return new Set(cur ? Object.keys(JSON.parse(dec.decode(cur.value))) : []);
}
