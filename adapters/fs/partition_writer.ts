/**
 * Appends to one partition: under an exclusive file lock, finds the true end
 * (other processes may have written, a crash may have left a torn tail, which
 * is cut off), rolls segments, writes one batch with one write, indexes it
 * sparsely, and syncs as the policy says.
 *
 * Dedup by id is native here, under the same lock as the append: the writer
 * keeps the ids the partition stored within the window (core's
 * {@link DedupIndex}), taken from the log itself, so an id counts exactly
 * when its record is stored. `dedup.tix`, beside the segments, is a time
 * index (as Kafka's `.timeindex`): one entry per append that carries ids,
 * written just before the frames, `f64 firstOffset, f64 count, f64 timeMs`.
 * On first use (and after other processes appended) the writer reads it to
 * find where the window starts and reads the ids of the records from there
 * to the end, each at the time of its append's entry (a record with no entry
 * of its own takes the next one's, or now: never older than it is).
 */
import { pickRecords, type RecordBatch } from "../../core/record.ts";
import { DedupIndex } from "../../core/dedup.ts";
import type { DeduplicatedAppend } from "../../core/adapter.ts";
import { SegmentReader } from "./segment_reader.ts";
import { ByteSink, encodeFrames } from "../frame_codec.ts";
import { MqError } from "../../core/errors.ts";
import {
  INDEX_INTERVAL,
  listSegments,
  readIndex,
  readStart,
  SEGMENT_BYTES,
  segmentName,
} from "./_paths.ts";
import { scanValid } from "./segment_scan.ts";
import { HighWater, quarantine, quarantinePath, readHighWater, recordLost } from "./recovery.ts";
import type { CorruptionReport } from "../../core/adapter.ts";

/** What a writer reports of damage it found (topic and partition are added by the adapter). */
export type DamageListener = (report: Omit<CorruptionReport, "topic" | "partition">) => void;

/** When data is flushed to the disk. */
export type SyncPolicy = "always" | "batch" | "never";

interface Tail {
  base: number;
  path: string;
  ino: number | null;
  size: number;
  nextOffset: number;
  indexedAt: number;
}

/** What {@link PartitionWriter.peekEnd} saw of the last segment. */
interface Peeked {
  path: string;
  ino: number | null;
  /** The file's size when it was scanned. */
  scannedTo: number;
  /** Position after the last valid frame. */
  end: number;
  /** The offset after the last valid frame. */
  scanNext: number;
  /** The partition's end: `scanNext`, or the high-water mark where that is higher. */
  nextOffset: number;
}

/** Scans a segment from `pos` (at offset `offset`) to its size, reading only. */
async function peekScan(
  path: string,
  pos: number,
  offset: number,
  st: Deno.FileInfo,
): Promise<Peeked> {
  const file = await Deno.open(path, { read: true });
  try {
    const { buf, got } = await readAt(file, pos, Math.max(0, st.size - pos));
    const scan = scanValid(buf, 0, got, offset);
    // Offsets acknowledged once are counted even where no frame holds them now.
    const hwm = await readHighWater(path.slice(0, path.lastIndexOf("/")));
    return {
      path,
      ino: st.ino,
      scannedTo: pos + got,
      end: pos + scan.end,
      scanNext: scan.nextOffset,
      nextOffset: Math.max(scan.nextOffset, hwm),
    };
  } finally {
    file.close();
  }
}

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

/** The writer of one partition, in this process. */
export class PartitionWriter {
  readonly dir: string;
  #sync: SyncPolicy;
  #lockFile: Deno.FsFile | undefined;
  #tail: Tail | undefined;
  #peek: Peeked | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #sink = new ByteSink(1 << 16);
  #hwm: HighWater;
  #onDamage: DamageListener | undefined;
  #guard: (() => Promise<void>) | undefined;
  #idState: IdState | undefined;

  /**
   * `onDamage` hears of damage the writer finds (and quarantines). `guard`,
   * when given, runs under the lock before every append and may throw to
   * refuse it (transactions: a commit record of a crashed writer that
   * touches this partition must be rolled forward first).
   */
  constructor(
    dir: string,
    sync: SyncPolicy,
    onDamage?: DamageListener,
    guard?: () => Promise<void>,
  ) {
    this.dir = dir;
    this.#sync = sync;
    this.#hwm = new HighWater(dir);
    this.#onDamage = onDamage;
    this.#guard = guard;
  }

  /** Appends a batch; resolves to its first offset. */
  append(batch: RecordBatch): Promise<number> {
    const run = this.#queue.then(() => this.#append(batch)).then((r) => r.first);
    this.#queue = run.catch(() => {});
    return run;
  }

  /**
   * Appends the records of `batch` whose id this partition did not store
   * within `windowMs` as of `now` (nor earlier in the batch), under the
   * append lock: see the module doc.
   */
  appendDeduplicated(
    batch: RecordBatch,
    windowMs: number,
    now: number,
  ): Promise<DeduplicatedAppend> {
    const run = this.#queue.then(() => this.#append(batch, { windowMs, now }));
    this.#queue = run.catch(() => {});
    return run;
  }

  /**
   * For transactions, holding the lock (inside {@link exclusive}, at `end`):
   * the indices of the records of `batch` to keep, as
   * {@link appendDeduplicated} decides.
   */
  async keptHeld(
    batch: RecordBatch,
    end: number,
    windowMs: number,
    now: number,
  ): Promise<number[]> {
    const st = await this.#catchUp(end, windowMs, now);
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
      const reader = await SegmentReader.open(this.dir, sorted[i]);
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
   * The next offset as readers see it, without the lock, so that readers
   * never block writers: the valid frames of the last segment. A frame
   * another process is still writing is not counted yet, nor is a torn tail
   * (the next writer cuts it off).
   */
  async peekEnd(): Promise<number> {
    const c = this.#peek;
    if (c) {
      const st = await statOrNull(c.path);
      if (st && st.ino === c.ino && st.size < SEGMENT_BYTES && st.size >= c.scannedTo) {
        if (st.size === c.scannedTo) return c.nextOffset;
        return (this.#peek = await peekScan(c.path, c.end, c.scanNext, st)).nextOffset;
      }
    }
    for (let attempt = 0;; attempt++) {
      const bases = await listSegments(this.dir);
      if (bases.length === 0) return await readStart(this.dir);
      const base = bases[bases.length - 1];
      const path = `${this.dir}/${segmentName(base)}`;
      const st = await statOrNull(path);
      if (!st) {
        if (attempt < 5) continue; // removed meanwhile (a trim): look again
        return await readStart(this.dir);
      }
      const index = await readIndex(path.replace(/\.log$/, ".idx"));
      let pos = 0, offset = base;
      for (let i = index.length - 2; i >= 0; i -= 2) {
        if (index[i + 1] < st.size) {
          pos = index[i + 1];
          offset = base + index[i];
          break;
        }
      }
      return (this.#peek = await peekScan(path, pos, offset, st)).nextOffset;
    }
  }

  /** Runs `fn` holding the partition's lock (used by trim). */
  exclusive<T>(fn: (end: number) => Promise<T>): Promise<T> {
    const run = this.#queue.then(() =>
      this.#locked(async () => {
        const tail = await this.#refresh();
        const r = await fn(tail.nextOffset);
        this.#tail = undefined;
        return r;
      })
    );
    this.#queue = run.catch(() => {});
    return run;
  }

  async #locked<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.#lockFile) {
      await Deno.mkdir(this.dir, { recursive: true });
      this.#lockFile = await Deno.open(`${this.dir}/.lock`, {
        read: true,
        write: true,
        create: true,
      });
    }
    await this.#lockFile.lock(true);
    try {
      return await fn();
    } finally {
      await this.#lockFile.unlock();
    }
  }

  async #append(
    batch: RecordBatch,
    dedup?: { windowMs: number; now: number },
  ): Promise<DeduplicatedAppend> {
    try {
      return await this.#appendLocked(batch, dedup);
    } catch (e) {
      if (!isFolderGone(e)) throw e;
      // The partition's folder was removed meanwhile (`topics rm` in
      // another process): start afresh in a new one.
      this.reset();
      return await this.#appendLocked(batch, dedup);
    }
  }

  #appendLocked(
    batch: RecordBatch,
    dedup?: { windowMs: number; now: number },
  ): Promise<DeduplicatedAppend> {
    return this.#locked(async () => {
      let tail = await this.#refresh();
      await this.#guard?.();
      let kept: number[] | undefined;
      if (dedup) {
        kept = await this.keptHeld(batch, tail.nextOffset, dedup.windowMs, dedup.now);
        if (kept.length === 0) return { first: -1, kept };
        if (kept.length < batch.count) batch = pickRecords(batch, kept);
      }
      if (tail.size >= SEGMENT_BYTES) tail = await this.#roll(tail.nextOffset);
      const first = tail.nextOffset;
      const at = dedup?.now ?? Date.now();
      if (batch.meta?.some((m) => m?.id !== undefined)) {
        await this.#noteTime(first, batch.count, at);
      }
      const sink = this.#sink;
      sink.length = 0;
      encodeFrames(batch, first, sink);
      const file = await Deno.open(tail.path, { append: true, create: true });
      try {
        let written = 0;
        while (written < sink.length) {
          written += await file.write(sink.bytes.subarray(written, sink.length));
        }
        if (this.#sync !== "never") await file.syncData();
      } catch (cause) {
        // A failed write may have left part of the batch: cut it off.
        this.#tail = undefined;
        await Deno.truncate(tail.path, tail.size).catch(() => {});
        throw new MqError("IO", `cannot write ${tail.path}: ${(cause as Error).message}`, {
          cause,
        });
      } finally {
        file.close();
      }
      if (tail.size === 0 || tail.size - tail.indexedAt >= INDEX_INTERVAL) {
        const entry = new Uint8Array(8);
        const dv = new DataView(entry.buffer);
        dv.setUint32(0, first - tail.base, true);
        dv.setUint32(4, tail.size, true);
        try {
          await Deno.writeFile(tail.path.replace(/\.log$/, ".idx"), entry, { append: true });
          tail.indexedAt = tail.size;
        } catch {
          // The batch is stored; the sparse index only speeds up seeks (and
          // a later entry, or `mq doctor --repair`, makes up for this one).
        }
      }
      tail.size += sink.length;
      tail.nextOffset += batch.count;
      await this.#hwm.advance(tail.nextOffset);
      if (sink.bytes.length > 8 << 20) this.#sink = new ByteSink(1 << 16);
      const st = this.#idState;
      if (st && st.to === first) {
        st.ids.noteBatch(batch, undefined, at, first);
        st.to = tail.nextOffset;
        st.seg = `${tail.path}:${tail.ino}`;
      }
      return { first, kept: kept ?? [] };
    });
  }

  /**
   * Writes the time index entry of an append of `count` records from
   * `first` at `at`, before its frames (so that no stored record is older
   * than its entry says).
   */
  async #noteTime(first: number, count: number, at: number): Promise<void> {
    const entry = new Float64Array([first, count, at]);
    await Deno.writeFile(`${this.dir}/dedup.tix`, new Uint8Array(entry.buffer), {
      append: true,
      create: true,
    });
    const st = this.#idState;
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
  async #catchUp(end: number, windowMs: number, now: number): Promise<IdState> {
    let st = this.#idState;
    const tixPath = `${this.dir}/dedup.tix`;
    const seg = `${this.#tail?.path}:${this.#tail?.ino}`;
    if (st && st.to === end && windowMs <= st.windowMs && st.seg === seg) return st;
    const info = await statOrNull(tixPath);
    const ino = info?.ino ?? null;
    const size = info ? info.size - (info.size % TIX_ENTRY) : 0;
    const fresh = !st || windowMs > st.windowMs || st.to > end || ino !== st.tixIno ||
      size < st.tixPos;
    let from: number;
    if (fresh || !st) {
      st = {
        ids: new DedupIndex(),
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
    this.#idState = st;
    if (from < end) {
      const times = st.times;
      let k = 0;
      const reader = await SegmentReader.open(this.dir, from);
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

  /**
   * Appends frames encoded from offset `end` (the end {@link exclusive} gave)
   * holding `count` records: for transactions, only inside `exclusive`.
   */
  async appendFramesHeld(frames: Uint8Array, count: number): Promise<void> {
    let tail = await this.#refresh();
    if (tail.size >= SEGMENT_BYTES) tail = await this.#roll(tail.nextOffset);
    // Their ids count from now (the frames are not decoded here; the next
    // dedup append reads them back).
    if (count > 0) await this.#noteTime(tail.nextOffset, count, Date.now());
    await this.#writeFrames(tail, frames, count);
  }

  /** Writes frames at the tail with one write, syncs and indexes them (as `#append` does). */
  async #writeFrames(tail: Tail, frames: Uint8Array, count: number): Promise<void> {
    const first = tail.nextOffset;
    const file = await Deno.open(tail.path, { append: true, create: true });
    try {
      let written = 0;
      while (written < frames.length) written += await file.write(frames.subarray(written));
      if (this.#sync !== "never") await file.syncData();
    } catch (cause) {
      // A failed write may have left part of the batch: cut it off.
      this.#tail = undefined;
      await Deno.truncate(tail.path, tail.size).catch(() => {});
      throw new MqError("IO", `cannot write ${tail.path}: ${(cause as Error).message}`, {
        cause,
      });
    } finally {
      file.close();
    }
    if (tail.size === 0 || tail.size - tail.indexedAt >= INDEX_INTERVAL) {
      const entry = new Uint8Array(8);
      const dv = new DataView(entry.buffer);
      dv.setUint32(0, first - tail.base, true);
      dv.setUint32(4, tail.size, true);
      try {
        await Deno.writeFile(tail.path.replace(/\.log$/, ".idx"), entry, { append: true });
        tail.indexedAt = tail.size;
      } catch {
        // The frames are stored; the sparse index only speeds up seeks (as in `#append`).
      }
    }
    tail.size += frames.length;
    tail.nextOffset += count;
    await this.#hwm.advance(tail.nextOffset);
  }

  /** Brings the cached tail up to date with the files (call holding the lock). */
  async #refresh(): Promise<Tail> {
    const t = this.#tail;
    if (t) {
      const st = await statOrNull(t.path);
      if (st && st.ino === t.ino && st.size === t.size && st.size < SEGMENT_BYTES) return t;
      if (st && st.ino === t.ino && st.size > t.size && st.size < SEGMENT_BYTES) {
        return this.#tail = await this.#scanTail(
          t.base,
          t.path,
          t.size,
          t.nextOffset,
          t.indexedAt,
          st,
        );
      }
    }
    const bases = await listSegments(this.dir);
    if (bases.length === 0) {
      const start = await readStart(this.dir);
      return this.#tail = await this.#create(start);
    }
    const base = bases[bases.length - 1];
    const path = `${this.dir}/${segmentName(base)}`;
    const index = await readIndex(path.replace(/\.log$/, ".idx"));
    const st = (await statOrNull(path))!;
    // Start the scan at the last index entry that is inside the file.
    let pos = 0, offset = base, indexedAt = 0;
    for (let i = index.length - 2; i >= 0; i -= 2) {
      if (index[i + 1] < st.size) {
        pos = index[i + 1];
        offset = base + index[i];
        indexedAt = pos;
        break;
      }
    }
    return this.#tail = await this.#scanTail(base, path, pos, offset, indexedAt, st);
  }

  async #scanTail(
    base: number,
    path: string,
    pos: number,
    offset: number,
    indexedAt: number,
    st: Deno.FileInfo,
  ): Promise<Tail> {
    const file = await Deno.open(path, { read: true, write: true });
    try {
      const { buf, got } = await readAt(file, pos, st.size - pos);
      const scan = scanValid(buf, 0, got, offset);
      const end = pos + scan.end;
      let nextOffset = scan.nextOffset;
      if (end < st.size) {
        // Bytes after the last valid frame: a torn tail of a crashed write
        // (never acknowledged, nothing is lost), or damage to frames that
        // were. The high-water mark tells them apart: offsets below it were
        // acknowledged, so they are not handed out again, and the bytes are
        // kept in the quarantine file.
        const hwm = await readHighWater(this.dir);
        if (hwm > nextOffset) {
          await quarantine(path, end, buf.subarray(scan.end, got));
          this.#onDamage?.({
            location: path,
            bytes: { from: end, to: st.size },
            offsets: { from: nextOffset, to: hwm },
            quarantined: quarantinePath(path),
          });
          await recordLost(this.dir, nextOffset, hwm);
          nextOffset = hwm;
        }
        await file.truncate(end);
        await this.#trimIndex(path, end);
      }
      const hwm = await readHighWater(this.dir);
      if (hwm > nextOffset) {
        // Frames below the mark are gone (the file was cut short): their
        // offsets stay used.
        this.#onDamage?.({ location: path, offsets: { from: nextOffset, to: hwm } });
        await recordLost(this.dir, nextOffset, hwm);
        nextOffset = hwm;
      }
      return { base, path, ino: st.ino, size: end, nextOffset, indexedAt };
    } finally {
      file.close();
    }
  }

  async #trimIndex(logPath: string, size: number): Promise<void> {
    const idxPath = logPath.replace(/\.log$/, ".idx");
    const index = await readIndex(idxPath);
    let keep = index.length;
    while (keep >= 2 && index[keep - 1] >= size) keep -= 2;
    if (keep === index.length) return;
    await Deno.truncate(idxPath, keep * 4).catch(() => {});
  }

  async #roll(nextOffset: number): Promise<Tail> {
    return this.#tail = await this.#create(nextOffset);
  }

  async #create(base: number): Promise<Tail> {
    const path = `${this.dir}/${segmentName(base)}`;
    const f = await Deno.open(path, { write: true, create: true });
    f.close();
    if (this.#sync !== "never") await syncDir(this.dir);
    const st = (await statOrNull(path))!;
    return { base, path, ino: st.ino, size: st.size, nextOffset: base, indexedAt: 0 };
  }

  /** Forgets cached positions (after the folder was removed). */
  reset(): void {
    this.#tail = undefined;
    this.#idState = undefined;
    this.#peek = undefined;
    this.#hwm.close();
    this.#lockFile?.close();
    this.#lockFile = undefined;
  }

  /** Releases the lock file. */
  close(): void {
    this.#lockFile?.close();
    this.#lockFile = undefined;
    this.#hwm.close();
  }
}

/** True for an error of a file whose folder is gone (directly, or as the cause of an IO error). */
function isFolderGone(e: unknown): boolean {
  return e instanceof Deno.errors.NotFound ||
    (e instanceof Error && e.cause instanceof Deno.errors.NotFound);
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

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** Flushes a folder's entries to disk (best effort). */
export async function syncDir(dir: string): Promise<void> {
  try {
    const d = await Deno.open(dir, { read: true });
    try {
      await d.syncData();
    } finally {
      d.close();
    }
  } catch {
    // Some file systems refuse to sync a folder; the data itself was synced.
  }
}

/** Reads up to `len` bytes of `file` from `pos` (fewer where the file ends sooner). */
async function readAt(
  file: Deno.FsFile,
  pos: number,
  len: number,
): Promise<{ buf: Uint8Array; got: number }> {
  const buf = new Uint8Array(len);
  await file.seek(pos, Deno.SeekMode.Start);
  let got = 0;
  while (got < len) {
    const n = await file.read(buf.subarray(got));
    if (n === null) break;
    got += n;
  }
  return { buf, got };
}
