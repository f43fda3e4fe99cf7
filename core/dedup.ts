/**
 * Deduplication by message id within a topic's window: `["dedup", topic]`
 * maps recently published ids to when they stop counting. Ids are reserved by
 * compare-and-set before the append, so concurrent publishers of one id
 * store it once.
 *
 * @module
 */
import type { StorageAdapter } from "./adapter.ts";
import { MqError } from "./errors.ts";
import type { RecordBatch } from "./record.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * Reserves the ids of `batch` for `windowMs`; returns the indices of records
 * to store (those without an id, and the first of each id not seen within the
 * window), plus a function that gives back the reservations if the append fails.
 */
export async function reserveIds(
  adapter: StorageAdapter,
  topic: string,
  batch: RecordBatch,
  windowMs: number,
  now: number,
): Promise<{ keep: number[]; undo: () => Promise<void> }> {
  const key = ["dedup", topic];
  for (let attempt = 0; attempt < 1000; attempt++) {
    const cur = await adapter.getState(key);
    const seen: Record<string, number> = cur ? JSON.parse(dec.decode(cur.value)) : {};
    for (const [id, until] of Object.entries(seen)) if (until <= now) delete seen[id];
    const keep: number[] = [];
    const added: string[] = [];
    for (let i = 0; i < batch.count; i++) {
      const id = batch.meta?.[i]?.id;
      if (id === undefined) {
        keep.push(i);
        continue;
      }
      if (seen[id] !== undefined) continue;
      seen[id] = now + windowMs;
      added.push(id);
      keep.push(i);
    }
    if (added.length === 0) return { keep, undo: () => Promise.resolve() };
    if (await adapter.compareAndSet(key, cur?.version ?? null, enc.encode(JSON.stringify(seen)))) {
      const undo = async () => {
        for (let i = 0; i < 100; i++) {
          const c = await adapter.getState(key);
          if (!c) return;
          const doc: Record<string, number> = JSON.parse(dec.decode(c.value));
          for (const id of added) delete doc[id];
          if (await adapter.compareAndSet(key, c.version, enc.encode(JSON.stringify(doc)))) return;
        }
      };
      return { keep, undo };
    }
  }
  throw new MqError("CONFLICT", `the dedup window of topic "${topic}" is too busy to update`);
}
