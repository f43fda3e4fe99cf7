/**
 * Deduplication by message id within a topic's window.
 *
 * The rule: a record whose id the topic stored less than `windowMs` before
 * (as of the time of the append), or that repeats an id earlier in its own
 * batch, is a duplicate and is not stored; records without an id are always
 * stored. For a topic of one partition the backend keeps it where it can
 * (`appendDeduplicated`); {@link DedupIndex} holds the rule, per partition,
 * for backends that do so under their append lock (fs, memory): the ids are
 * taken from what is stored, so a reservation exists exactly when its record
 * does, and a publisher killed at any point leaves nothing reserved.
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

const enc = new TextEncoder();
const dec = new TextDecoder();

/** The two hashes {@link hashId} made last (no array per id). */
let hashHi = 0, hashLo = 0;

/** Two 32-bit hashes of a string's UTF-16 code units (FNV-1a, and a multiply-shift one), into hashHi and hashLo. */
function hashId(id: string): void {
  let a = 0x811c9dc5, b = 0x9747b28c ^ id.length;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  hashHi = a >>> 0;
  hashLo = (b ^ (b >>> 13)) >>> 0;
}

/** A hash hit {@link DedupIndex.filter} asks the backend to confirm. */
export interface DedupHit {
  /** Index of the record in the batch. */
  index: number;
  /** The offset of the stored record whose id hashes alike. */
  offset: number;
}

/**
 * The ids one partition stored within the window, with when and where they
 * were stored: the rule of the module doc, for a backend that keeps it
 * natively. The caller serialises `filter` and `note` with its appends
 * (they run under the partition's append lock) and notes every id it stores
 * (also those of appends that do not deduplicate), in the order stored.
 *
 * Compact, so that a window of millions of ids fits: an id is held as a
 * 64-bit hash with its time and offset (24 bytes, and 4 to 8 of a hash
 * table; about 33 MB for a million ids, not the ids'
 * string); a hash that matches is confirmed by the backend against the
 * stored record's id, so two ids that hash alike are never taken for one.
 *
 * @example
 * ```ts
 * import { DedupIndex } from "./_dedup.ts";
 * import { batchOf } from "./record.ts";
 * const index = new DedupIndex();
 * const b = batchOf([new Uint8Array(1), new Uint8Array(1)], [{ id: "a" }, { id: "a" }]);
 * const kept = index.filter(b, 60_000, 1000).keep();
 * index.noteBatch(b, kept, 1000, 0);
 * // A hit, confirmed against the stored record (offset 0 holds id "a"):
 * const again = index.filter(b, 60_000, 2000);
 * console.log(kept, again.hits, again.keep(new Set([0]))); // [0] [{ index: 0, offset: 0 }] []
 * ```
 */
export class DedupIndex {
  // Entries in the order stored, in a ring: hashes, time, offset.
  #hi = new Uint32Array(1024);
  #lo = new Uint32Array(1024);
  #at = new Float64Array(1024);
  #off = new Float64Array(1024);
  /** The oldest entry's position in the ring, and how many are held. */
  #head = 0;
  #count = 0;
  /** Open addressing by `lo`: ring position + 1 of an entry (0: empty; a position not held is dead). */
  #table = new Uint32Array(4096);
  #used = 0;

  /** Ids held (some may have left the window). */
  get size(): number {
    return this.#count;
  }

  #live(r: number): boolean {
    const cap = this.#hi.length;
    return (r - this.#head + cap) % cap < this.#count;
  }

  /** The ring position of `id`'s hash, or -1. */
  #find(hi: number, lo: number): number {
    const t = this.#table, mask = t.length - 1;
    for (let s = lo & mask;; s = (s + 1) & mask) {
      const v = t[s];
      if (v === 0) return -1;
      const r = v - 1;
      if (this.#lo[r] === lo && this.#hi[r] === hi && this.#live(r)) return r;
    }
  }

  /**
   * Which records of `batch` to store: those without an id, and the first of
   * each id not stored within `windowMs` before `now`. `hits` are the
   * records whose id hashes as one stored within the window: the backend
   * reads the stored records' ids and passes `keep` the indices of those
   * that are the same (a record it cannot read any more counts as the
   * same); `keep` returns the indices to store, in order.
   */
  filter(
    batch: RecordBatch,
    windowMs: number,
    now: number,
  ): { hits: DedupHit[]; keep: (duplicates?: ReadonlySet<number>) => number[] } {
    const meta = batch.meta;
    const hits: DedupHit[] = [];
    let repeat: Uint8Array | undefined;
    if (meta) {
      const seen = new Set<string>();
      for (let i = 0; i < batch.count; i++) {
        const id = meta[i]?.id;
        if (id === undefined) continue;
        if (seen.has(id)) {
          (repeat ??= new Uint8Array(batch.count))[i] = 1;
          continue;
        }
        seen.add(id);
        if (this.#count === 0) continue;
        hashId(id);
        const r = this.#find(hashHi, hashLo);
        if (r >= 0 && this.#at[r] + windowMs > now) hits.push({ index: i, offset: this.#off[r] });
      }
    }
    const keep = (duplicates?: ReadonlySet<number>) => {
      const out: number[] = [];
      for (let i = 0; i < batch.count; i++) {
        if (!repeat?.[i] && !duplicates?.has(i)) out.push(i);
      }
      return out;
    };
    return { hits, keep };
  }

  /** Notes that `id` was stored at time `at` as offset `offset`. */
  note(id: string, at: number, offset: number): void {
    hashId(id);
    const hi = hashHi, lo = hashLo;
    if (this.#count === this.#hi.length) this.#grow();
    const cap = this.#hi.length;
    const r = (this.#head + this.#count++) % cap;
    this.#hi[r] = hi;
    this.#lo[r] = lo;
    this.#at[r] = at;
    this.#off[r] = offset;
    const t = this.#table, mask = t.length - 1;
    for (let s = lo & mask;; s = (s + 1) & mask) {
      const v = t[s];
      if (v !== 0) {
        const o = v - 1;
        const other = o !== r && this.#live(o) && (this.#lo[o] !== lo || this.#hi[o] !== hi);
        if (other) continue;
      } else this.#used++;
      // Empty, dead, or an older entry of the same hash: this one takes the slot.
      t[s] = r + 1;
      break;
    }
    if (this.#used * 10 > t.length * 7) this.#rehash();
  }

  /**
   * Notes the ids of the records `kept` of `batch` (all when omitted),
   * stored at `at` from offset `first` on.
   */
  noteBatch(
    batch: RecordBatch,
    kept: readonly number[] | undefined,
    at: number,
    first: number,
  ): void {
    const meta = batch.meta;
    if (!meta) return;
    const n = kept ? kept.length : batch.count;
    for (let k = 0; k < n; k++) {
      const id = meta[kept ? kept[k] : k]?.id;
      if (id !== undefined) this.note(id, at, first + k);
    }
  }

  /** Forgets the ids stored `windowMs` or longer before `now`. */
  prune(windowMs: number, now: number): void {
    const cap = this.#hi.length;
    while (this.#count > 0 && this.#at[this.#head] + windowMs <= now) {
      this.#head = (this.#head + 1) % cap;
      this.#count--;
    }
  }

  /** Forgets every id. */
  clear(): void {
    this.#count = 0;
    this.#table.fill(0);
    this.#used = 0;
  }

  /** Doubles the ring (it is full). */
  #grow(): void {
    const n = this.#hi.length;
    const hi = new Uint32Array(n * 2), lo = new Uint32Array(n * 2);
    const at = new Float64Array(n * 2), off = new Float64Array(n * 2);
    for (let k = 0; k < this.#count; k++) {
      const r = (this.#head + k) % n;
      hi[k] = this.#hi[r];
      lo[k] = this.#lo[r];
      at[k] = this.#at[r];
      off[k] = this.#off[r];
    }
    [this.#hi, this.#lo, this.#at, this.#off] = [hi, lo, at, off];
    this.#head = 0;
    this.#rehash();
  }

  /** Builds the table again from the entries held (dead slots dropped; larger when needed). */
  #rehash(): void {
    let size = 4096;
    while (size < this.#count * 2) size *= 2;
    const t = new Uint32Array(size), mask = size - 1, cap = this.#hi.length;
    this.#used = 0;
    for (let k = 0; k < this.#count; k++) {
      const r = (this.#head + k) % cap;
      const lo = this.#lo[r], hi = this.#hi[r];
      for (let s = lo & mask;; s = (s + 1) & mask) {
        const v = t[s];
        if (v === 0) {
          t[s] = r + 1;
          this.#used++;
          break;
        }
        const o = v - 1;
        if (this.#lo[o] === lo && this.#hi[o] === hi) {
          t[s] = r + 1; // a newer entry of the same hash
          break;
        }
      }
    }
    this.#table = t;
  }
}

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
  /** When this publish began to wait for reservations in progress (one grace for all shards). */
  const started = Date.now();
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
        started,
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
  started: number,
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
      const late = waiting.filter(([, at]) => now - at >= RESERVATION_GRACE_MS);
      if (late.length < waiting.length && Date.now() - started < RESERVATION_GRACE_MS) {
        // A publish in progress, most likely: look again shortly.
        await new Promise((r) => setTimeout(r, 100));
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
