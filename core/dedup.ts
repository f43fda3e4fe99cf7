/**
 * Deduplication by message id within a topic's window.
 *
 * The rule: a record whose id was stored in the same partition less than
 * `windowMs` before (as of the time of the append), or that repeats an id
 * earlier in its own batch, is a duplicate and is not stored; records without
 * an id are always stored. {@link DedupIndex} holds that rule for backends
 * that deduplicate natively under their append lock (fs, memory): the ids are
 * taken from what is stored, so a reservation exists exactly when its record
 * does, and a publisher killed at any point leaves nothing reserved.
 *
 * For a backend without native dedup (or a topic of several partitions, where
 * an id counts topic-wide), `["dedup", topic, shard]` documents map recently
 * published ids to when they stop counting, an id's shard picked by its hash.
 * Inside a transaction ({@link planReservations}) they are committed with the
 * records, atomically; {@link reserveIds} reserves them before a plain append
 * and is only as safe as the process that runs it (a kill -9 between the
 * reservation and the append leaves the ids reserved).
 *
 * @module
 */
import type { StateWrite, StorageAdapter } from "./adapter.ts";
import { MqError } from "./errors.ts";
import { partitionOf } from "./partitioner.ts";
import type { RecordBatch } from "./record.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * The ids one partition stored within the window, with when they were stored:
 * the rule of the module doc, for a backend that keeps it natively. The
 * caller serialises `filter` and `note` with its appends (they run under the
 * partition's append lock) and notes every id it stores (also those of
 * appends that do not deduplicate), in the order stored.
 *
 * @example
 * ```ts
 * import { DedupIndex } from "./dedup.ts";
 * import { batchOf } from "./record.ts";
 * const index = new DedupIndex();
 * const b = batchOf([new Uint8Array(1), new Uint8Array(1)], [{ id: "a" }, { id: "a" }]);
 * const kept = index.filter(b, 60_000, 1000);
 * index.noteBatch(b, kept, 1000);
 * console.log(kept, index.filter(b, 60_000, 2000)); // [0] []
 * ```
 */
export class DedupIndex {
  /** Id to when it was stored, oldest first (a stored-again id moves to the end). */
  #seen = new Map<string, number>();
  #pruneAt = 1024;

  /** Ids held (some may have left the window). */
  get size(): number {
    return this.#seen.size;
  }

  /** True when `id` was stored less than `windowMs` before `now`. */
  has(id: string, windowMs: number, now: number): boolean {
    const at = this.#seen.get(id);
    return at !== undefined && at + windowMs > now;
  }

  /**
   * Indices of the records of `batch` to store: those without an id, and the
   * first of each id not stored within the window.
   */
  filter(batch: RecordBatch, windowMs: number, now: number): number[] {
    const kept: number[] = [];
    const meta = batch.meta;
    if (!meta) {
      for (let i = 0; i < batch.count; i++) kept.push(i);
      return kept;
    }
    let inBatch: Set<string> | undefined;
    for (let i = 0; i < batch.count; i++) {
      const id = meta[i]?.id;
      if (id !== undefined) {
        if (this.has(id, windowMs, now)) continue;
        if (inBatch?.has(id)) continue;
        (inBatch ??= new Set()).add(id);
      }
      kept.push(i);
    }
    return kept;
  }

  /** Notes that `id` was stored at `at`. */
  note(id: string, at: number): void {
    this.#seen.delete(id);
    this.#seen.set(id, at);
  }

  /** Notes the ids of the records `kept` of `batch` (all when omitted), stored at `at`. */
  noteBatch(batch: RecordBatch, kept: readonly number[] | undefined, at: number): void {
    const meta = batch.meta;
    if (!meta) return;
    const n = kept ? kept.length : batch.count;
    for (let k = 0; k < n; k++) {
      const id = meta[kept ? kept[k] : k]?.id;
      if (id !== undefined) this.note(id, at);
    }
  }

  /** Forgets the ids stored `windowMs` or longer before `now` (amortised: when the index has grown). */
  prune(windowMs: number, now: number): void {
    if (this.#seen.size < this.#pruneAt) return;
    for (const [id, at] of this.#seen) {
      if (at + windowMs > now) break;
      this.#seen.delete(id);
    }
    this.#pruneAt = Math.max(1024, this.#seen.size * 2);
  }

  /** Forgets every id. */
  clear(): void {
    this.#seen.clear();
    this.#pruneAt = 1024;
  }
}

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
 * import { planReservations } from "./dedup.ts";
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
