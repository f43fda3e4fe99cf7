/**
 * The ids a partition stored within its dedup window, for backends that
 * decide duplicates under their append lock (fs, memory): the rule of
 * `_dedup.ts` over a compact index (64-bit hashes with time and offset in
 * typed arrays, 16 bytes an id, in chunks; a hash that matches is confirmed
 * against the stored id).
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

/** Options of a {@link DedupIndex}. */
export interface DedupIndexOptions {
  /**
   * Entries a chunk of the index holds (a power of two): the index grows
   * and shrinks by chunks, never copying what it holds.
   * @default 65536
   */
  chunkSize?: number;
  /**
   * The 64-bit hash of an id, as two unsigned 32-bit halves `[hi, lo]`
   * (tests give one under which ids collide).
   * @default FNV-1a and a multiply-shift hash of the id's UTF-16 code units
   */
  hash?: (id: string) => [number, number];
}

/** One chunk of entries: hashes, time (ms after the time base), offset (after the offset base). */
interface Chunk {
  hi: Uint32Array;
  lo: Uint32Array;
  at: Int32Array;
  off: Uint32Array;
}

/** Table values are entry numbers modulo this, plus one (0: an empty slot). */
const SEQ_MOD = 0xffffffff;
const I32_MAX = 0x7fffffff, I32_MIN = -0x80000000;
/** Notes after which the table is built again, so that no stale value outlives the entry numbers' wrap. */
const REHASH_NOTES = 2 ** 30;

/**
 * The ids one partition stored within the window, with when and where they
 * were stored: the rule of the module doc, for a backend that keeps it
 * natively. The caller serialises `filter` and `note` with its appends
 * (they run under the partition's append lock) and notes every id it stores
 * (also those of appends that do not deduplicate), in the order stored.
 *
 * Compact, so that a window of millions of ids fits: an id is held as a
 * 64-bit hash with its time and offset, each relative to a base (16 bytes,
 * and 4 to 8 of a hash table; about 24 MB for a million ids, not the ids'
 * strings), in chunks that are added and dropped whole (no copy of what is
 * held, as a doubling array would make). Times are kept to the millisecond
 * within about 24 days of the base, offsets within 2^32 of theirs; the
 * bases move when a new entry is out of range (an entry more than about 24
 * days older than the newest counts as stored at that limit: out of any
 * window shorter). A hash that matches is confirmed by the backend
 * against the stored record's id, so two ids that hash alike are never
 * taken for one.
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
  readonly #size: number;
  readonly #mask: number;
  readonly #hash?: (id: string) => [number, number];
  /** Chunks in order; the first holds entry numbers from `#chunk0` on. */
  #chunks: Chunk[] = [];
  #chunk0 = 0;
  /** A chunk dropped, kept for the next one needed. */
  #spare: Chunk | undefined;
  /** The oldest entry's number (entries are numbered as noted), and how many are held. */
  #head = 0;
  #headMod = 0;
  #count = 0;
  /** What entries' times and offsets are relative to. */
  #timeBase = 0;
  #offBase = 0;
  /** Open addressing by `lo`: entry number (mod SEQ_MOD) + 1 (0: empty; an entry not held is dead). */
  #table = new Uint32Array(4096);
  #used = 0;
  #notes = 0;
  /** The hashes of the ids of the batch {@link filter} saw last (used once by {@link noteBatch}). */
  #batch: RecordBatch | undefined;
  #bhi = new Uint32Array(0);
  #blo = new Uint32Array(0);

  constructor(options: DedupIndexOptions = {}) {
    const size = options.chunkSize ?? 65536;
    if (!(size >= 1 && (size & (size - 1)) === 0)) {
      throw new RangeError(`chunkSize must be a power of two, not ${size}`);
    }
    this.#size = size;
    this.#mask = size - 1;
    this.#hash = options.hash;
  }

  /** Ids held (some may have left the window). */
  get size(): number {
    return this.#count;
  }

  /** Bytes of the chunks and the table held now. */
  get bytes(): number {
    return (this.#chunks.length + (this.#spare ? 1 : 0)) * this.#size * 16 +
      this.#table.byteLength;
  }

  #hashOf(id: string): void {
    if (this.#hash) [hashHi, hashLo] = this.#hash(id);
    else hashId(id);
  }

  /** The entry number of table value `v`, or -1 when it is not held. */
  #entryOf(v: number): number {
    const d = (v - 1 - this.#headMod + SEQ_MOD) % SEQ_MOD;
    return d < this.#count ? this.#head + d : -1;
  }

  #chunkOf(e: number): Chunk {
    return this.#chunks[Math.floor((e - this.#chunk0) / this.#size)];
  }

  /** The entry number of the hash `hi`, `lo`, or -1. */
  #find(hi: number, lo: number): number {
    const t = this.#table, mask = t.length - 1, m = this.#mask;
    for (let s = lo & mask;; s = (s + 1) & mask) {
      const v = t[s];
      if (v === 0) return -1;
      const e = this.#entryOf(v);
      if (e < 0) continue;
      const c = this.#chunkOf(e), i = (e - this.#chunk0) & m;
      if (c.lo[i] === lo && c.hi[i] === hi) return e;
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
      const n = batch.count;
      if (this.#bhi.length < n) {
        this.#bhi = new Uint32Array(Math.max(n, 1024));
        this.#blo = new Uint32Array(Math.max(n, 1024));
      }
      const bhi = this.#bhi, blo = this.#blo;
      // The batch's own ids by hash (index + 1), to find repeats within it.
      let size = 16;
      while (size < n * 2) size *= 2;
      const seen = new Int32Array(size), smask = size - 1;
      const m = this.#mask;
      for (let i = 0; i < n; i++) {
        const id = meta[i]?.id;
        if (id === undefined) continue;
        this.#hashOf(id);
        const hi = bhi[i] = hashHi, lo = blo[i] = hashLo;
        let s = (lo ^ hi) & smask, again = false;
        for (let v = seen[s]; v !== 0; s = (s + 1) & smask, v = seen[s]) {
          const j = v - 1;
          if (blo[j] === lo && bhi[j] === hi && meta[j]!.id === id) {
            again = true;
            break;
          }
        }
        if (again) {
          (repeat ??= new Uint8Array(n))[i] = 1;
          continue;
        }
        seen[s] = i + 1;
        if (this.#count === 0) continue;
        const e = this.#find(hi, lo);
        if (e < 0) continue;
        const c = this.#chunkOf(e), k = (e - this.#chunk0) & m;
        if (c.at[k] + this.#timeBase + windowMs > now) {
          hits.push({ index: i, offset: c.off[k] + this.#offBase });
        }
      }
      this.#batch = batch;
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
    this.#hashOf(id);
    this.#add(hashHi, hashLo, at, offset);
  }

  #add(hi: number, lo: number, at: number, offset: number): void {
    if (this.#count === 0) {
      this.#timeBase = at;
      this.#offBase = offset;
    }
    let t = at - this.#timeBase;
    if (t > I32_MAX) t = this.#rebaseTime(at);
    else if (t < I32_MIN) t = I32_MIN;
    let o = offset - this.#offBase;
    if (o < 0 || o > 0xffffffff) o = this.#rebaseOffset(offset);
    const e = this.#head + this.#count;
    const ci = Math.floor((e - this.#chunk0) / this.#size);
    if (ci === this.#chunks.length) this.#chunks.push(this.#newChunk());
    const c = this.#chunks[ci], i = (e - this.#chunk0) & this.#mask;
    c.hi[i] = hi;
    c.lo[i] = lo;
    c.at[i] = t;
    c.off[i] = o;
    this.#count++;
    const value = (e % SEQ_MOD) + 1;
    const table = this.#table, mask = table.length - 1, m = this.#mask;
    for (let s = lo & mask;; s = (s + 1) & mask) {
      const v = table[s];
      if (v !== 0) {
        const x = this.#entryOf(v);
        if (x >= 0 && x !== e) {
          const xc = this.#chunkOf(x), xi = (x - this.#chunk0) & m;
          if (xc.lo[xi] !== lo || xc.hi[xi] !== hi) continue;
        }
      } else this.#used++;
      // Empty, dead, or an older entry of the same hash: this one takes the slot.
      table[s] = value;
      break;
    }
    if (this.#used * 10 > table.length * 7 || ++this.#notes > REHASH_NOTES) this.#rehash();
  }

  #newChunk(): Chunk {
    const spare = this.#spare;
    if (spare) {
      this.#spare = undefined;
      return spare;
    }
    const n = this.#size;
    return {
      hi: new Uint32Array(n),
      lo: new Uint32Array(n),
      at: new Int32Array(n),
      off: new Uint32Array(n),
    };
  }

  /** Moves the time base up so that `at` fits (entries too old for it at the limit); returns `at`'s value. */
  #rebaseTime(at: number): number {
    const base = at - 2 ** 30;
    this.#eachHeld((c, i) => {
      const t = c.at[i] + this.#timeBase - base;
      c.at[i] = t < I32_MIN ? I32_MIN : t;
    });
    this.#timeBase = base;
    return at - base;
  }

  /**
   * Moves the offset base to the lowest offset held (or `offset`), first
   * forgetting the oldest entries more than 2^32 - 1 below `offset` (never
   * seen: that many records stored within a window, but for records with
   * no id); returns `offset`'s value.
   */
  #rebaseOffset(offset: number): number {
    const m = this.#mask;
    while (this.#count > 0) {
      const c = this.#chunks[0], i = (this.#head - this.#chunk0) & m;
      if (offset - (c.off[i] + this.#offBase) <= 0xffffffff) break;
      this.#head++;
      this.#count--;
      if (i === m) this.#dropChunk();
    }
    this.#headMod = this.#head % SEQ_MOD;
    if (this.#count === 0) this.#restart();
    let base = offset;
    this.#eachHeld((c, i) => void (base = Math.min(base, c.off[i] + this.#offBase)));
    this.#eachHeld((c, i) => void (c.off[i] = c.off[i] + this.#offBase - base));
    this.#offBase = base;
    return offset - base;
  }

  #eachHeld(fn: (c: Chunk, i: number) => void): void {
    for (let k = 0; k < this.#count; k++) {
      const e = this.#head + k;
      fn(this.#chunkOf(e), (e - this.#chunk0) & this.#mask);
    }
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
    // The hashes of the batch just filtered, once (no id hashed twice).
    const known = this.#batch === batch;
    this.#batch = undefined;
    if (!meta) return;
    const n = kept ? kept.length : batch.count;
    for (let k = 0; k < n; k++) {
      const r = kept ? kept[k] : k;
      const id = meta[r]?.id;
      if (id === undefined) continue;
      if (known) this.#add(this.#bhi[r], this.#blo[r], at, first + k);
      else this.note(id, at, first + k);
    }
  }

  /** Forgets the ids stored `windowMs` or longer before `now`. */
  prune(windowMs: number, now: number): void {
    const m = this.#mask, limit = now - windowMs - this.#timeBase;
    while (this.#count > 0) {
      const c = this.#chunks[0], i = (this.#head - this.#chunk0) & m;
      if (c.at[i] > limit) break;
      this.#head++;
      this.#count--;
      if (i === m) this.#dropChunk();
    }
    this.#headMod = this.#head % SEQ_MOD;
    if (this.#count === 0) this.#restart();
  }

  #dropChunk(): void {
    this.#spare = this.#chunks.shift();
    this.#chunk0 += this.#size;
  }

  /** No entry held: chunks from the next entry number on. */
  #restart(): void {
    while (this.#chunks.length > 0 && this.#chunk0 + this.#size <= this.#head) this.#dropChunk();
    if (this.#chunks.length > 1) this.#chunks.length = 1;
    if (this.#chunks.length === 0) this.#chunk0 = this.#head - (this.#head % this.#size);
  }

  /** Forgets every id. */
  clear(): void {
    this.#head += this.#count;
    this.#headMod = this.#head % SEQ_MOD;
    this.#count = 0;
    this.#restart();
    this.#table.fill(0);
    this.#used = 0;
    this.#batch = undefined;
  }

  /** Builds the table again from the entries held (dead slots dropped; its size to fit). */
  #rehash(): void {
    let size = 4096;
    while (size < this.#count * 2) size *= 2;
    // The old table goes before the new one is made, where it can.
    this.#table = new Uint32Array(0);
    const t = new Uint32Array(size), mask = size - 1, m = this.#mask;
    this.#used = 0;
    this.#notes = 0;
    for (let k = 0; k < this.#count; k++) {
      const e = this.#head + k;
      const c = this.#chunkOf(e), i = (e - this.#chunk0) & m;
      const lo = c.lo[i], hi = c.hi[i];
      for (let s = lo & mask;; s = (s + 1) & mask) {
        const v = t[s];
        if (v === 0) {
          t[s] = (e % SEQ_MOD) + 1;
          this.#used++;
          break;
        }
        const x = this.#head + ((v - 1 - this.#headMod + SEQ_MOD) % SEQ_MOD);
        const xc = this.#chunkOf(x), xi = (x - this.#chunk0) & m;
        if (xc.lo[xi] === lo && xc.hi[xi] === hi) {
          t[s] = (e % SEQ_MOD) + 1; // a newer entry of the same hash
          break;
        }
      }
    }
    this.#table = t;
  }
}
