/**
 * The ids a partition of the fs backend stored within its dedup window, for
 * the writer's native dedup (see `partition_writer.ts`): kept up to date
 * from the writer's own appends, read back from the log and `dedup.tix`
 * where it does not know. The id index and the segment reader are loaded on
 * first use: a writer that is never asked to deduplicate does without them.
 *
 * @module
 */
import type { DedupIndex } from "../../core/_dedup.ts";
import type { RecordBatch } from "../../core/record.ts";
import { readAt, statOrNull } from "./_file_io.ts";

/** Bytes of one entry of `dedup.tix`. */
const TIX_ENTRY = 24;
/** Entries of `dedup.tix` beyond which a rebuild rewrites it without those out of the window. */
const TIX_COMPACT = 65536;

/** The ids of a partition within the window, as a writer last brought them up to date. */
interface IdState {
  ids: DedupIndex;
  /** The log end the ids cover (records below it were read or noted). */
  to: number;
  /** The last segment (path and inode) when `to` was: another one means look again. */
  seg: string;
  /** The window the ids were read back for. */
  windowMs: number;
  /** `dedup.tix`'s inode and how far it was read. */
  tixIno: number | null;
  tixPos: number;
  /** Time index entries from the last one at or below `to`: [first, end, time]. */
  times: [number, number, number][];
}

/** The ids of one partition, for its writer (all calls under the append lock). */
export class PartitionIds {
  readonly #dir: string;
  #state: IdState | undefined;

  constructor(dir: string) {
    this.#dir = dir;
  }

  /**
   * Holding the partition's append lock, at `end` (`seg`: the last segment
   * as `path:inode`): the indices of the records of `batch` whose id the
   * partition did not store within `windowMs` as of `now` (nor earlier in
   * the batch).
   */
  async kept(
    batch: RecordBatch,
    end: number,
    seg: string,
    windowMs: number,
    now: number,
  ): Promise<number[]> {
    const st = await this.#catchUp(end, seg, windowMs, now);
    st.ids.prune(windowMs, now);
    const { hits, keep } = st.ids.filter(batch, windowMs, now);
    if (hits.length === 0) return keep();
    // Hashes alike: the stored records' ids say whether the ids are.
    const stored = await this.#idsAt(hits.map((h) => h.offset));
    const same = new Set<number>();
    for (const h of hits) {
      const id = stored.get(h.offset);
      if (id === undefined || id === batch.meta?.[h.index]?.id) same.add(h.index);
    }
    return keep(same);
  }

  /**
   * The ids of the records at `offsets` (reading each run of nearby ones
   * once); an offset that cannot be read (trimmed, damaged) is missing.
   */
  async #idsAt(offsets: number[]): Promise<Map<number, string | null>> {
    const out = new Map<number, string | null>();
    const sorted = [...new Set(offsets)].sort((a, b) => a - b);
    for (let i = 0; i < sorted.length;) {
      let j = i;
      while (j + 1 < sorted.length && sorted[j + 1] - sorted[j] <= 4096) j++;
      const last = sorted[j];
      const want = new Set(sorted.slice(i, j + 1));
      const reader = await (await import("./_segment_reader.ts")).SegmentReader.open(
        this.#dir,
        sorted[i],
      );
      try {
        read: while (true) {
          const records = await reader.read(4096);
          if (records.length === 0) break;
          for (const r of records) {
            if (r.offset > last) break read;
            if (want.has(r.offset)) out.set(r.offset, r.id ?? null);
          }
        }
      } finally {
        reader.close();
      }
      i = j + 1;
    }
    return out;
  }
  /**
   * Writes the time index entry of an append of `count` records from
   * `first` at `at`, before its frames (so that no stored record is older
   * than its entry says).
   */
  noteTime(first: number, count: number, at: number): void {
    const entry = new Float64Array([first, count, at]);
    // Synchronous: 24 bytes into the page cache, before every append with ids.
    Deno.writeFileSync(`${this.#dir}/dedup.tix`, new Uint8Array(entry.buffer), {
      append: true,
      create: true,
    });
    const st = this.#state;
    if (st) {
      st.tixPos += TIX_ENTRY;
      st.times.push([first, first + count, at]);
    }
  }

  /**
   * The ids of the partition up to `end` (holding the lock): kept up to
   * date from what this writer appended, read back from the log where it
   * does not know (first use, other processes' appends, a wider window).
   */
  async #catchUp(end: number, seg: string, windowMs: number, now: number): Promise<IdState> {
    let st = this.#state;
    const tixPath = `${this.#dir}/dedup.tix`;
    if (st && st.to === end && windowMs <= st.windowMs && st.seg === seg) return st;
    const info = await statOrNull(tixPath);
    const ino = info?.ino ?? null;
    const size = info ? info.size - (info.size % TIX_ENTRY) : 0;
    const fresh = !st || windowMs > st.windowMs || st.to > end || ino !== st.tixIno ||
      size < st.tixPos;
    let from: number;
    if (fresh || !st) {
      st = {
        ids: new (await import("../../core/_dedup.ts")).DedupIndex(),
        to: end,
        seg,
        windowMs,
        tixIno: ino,
        tixPos: 0,
        times: await readTimes(tixPath, 0, size),
      };
      st.tixPos = size;
      // The window starts at the first append within it.
      let i = 0;
      while (i < st.times.length && st.times[i][2] + windowMs <= now) i++;
      from = i < st.times.length ? st.times[i][0] : end;
      if (i >= TIX_COMPACT && i > st.times.length / 2) {
        st.times = st.times.slice(i);
        const tmp = `${tixPath}.tmp`;
        await Deno.writeFile(tmp, timesBytes(st.times));
        await Deno.rename(tmp, tixPath);
        st.tixIno = (await statOrNull(tixPath))?.ino ?? null;
        st.tixPos = st.times.length * TIX_ENTRY;
      }
    } else {
      st.times.push(...await readTimes(tixPath, st.tixPos, size));
      st.tixPos = size;
      from = st.to;
    }
    this.#state = st;
    if (from < end) {
      const times = st.times;
      let k = 0;
      const reader = await (await import("./_segment_reader.ts")).SegmentReader.open(
        this.#dir,
        from,
      );
      try {
        read: while (true) {
          const records = await reader.read(4096);
          if (records.length === 0) break;
          for (const r of records) {
            if (r.offset >= end) break read;
            if (r.id === undefined) continue;
            // The entry of the append that holds it, else the next one's, else now.
            while (k < times.length && times[k][1] <= r.offset) k++;
            // A later entry of the same offsets (a crash between an entry and its frames).
            while (k + 1 < times.length && times[k + 1][0] <= r.offset) k++;
            st.ids.note(r.id, k < times.length ? Math.min(times[k][2], now) : now, r.offset);
          }
        }
      } finally {
        reader.close();
      }
    }
    st.to = end;
    st.seg = seg;
    st.windowMs = Math.max(st.windowMs, windowMs);
    // Entries wholly below the end are not needed again.
    let drop = 0;
    while (drop < st.times.length - 1 && st.times[drop][1] <= end) drop++;
    if (drop > 0) st.times.splice(0, drop);
    return st;
  }

  /** After an append of `batch` at `first` (the end now `next`, in segment `seg`) at `at`. */
  appended(batch: RecordBatch, first: number, next: number, seg: string, at: number): void {
    const st = this.#state;
    if (st && st.to === first) {
      st.ids.noteBatch(batch, undefined, at, first);
      st.to = next;
      st.seg = seg;
    }
  }

  /** Forgets what it knew (the folder was removed). */
  reset(): void {
    this.#state = undefined;
  }
}

/** The entries of `dedup.tix` between bytes `from` and `to`: [first, end, time]. */
async function readTimes(
  path: string,
  from: number,
  to: number,
): Promise<[number, number, number][]> {
  if (to <= from) return [];
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  try {
    const { buf, got } = await readAt(file, from, to - from);
    const dv = new DataView(buf.buffer, 0, got - (got % TIX_ENTRY));
    const out: [number, number, number][] = [];
    for (let p = 0; p + TIX_ENTRY <= dv.byteLength; p += TIX_ENTRY) {
      const first = dv.getFloat64(p, true);
      out.push([first, first + dv.getFloat64(p + 8, true), dv.getFloat64(p + 16, true)]);
    }
    return out;
  } finally {
    file.close();
  }
}

/** `times` as the bytes of `dedup.tix`. */
function timesBytes(times: [number, number, number][]): Uint8Array {
  const a = new Float64Array(times.length * 3);
  times.forEach(([first, end, at], i) => a.set([first, end - first, at], i * 3));
  return new Uint8Array(a.buffer);
}
