/**
 * What the fs backend keeps of its partition folders' listings: the segments
 * and kept start of each, looked at again only when the folder changed; and
 * {@link bytesBefore}, for the size of a partition trimmed mid-segment.
 *
 * @module
 */
import {
  FRAME_HEAD,
  FRAME_PREFIX,
  frameBase,
  frameCount,
  MAX_FRAME_BODY,
} from "../_frame_codec.ts";
import { readIndex, readStartSync, scanPartitionSync, segmentName } from "./_paths.ts";

/** A partition folder's listing, as {@link PartitionScans} keeps it. */
export interface PartitionScan {
  ino: number | null;
  /**
   * The folder's modification time, as first seen after the listing
   * (undefined: not looked at yet; NaN: unknown, never trusted).
   */
  mtime: number | undefined;
  /** When it was listed (the clock read before the folder's stat). */
  listedAt: number;
  /** The segments' first offsets, ascending. */
  bases: number[];
  /** The kept start (0 without a `start` file). */
  start: number;
  /** The folder holds a high-water mark (`hwm`). */
  hasHighWater: boolean;
  /** When {@link PartitionScans.scan} last gave it (listed or found unchanged); 0: changed by this process since. */
  checkedAt: number;
}

const NO_SCAN: PartitionScan = {
  ino: null,
  mtime: NaN,
  listedAt: 0,
  bases: [],
  start: 0,
  hasHighWater: false,
  checkedAt: 0,
};

/** How long after a folder's modification its time is trusted to show the next one, ms. */
const RACY_MS = 1000;

/** The listings of partition folders, by folder. */
export class PartitionScans {
  #scans = new Map<string, PartitionScan>();

  /**
   * A partition folder's segments and kept start. Metadata of a few bytes,
   * read synchronously (see scanPartitionSync), and kept while the folder's
   * modification time stays what it was: a new segment, a trim's `start`
   * and a removed segment all change it, so one stat of the folder tells
   * whether to list it again. A time less than {@link RACY_MS} before the
   * listing is not trusted (a change in the same clock tick would keep it).
   * A missing folder is listed as empty.
   */
  scan(dir: string): PartitionScan {
    const now = Date.now();
    const c = this.#scans.get(dir);
    if (c) {
      let st: Deno.FileInfo;
      try {
        st = Deno.statSync(dir);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
        this.#scans.delete(dir);
        return NO_SCAN;
      }
      const mtime = st.mtime?.getTime() ?? NaN;
      // Not changed since (a listing whose time is not known yet: not
      // changed since a moment before it was taken).
      const same = c.mtime === undefined || (c.ino === st.ino && c.mtime === mtime);
      if (same && mtime < c.listedAt - RACY_MS) {
        c.mtime = mtime;
        c.ino = st.ino;
        c.checkedAt = now;
        return c;
      }
    }
    // Listed afresh; its time is looked at on the next call (one stat less
    // on a first pass over thousands of partitions).
    const { bases, hasStart, hasHighWater } = scanPartitionSync(dir);
    const scan: PartitionScan = {
      ino: null,
      mtime: undefined,
      listedAt: now,
      bases,
      start: hasStart ? readStartSync(dir) : 0,
      hasHighWater,
      checkedAt: now,
    };
    this.#scans.set(dir, scan);
    return scan;
  }

  /**
   * The listing {@link scan} gave less than `ms` ago, without a stat of the
   * folder (the views ask for a partition's bounds, then at once for its
   * bytes: one call less per partition on a first pass); else {@link scan}.
   * A folder this process changed since (see {@link touched}) is looked at.
   */
  recent(dir: string, ms: number): PartitionScan {
    const c = this.#scans.get(dir);
    if (c && Date.now() - c.checkedAt < ms) return c;
    return this.scan(dir);
  }

  /** Takes `scan` as the folder's listing (a row of the store's summary, checked against the folder). */
  adopt(dir: string, scan: PartitionScan): void {
    this.#scans.set(dir, scan);
  }

  /** The listing kept of `dir`, as it is (no look at the folder). */
  kept(dir: string): PartitionScan | undefined {
    return this.#scans.get(dir);
  }

  /** The listings kept, by folder. */
  entries(): IterableIterator<[string, PartitionScan]> {
    return this.#scans.entries();
  }

  /** This process changed the folder (an append, a trim): {@link recent} looks again. */
  touched(dir: string): void {
    const c = this.#scans.get(dir);
    if (c) c.checkedAt = 0;
  }

  /** Forgets the listings of folders under `prefix` (a removed topic). */
  forget(prefix: string): void {
    for (const dir of this.#scans.keys()) if (dir.startsWith(prefix)) this.#scans.delete(dir);
  }

  /** Forgets every listing. */
  clear(): void {
    this.#scans.clear();
  }
}

/**
 * How many bytes of the segment starting at `base` hold records below
 * `offset`: whole frames below it, and the share of the frame that holds it.
 */
export async function bytesBefore(dir: string, base: number, offset: number): Promise<number> {
  const path = `${dir}/${segmentName(base)}`;
  const index = await readIndex(path.replace(/\.log$/, ".idx"));
  let pos = 0;
  for (let i = index.length - 2; i >= 0; i -= 2) {
    if (base + index[i] <= offset) {
      pos = index[i + 1];
      break;
    }
  }
  const file = await Deno.open(path, { read: true });
  try {
    await file.seek(pos, Deno.SeekMode.Start);
    const head = new Uint8Array(FRAME_PREFIX + FRAME_HEAD);
    const dv = new DataView(head.buffer);
    for (;;) {
      let got = 0;
      while (got < head.length) {
        const n = await file.read(head.subarray(got));
        if (n === null) return pos;
        got += n;
      }
      const body = dv.getUint32(0, true);
      if (body < FRAME_HEAD || body > MAX_FRAME_BODY) return pos; // corrupt: good enough
      const total = FRAME_PREFIX + body;
      const first = frameBase(dv, 0), count = frameCount(dv, 0);
      if (first + count > offset) {
        return pos + (count > 0 ? Math.floor(total * Math.max(0, offset - first) / count) : 0);
      }
      pos += total;
      await file.seek(pos, Deno.SeekMode.Start);
    }
  } finally {
    file.close();
  }
}
