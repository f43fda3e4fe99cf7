/**
 * Deduplication by message id within a topic's window.
 *
 * The rule: a record whose id the topic stored less than `windowMs` before
 * (as of the time of the append), or that repeats an id earlier in its own
 * batch, is a duplicate and is not stored; records without an id are always
 * stored. For a topic of one partition the backend keeps it where it can
 * (`appendDeduplicated`); `DedupIndex` (`_dedup_index.ts`) holds the rule,
 * per partition, for backends that do so under their append lock (fs,
 * memory): the ids are taken from what is stored, so a reservation exists
 * exactly when its record does, and a publisher killed at any point leaves
 * nothing reserved.
 *
 * For a backend without native dedup (or a topic of several partitions, where
 * an id counts topic-wide), `["dedup", topic, shard]` documents map recently
 * published ids to when they stop counting, an id's shard picked by its hash.
 * Inside a transaction ({@link planReservations}) they are committed with the
 * records, atomically; {@link reserveIds} reserves them before a plain append,
 * each reservation marked with when it was made: a later publish of the id
 * that finds it looks for the id in the topic's records, and takes the
 * reservation over when the id is not stored {@link RESERVATION_GRACE_MS}
 * after it was made (its publisher died between the reservation and the
 * append: a kill -9 loses nothing, at worst it delays the retry by that long).
 *
 * @module
 */
import type { StateWrite, StorageAdapter } from "./adapter.ts";
import { MqError } from "./errors.ts";
import { partitionOf } from "./_partitioner.ts";
import { resolveStart } from "./start_position.ts";
import type { RecordBatch } from "./record.ts";
import { type Clock, systemClock } from "./clock.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

export { type DedupHit, DedupIndex } from "./_dedup_index.ts";

/**
 * How long a reservation of {@link reserveIds} whose record is not stored is
 * taken for a publish still in progress, before another publish of the id
 * takes it over.
 */
export const RESERVATION_GRACE_MS = 10_000;

/** Records before a reservation's time that its record may carry (a batch made earlier). */
const RESERVATION_MARGIN_MS = 60_000;

/**
 * A shard document's entry: when the id stops counting, or that and when it
 * was reserved before its append (not known to be stored).
 */
type Seen = number | [until: number, reservedAt: number];

const untilOf = (v: Seen) => (typeof v === "number" ? v : v[0]);

/**
 * Which of `ids` the records of `topic` hold, from about `since` (ms since
 * the epoch) on, in any of its `partitions`.
 */
async function storedAmong(
  adapter: StorageAdapter,
  topic: string,
  partitions: number,
  ids: ReadonlySet<string>,
  since: number,
): Promise<Set<string>> {
  const found = new Set<string>();
  for (let p = 0; p < partitions && found.size < ids.size; p++) {
    const { end } = await adapter.bounds(topic, p);
    let at = await resolveStart(adapter, topic, p, new Date(since - RESERVATION_MARGIN_MS), since);
    const reader = await adapter.openReader(topic, p, at);
    try {
      while (at < end && found.size < ids.size) {
        const records = await reader.read(4096);
        if (records.length === 0) break;
        for (const r of records) if (r.id !== undefined && ids.has(r.id)) found.add(r.id);
        at = records[records.length - 1].offset + 1;
      }
    } finally {
      reader.close();
    }
  }
  return found;
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
  partitions = 1,
  clock: Pick<Clock, "now" | "sleep"> = systemClock,
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
      const added = await reserveShard(
        adapter,
        topic,
        shard,
        [...ids.keys()],
        windowMs,
        now,
        partitions,
        clock,
      );
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

/**
 * Adds the ids not seen within the window to a shard; returns those added.
 * An id reserved by a publish that has not stored it (see the module doc) is
 * waited for, then taken over.
 */
async function reserveShard(
  adapter: StorageAdapter,
  topic: string,
  shard: string,
  ids: string[],
  windowMs: number,
  now: number,
  partitions: number,
  clock: Pick<Clock, "now" | "sleep">,
): Promise<string[]> {
  const key = ["dedup", topic, shard];
  /** Ids found stored (their reservations are confirmed by the next write). */
  const stored = new Set<string>();
  for (let attempt = 0; attempt < 1000; attempt++) {
    const cur = await adapter.getState(key);
    const seen: Record<string, Seen> = cur ? JSON.parse(dec.decode(cur.value)) : {};
    for (const [id, v] of Object.entries(seen)) if (untilOf(v) <= now) delete seen[id];
    const added: string[] = [];
    const unsure = new Map<string, number>();
    for (const id of ids) {
      const v = seen[id];
      if (v === undefined || !Object.hasOwn(seen, id)) {
        seen[id] = [now + windowMs, now];
        added.push(id);
      } else if (typeof v !== "number" && !stored.has(id)) unsure.set(id, v[1]);
      else if (typeof v !== "number") seen[id] = v[0];
    }
    if (unsure.size > 0) {
      // Reserved but perhaps never stored (a publisher killed before its append).
      const since = Math.min(...unsure.values());
      const found = await storedAmong(adapter, topic, partitions, new Set(unsure.keys()), since);
      for (const id of found) stored.add(id);
      const waiting = [...unsure].filter(([id]) => !found.has(id));
      // Taken over once the grace since the reservation passed (as of now, not as of
      // when this publish began).
      const t = clock.now();
      if (waiting.some(([, at]) => t - at < RESERVATION_GRACE_MS)) {
        // A publish in progress, most likely: look again shortly.
        await clock.sleep(100);
        attempt--;
        continue;
      }
      for (const [id] of waiting) {
        seen[id] = [now + windowMs, now];
        added.push(id);
      }
      for (const id of found) seen[id] = untilOf(seen[id]);
    }
    if (added.length === 0 && unsure.size === 0) return added;
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
    const doc: Record<string, Seen> = JSON.parse(dec.decode(c.value));
    for (const id of ids) delete doc[id];
    if (await adapter.compareAndSet(key, c.version, enc.encode(JSON.stringify(doc)))) return;
  }
}

/**
 * For a transaction: which records of `batch` to keep (as {@link reserveIds}
 * decides) and the shard documents that reserve their ids, to be replaced in
 * the transaction's own commit (so a reservation exists exactly when the
 * records were stored). An id that a plain publish reserved but did not
 * store (looked for in the topic's `partitions`) is taken over at once:
 * at worst a duplicate, never a loss.
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
  partitions = 1,
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
    const seen: Record<string, Seen> = cur ? JSON.parse(dec.decode(cur.value)) : {};
    for (const [id, v] of Object.entries(seen)) if (untilOf(v) <= now) delete seen[id];
    const unsure = new Map<string, number>();
    for (const [id] of ids) {
      const v = seen[id];
      if (v !== undefined && typeof v !== "number" && Object.hasOwn(seen, id)) unsure.set(id, v[1]);
    }
    const stored = unsure.size > 0
      ? await storedAmong(
        adapter,
        topic,
        partitions,
        new Set(unsure.keys()),
        Math.min(...unsure.values()),
      )
      : new Set<string>();
    let added = 0;
    for (const [id, i] of ids) {
      if (Object.hasOwn(seen, id) && (!unsure.has(id) || stored.has(id))) continue;
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
