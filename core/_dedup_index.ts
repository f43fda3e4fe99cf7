/**
 * The ids a partition stored within its dedup window, for backends that
 * decide duplicates under their append lock (fs, memory): the rule of
 * `_dedup.ts` over a compact index (64-bit hashes with time and offset in
 * typed arrays; a hash that matches is confirmed against the stored id).
 *
 * @module
 */
import type { RecordBatch } from "./record.ts";

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
 * import { DedupIndex } from "./_dedup_index.ts";
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
