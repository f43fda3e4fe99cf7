/**
 * Deduplication by message id within a topic's window, for backends that do
 * not deduplicate natively: `["dedup", topic, shard]` documents map recently
 * published ids to when they stop counting, an id's shard picked by its hash,
 * so that a document stays small however many ids the window holds. Ids are
 * reserved by compare-and-set before the append, so concurrent publishers of
 * one id store it once.
 *
 * @module
 */
import type { StateWrite, StorageAdapter } from "./adapter.ts";
import { MqError } from "./errors.ts";
import { partitionOf } from "./_partitioner.ts";
import type { RecordBatch } from "./record.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Documents the ids of one topic are spread over. */
export const DEDUP_SHARDS = 64;

/** The shard document of an id. */
function shardOf(id: string): string {
  return String(partitionOf(id, DEDUP_SHARDS));
}

/**
 * Reserves the ids of `batch` for `windowMs`; returns the indices of records
 * to store (those without an id, and the first of each id not seen within the
 * window), plus a function that gives back the reservations if the append fails
 * (but for the ids of records that were stored before it failed).
 *
 * @throws {MqError} `CONFLICT` when a shard stays too busy to update
 */
export async function reserveIds(
  adapter: StorageAdapter,
  topic: string,
  batch: RecordBatch,
  windowMs: number,
  now: number,
): Promise<{ keep: number[]; undo: (written?: ReadonlySet<string>) => Promise<void> }> {
  // The ids of the batch by shard, and which records carry the first of each id.
  const byShard = new Map<string, Map<string, number>>();
  for (let i = 0; i < batch.count; i++) {
    const id = batch.meta?.[i]?.id;
    if (id === undefined) continue;
    const shard = shardOf(id);
    let ids = byShard.get(shard);
    if (!ids) byShard.set(shard, ids = new Map());
    if (!ids.has(id)) ids.set(id, i);
  }
  const accepted = new Set<number>();
  const done: [string, string[]][] = [];
  /** Gives back the reservations, but for the ids in `written` (stored after all). */
  const undo = async (written?: ReadonlySet<string>) => {
    for (const [shard, added] of done) {
      const back = written ? added.filter((id) => !written.has(id)) : added;
      if (back.length > 0) await release(adapter, topic, shard, back);
    }
  };
  try {
    for (const [shard, ids] of byShard) {
      const added = await reserveShard(adapter, topic, shard, [...ids.keys()], windowMs, now);
      for (const id of added) accepted.add(ids.get(id)!);
      if (added.length > 0) done.push([shard, added]);
    }
  } catch (e) {
    await undo().catch(() => {});
    throw e;
  }
  const keep: number[] = [];
  for (let i = 0; i < batch.count; i++) {
    if (batch.meta?.[i]?.id === undefined || accepted.has(i)) keep.push(i);
  }
  return { keep, undo };
}

/** Adds the ids not seen within the window to a shard; returns those added. */
async function reserveShard(
  adapter: StorageAdapter,
  topic: string,
  shard: string,
  ids: string[],
  windowMs: number,
  now: number,
): Promise<string[]> {
  const key = ["dedup", topic, shard];
  for (let attempt = 0; attempt < 1000; attempt++) {
    const cur = await adapter.getState(key);
    const seen: Record<string, number> = cur ? JSON.parse(dec.decode(cur.value)) : {};
    for (const [id, until] of Object.entries(seen)) if (until <= now) delete seen[id];
    const added: string[] = [];
    for (const id of ids) {
      if (Object.hasOwn(seen, id)) continue;
      seen[id] = now + windowMs;
      added.push(id);
    }
    if (added.length === 0) return added;
    if (await adapter.compareAndSet(key, cur?.version ?? null, enc.encode(JSON.stringify(seen)))) {
      return added;
    }
  }
  throw new MqError("CONFLICT", `the dedup window of topic "${topic}" is too busy to update`);
}

/** Gives back reservations of a failed append. */
async function release(
  adapter: StorageAdapter,
  topic: string,
  shard: string,
  ids: string[],
): Promise<void> {
  const key = ["dedup", topic, shard];
  for (let i = 0; i < 100; i++) {
    const c = await adapter.getState(key);
    if (!c) return;
    const doc: Record<string, number> = JSON.parse(dec.decode(c.value));
    for (const id of ids) delete doc[id];
    if (await adapter.compareAndSet(key, c.version, enc.encode(JSON.stringify(doc)))) return;
  }
}

/**
 * For a transaction: which records of `batch` to keep (as {@link reserveIds}
 * decides) and the shard documents that reserve their ids, to be replaced in
 * the transaction's own commit (so a reservation exists exactly when the
 * records were stored).
 *
 * @example
 * ```ts
 * import { planReservations } from "./_dedup.ts";
 * import { batchOf } from "./record.ts";
 * import { MemoryAdapter } from "../adapters/memory/mod.ts";
 * const batch = batchOf([new Uint8Array(1)], [{ id: "a" }]);
 * const { keep, states } = await planReservations(new MemoryAdapter(), "t", batch, 60_000, Date.now());
 * console.log(keep, states.length); // [0] 1
 * ```
 */
export async function planReservations(
  adapter: StorageAdapter,
  topic: string,
  batch: RecordBatch,
  windowMs: number,
  now: number,
): Promise<{ keep: number[]; states: StateWrite[] }> {
  const byShard = new Map<string, Map<string, number>>();
  for (let i = 0; i < batch.count; i++) {
    const id = batch.meta?.[i]?.id;
    if (id === undefined) continue;
    const shard = shardOf(id);
    let ids = byShard.get(shard);
    if (!ids) byShard.set(shard, ids = new Map());
    if (!ids.has(id)) ids.set(id, i);
  }
  const accepted = new Set<number>();
  const states: StateWrite[] = [];
  for (const [shard, ids] of byShard) {
    const key = ["dedup", topic, shard];
    const cur = await adapter.getState(key);
    const seen: Record<string, number> = cur ? JSON.parse(dec.decode(cur.value)) : {};
    for (const [id, until] of Object.entries(seen)) if (until <= now) delete seen[id];
    let added = 0;
    for (const [id, i] of ids) {
      if (Object.hasOwn(seen, id)) continue;
      seen[id] = now + windowMs;
      accepted.add(i);
      added++;
    }
    if (added > 0) {
      states.push({ key, expected: cur?.version ?? null, value: enc.encode(JSON.stringify(seen)) });
    }
  }
  const keep: number[] = [];
  for (let i = 0; i < batch.count; i++) {
    if (batch.meta?.[i]?.id === undefined || accepted.has(i)) keep.push(i);
  }
  return { keep, states };
}
