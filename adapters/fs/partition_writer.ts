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
import type { DeduplicatedAppend } from "../../core/adapter.ts";
import { PartitionIds } from "./_partition_ids.ts";
import { type Peeked, peekScan, peekSegment } from "./_segment_peek.ts";
import { ByteSink, encodeFrames } from "../_frame_codec.ts";
import { MqError } from "../../core/errors.ts";
import {
  INDEX_INTERVAL,
  readIndex,
  readIndexSync,
  readStartSync,
  scanPartitionSync,
  SEGMENT_BYTES,
  segmentName,
} from "./_paths.ts";
import { scanValid } from "./_segment_scan.ts";
import {
  type DamageListener,
  HighWater,
  quarantine,
  quarantinePath,
  readHighWaterSync,
  recordLost,
} from "./_recovery.ts";
import { isFolderGone, readAt, readAtSync, statOrNullSync, syncDir } from "./_file_io.ts";

/**
 * The most bytes of a segment's tail read synchronously when a writer first
 * looks at it. The calls of a writer's first look (the folder's listing, the
 * index, a stat, the tail since the last index entry, the high-water mark)
 * are small reads of local files: synchronous, they cost less than a round
 * trip to Deno's thread pool each (those trips were most of a warm connect
 * and publish of one message in the library). A tail longer than this (one
 * large batch) is read without blocking.
 */
const SYNC_TAIL_BYTES = 1 << 20;

export { syncDir };

export type { DamageListener };

/**
 * Frames up to this size are written with one synchronous call (into the
 * page cache, faster than a round trip to Deno's thread pool); larger ones
 * on the pool, so that a big batch does not hold the event loop.
 */
const SYNC_WRITE_BYTES = 1 << 20;

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

/** The writer of one partition, in this process. */
export class PartitionWriter {
  readonly dir: string;
  #sync: SyncPolicy;
  #lockFile: Deno.FsFile | undefined;
  #tail: Tail | undefined;
  #peek: Peeked | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  /** Made by the first append (a writer that only peeks, for `bounds`, needs none). */
  #sink: ByteSink | undefined;
  #hwm: HighWater;
  #onDamage: DamageListener | undefined;
  #guard: (() => Promise<void>) | undefined;
  /** Appends and exclusive runs queued or running: while any is, the files stay open. */
  #pending = 0;
  /** The ids the partition stored within the window (native dedup). */
  #ids: PartitionIds;

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
    this.#ids = new PartitionIds(dir);
    this.#onDamage = onDamage;
    this.#guard = guard;
  }

  /** Appends a batch; resolves to its first offset. */
  append(batch: RecordBatch): Promise<number> {
    return this.#enqueue(() => this.#append(batch).then((r) => r.first));
  }

  /** Runs `fn` after the work queued before it, counted as pending until it settles. */
  #enqueue<T>(fn: () => Promise<T>): Promise<T> {
    this.#pending++;
    const run = this.#queue.then(fn).finally(() => this.#pending--);
    this.#queue = run.catch(() => {});
    return run;
  }

  /**
   * Closes the writer's open files when no append or exclusive run is queued
   * or running (so no lock is held); the next one reopens them. False, and
   * nothing closed, while work is pending. Cached positions are kept: they
   * are checked against the files before every use anyway.
   */
  release(): boolean {
    if (this.#pending > 0) return false;
    this.#lockFile?.close();
    this.#lockFile = undefined;
    this.#hwm.close();
    return true;
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
    return this.#enqueue(() => this.#append(batch, { windowMs, now }));
  }

  /**
   * For transactions, holding the lock (inside {@link exclusive}, at `end`):
   * the indices of the records of `batch` to keep, as
   * {@link appendDeduplicated} decides.
   */
  keptHeld(batch: RecordBatch, end: number, windowMs: number, now: number): Promise<number[]> {
    return this.#ids.kept(batch, end, `${this.#tail?.path}:${this.#tail?.ino}`, windowMs, now);
  }

  /**
   * The next offset as readers see it, without the lock, so that readers
   * never block writers: the valid frames of the last segment. A frame
   * another process is still writing is not counted yet, nor is a torn tail
   * (the next writer cuts it off). `bases`: the folder's segments, where
   * the caller has just listed them; `hasHighWater`: false where that
   * listing shows no high-water mark.
   */
  async peekEnd(bases?: number[], hasHighWater = true): Promise<number> {
    const c = this.#peek;
    if (c) {
      // One synchronous stat (cheaper than a round trip to the thread pool):
      // when the last segment did not change, the end did not either.
      const st = statOrNullSync(c.path);
      if (st && st.ino === c.ino && st.size < SEGMENT_BYTES && st.size >= c.scannedTo) {
        if (st.size === c.scannedTo) return c.nextOffset;
        return (this.#peek = await peekScan(c.path, c.end, c.scanNext, st, hasHighWater))
          .nextOffset;
      }
    }
    for (let attempt = 0;; attempt++) {
      // The caller's listing of the folder (`bounds` has one), the first time.
      if (attempt > 0 || !bases) bases = scanPartitionSync(this.dir).bases;
      if (bases.length === 0) return readStartSync(this.dir);
      const base = bases[bases.length - 1];
      // (A listing of its own, not the caller's: the mark is read.)
      const hwm = attempt > 0 || hasHighWater;
      const peeked = await peekSegment(`${this.dir}/${segmentName(base)}`, base, hwm);
      if (!peeked) {
        if (attempt < 5) continue; // removed meanwhile (a trim): look again
        return readStartSync(this.dir);
      }
      return (this.#peek = peeked).nextOffset;
    }
  }

  /** The last segment and its size as {@link peekEnd} last saw them (undefined before). */
  get peeked(): { path: string; size: number } | undefined {
    const c = this.#peek;
    return c && { path: c.path, size: c.scannedTo };
  }

  /** What {@link peekEnd} last saw, whole (for the store's summary). */
  get peekState(): Peeked | undefined {
    return this.#peek;
  }

  /**
   * The end this process's last append left, as a peek taken now (for the
   * store's summary: frames it wrote whole, up to the size it wrote).
   */
  get tailPeek(): Peeked | undefined {
    const t = this.#tail;
    return t && {
      path: t.path,
      ino: t.ino,
      scannedTo: t.size,
      end: t.size,
      scanNext: t.nextOffset,
      nextOffset: t.nextOffset,
      at: Date.now() - 1,
    };
  }

  /** Takes `peek` as what {@link peekEnd} saw (a row of the store's summary, checked against the files). */
  adoptPeek(peek: Peeked): this {
    this.#peek = peek;
    return this;
  }

  /** Runs `fn` holding the partition's lock (used by trim). */
  exclusive<T>(fn: (end: number) => Promise<T>): Promise<T> {
    return this.#enqueue(() =>
      this.#locked(async () => {
        const tail = await this.#refresh();
        const r = await fn(tail.nextOffset);
        this.#tail = undefined;
        return r;
      })
    );
  }

  async #locked<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.#lockFile) {
      // Synchronous: see SYNC_TAIL_BYTES. Only the lock itself may wait.
      Deno.mkdirSync(this.dir, { recursive: true });
      this.#lockFile = Deno.openSync(`${this.dir}/.lock`, {
        read: true,
        write: true,
        create: true,
      });
    }
    await this.#lockFile.lock(true);
    try {
      return await fn();
    } finally {
      this.#lockFile.unlockSync();
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
        this.#ids.noteTime(first, batch.count, at);
      }
      const sink = this.#sink ??= new ByteSink(1 << 16);
      sink.length = 0;
      encodeFrames(batch, first, sink);
      await this.#writeFrames(tail, sink.bytes.subarray(0, sink.length), batch.count);
      if (sink.bytes.length > 8 << 20) this.#sink = new ByteSink(1 << 16);
      this.#ids.appended(batch, first, tail.nextOffset, `${tail.path}:${tail.ino}`, at);
      return { first, kept: kept ?? [] };
    });
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
    if (count > 0) this.#ids.noteTime(tail.nextOffset, count, Date.now());
    await this.#writeFrames(tail, frames, count);
  }

  /** Writes frames at the tail with one write, syncs and indexes them, and moves the mark. */
  async #writeFrames(tail: Tail, frames: Uint8Array, count: number): Promise<void> {
    const first = tail.nextOffset;
    // The small calls of an append are synchronous (each costs less than a
    // round trip to Deno's thread pool); a large write and the sync are not.
    const file = Deno.openSync(tail.path, { append: true, create: true });
    try {
      let written = 0;
      if (frames.length <= SYNC_WRITE_BYTES) {
        while (written < frames.length) written += file.writeSync(frames.subarray(written));
      }
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
        Deno.writeFileSync(tail.path.replace(/\.log$/, ".idx"), entry, { append: true });
        tail.indexedAt = tail.size;
      } catch {
        // The frames are stored; the sparse index only speeds up seeks (and a
        // later entry, or `mq doctor --repair`, makes up for this one).
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
      const st = statOrNullSync(t.path);
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
    // The first look (or the segment was replaced): synchronous calls, see
    // SYNC_TAIL_BYTES.
    const bases = scanPartitionSync(this.dir).bases;
    if (bases.length === 0) return this.#tail = await this.#create(readStartSync(this.dir));
    const base = bases[bases.length - 1];
    const path = `${this.dir}/${segmentName(base)}`;
    const index = readIndexSync(path.replace(/\.log$/, ".idx"));
    const st = statOrNullSync(path);
    // Removed since the listing (a trim): look again from the top.
    if (!st) throw new Deno.errors.NotFound(`${path} was removed as it was looked at`);
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
    const file = Deno.openSync(path, { read: true, write: true });
    try {
      const len = st.size - pos;
      const { buf, got } = len <= SYNC_TAIL_BYTES
        ? readAtSync(file, pos, len)
        : await readAt(file, pos, len);
      const scan = scanValid(buf, 0, got, offset);
      const end = pos + scan.end;
      let nextOffset = scan.nextOffset;
      if (end < st.size) {
        // Bytes after the last valid frame: a torn tail of a crashed write
        // (never acknowledged, nothing is lost), or damage to frames that
        // were. The high-water mark tells them apart: offsets below it were
        // acknowledged, so they are not handed out again, and the bytes are
        // kept in the quarantine file.
        const hwm = readHighWaterSync(this.dir);
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
      const hwm = readHighWaterSync(this.dir);
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
    Deno.openSync(path, { write: true, create: true }).close();
    if (this.#sync !== "never") await syncDir(this.dir);
    // Gone already: the folder was removed meanwhile (the append starts afresh).
    const st = statOrNullSync(path);
    if (!st) throw new Deno.errors.NotFound(`${path} was removed as it was made`);
    return { base, path, ino: st.ino, size: st.size, nextOffset: base, indexedAt: 0 };
  }

  /** Forgets cached positions (after the folder was removed). */
  reset(): void {
    this.#tail = undefined;
    this.#ids.reset();
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
