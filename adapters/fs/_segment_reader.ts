/**
 * Reads one partition sequentially across its segments. Every record is
 * checked (length, CRC-32, offset); corrupt bytes are skipped when valid
 * records follow them, and a torn tail is treated as the end.
 */
import type { LogReader } from "../../core/adapter.ts";
import type { StoredRecord } from "../../core/record.ts";
import { blockOf, type RecordBlock } from "../../core/record_block.ts";
import {
  checkFrame,
  decodeFrame,
  decodeFrameColumns,
  frameBase,
  frameCount,
} from "../_frame_codec.ts";
import { readIndexSync, readStartSync, scanPartitionSync, segmentName } from "./_paths.ts";
import { resync } from "./_segment_scan.ts";
import { readHighWater } from "./_recovery.ts";
import type { DamageListener } from "./_recovery.ts";
import type { HandleLru } from "./_handles.ts";

// The folder's listing, the index, opening and seeking a segment are
// synchronous calls: small local ones cost less than a round trip to Deno's
// thread pool each (they were most of a warm subscribe-and-take of one
// message in the library). Reading the data stays asynchronous.

const CHUNK = 1 << 20;
/** The most records one block holds (its columns are allocated at this size or `max`). */
const BLOCK_RECORDS = 16384;
const RESYNC_WINDOW = 8 << 20;

/** A reader over the segments of one partition folder. */
export class SegmentReader implements LogReader {
  #dir: string;
  #next: number;
  #bases: number[] = [];
  #seg = -1;
  #file: Deno.FsFile | undefined;
  #filePos = 0;
  /** Where the file's own position is (-1: not known), so reads in a row need no seek. */
  #seekedTo = -1;
  #buf = new Uint8Array(0);
  #dv = new DataView(this.#buf.buffer);
  #pos = 0;
  #queue: StoredRecord[] = [];
  #queued = 0;
  #listedAt = 0;
  #closed = false;
  #onCorrupt: DamageListener | undefined;
  #handles: HandleLru | undefined;
  /** Reads running (while any is, the file stays open). */
  #busy = 0;
  /** The segment's file was closed by {@link release}: reopen it before reading on. */
  #released = false;

  private constructor(
    dir: string,
    from: number,
    onCorrupt?: DamageListener,
    handles?: HandleLru,
  ) {
    this.#dir = dir;
    this.#next = from;
    this.#onCorrupt = onCorrupt;
    this.#handles = handles;
  }

  /**
   * Opens a reader at offset `from` (records below the partition's start are
   * skipped). `handles`, when given, bounds the open segment files of many
   * readers (see {@link release}).
   */
  // deno-lint-ignore require-await
  static async open(
    dir: string,
    from: number,
    onCorrupt?: DamageListener,
    handles?: HandleLru,
  ): Promise<SegmentReader> {
    const r = new SegmentReader(dir, Math.max(from, readStartSync(dir)), onCorrupt, handles);
    r.#busy++;
    try {
      r.#seek();
    } finally {
      r.#busy--;
    }
    return r;
  }

  /**
   * Closes the segment file unless a read is running (false then); the next
   * read reopens it and goes on from the same place. Called by the
   * {@link HandleLru} the reader was opened with.
   */
  release(): boolean {
    if (this.#busy > 0) return false;
    if (this.#file) {
      this.#file.close();
      this.#file = undefined;
      this.#released = true;
      this.#seekedTo = -1;
    }
    return true;
  }

  /** Before reading: marks the reader busy and its file used, reopening it after a release. */
  #enter(): void {
    this.#busy++;
    if (this.#released) {
      this.#released = false;
      try {
        this.#file = Deno.openSync(`${this.#dir}/${segmentName(this.#bases[this.#seg])}`, {
          read: true,
        });
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
        // Removed meanwhile (a trim or a purge): as when it is gone at the
        // end of a read, the next listing moves on.
        this.#listedAt = 0;
      }
    }
    if (this.#file) this.#handles?.touch(this);
  }

  #seek(): void {
    this.#bases = scanPartitionSync(this.#dir).bases;
    this.#listedAt = Date.now();
    let i = this.#bases.length - 1;
    while (i > 0 && this.#bases[i] > this.#next) i--;
    if (i < 0) return;
    let pos = 0;
    const base = this.#bases[i];
    if (this.#next > base) {
      const index = readIndexSync(`${this.#dir}/${segmentName(base).replace(/\.log$/, ".idx")}`);
      let lo = 0, hi = index.length / 2 - 1, best = -1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        if (base + index[mid * 2] <= this.#next) (best = mid), (lo = mid + 1);
        else hi = mid - 1;
      }
      if (best >= 0) pos = index[best * 2 + 1];
    }
    this.#openSegment(i, pos);
  }

  #openSegment(i: number, pos: number): void {
    this.#file?.close();
    this.#file = undefined;
    this.#seg = i;
    this.#buf = new Uint8Array(0);
    this.#dv = new DataView(this.#buf.buffer);
    this.#pos = 0;
    this.#filePos = pos;
    this.#seekedTo = -1;
    this.#released = false;
    try {
      this.#file = Deno.openSync(`${this.#dir}/${segmentName(this.#bases[i])}`, { read: true });
      this.#handles?.touch(this);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      // Removed by a trim: look again from the start of what is there.
      if (pos !== 0) return this.#openSegment(i, 0);
    }
  }

  /**
   * Reads more bytes of the current segment into a new buffer after what is
   * left of the old one (records handed out keep views of old buffers, so a
   * buffer is never reused); false at the segment's end.
   */
  async #fill(): Promise<boolean> {
    if (!this.#file) return false;
    // A buffer of what the file holds past the position, up to CHUNK: one
    // fstat costs less than zeroing a megabyte for a few records (a short
    // topic, a follower at the end).
    const more = this.#file.statSync().size - this.#filePos;
    if (more <= 0) {
      this.#seekedTo = -1;
      return false;
    }
    const left = this.#buf.length - this.#pos;
    const buf = new Uint8Array(left + Math.min(CHUNK, more));
    buf.set(this.#buf.subarray(this.#pos), 0);
    if (this.#seekedTo !== this.#filePos) {
      this.#file.seekSync(this.#filePos, Deno.SeekMode.Start);
    }
    const n = await this.#file.read(buf.subarray(left));
    if (n === null || n === 0) {
      this.#seekedTo = -1;
      return false;
    }
    this.#buf = buf.subarray(0, left + n);
    this.#dv = new DataView(buf.buffer, 0, left + n);
    this.#pos = 0;
    this.#filePos += n;
    this.#seekedTo = this.#filePos;
    return true;
  }

  async read(max: number): Promise<StoredRecord[]> {
    this.#enter();
    try {
      return await this.#read(max);
    } finally {
      this.#busy--;
    }
  }

  async #read(max: number): Promise<StoredRecord[]> {
    const out: StoredRecord[] = [];
    if (this.#closed) return out;
    if (this.#seg < 0) {
      this.#seek();
      if (this.#seg < 0) return out;
    }
    while (out.length < max) {
      // Records decoded earlier but not yet returned.
      if (this.#queued < this.#queue.length) {
        const take = Math.min(max - out.length, this.#queue.length - this.#queued);
        for (let i = 0; i < take; i++) out.push(this.#queue[this.#queued + i]);
        this.#queued += take;
        this.#next = out[out.length - 1].offset + 1;
        continue;
      }
      const buf = this.#buf, dv = this.#dv;
      const len = buf.length;
      let pos = this.#pos;
      // The hot loop: whole, valid frames in the buffer.
      let decoded = false;
      while (true) {
        const total = checkFrame(buf, dv, pos, len);
        if (total <= 0) break;
        if (frameBase(dv, pos) + frameCount(dv, pos) > this.#next) {
          this.#queue = [];
          this.#queued = 0;
          const ok = decodeFrame(buf, dv, pos, total, this.#next, this.#queue);
          pos += total;
          // A frame whose records do not add up despite its checksum is skipped.
          if (!ok) continue;
          decoded = true;
          break;
        }
        pos += total;
      }
      this.#pos = pos;
      if (decoded) continue;
      const status = checkFrame(buf, dv, pos, len);
      if (status === 0 && (await this.#fill())) continue;
      // Bytes that do not make a valid frame: a write in progress, a torn
      // tail, or corruption. Look past them for valid frames.
      if (this.#pos < this.#buf.length && (await this.#skipCorrupt())) continue;
      if (this.#seg < this.#bases.length - 1) {
        this.#openSegment(this.#seg + 1, 0);
        continue;
      }
      if (!this.#maybeNewSegments()) {
        await this.#passLost();
        break;
      }
    }
    return out;
  }

  /**
   * Up to `max` records from the reader's position as columns over the read
   * buffer (no object per record); an empty block when nothing more is
   * stored right now. Records come from one buffer, so a block may hold
   * fewer than `max` though more are stored.
   */
  async readBlock(max: number): Promise<RecordBlock> {
    this.#enter();
    try {
      return await this.#readBlock(max);
    } finally {
      this.#busy--;
    }
  }

  async #readBlock(max: number): Promise<RecordBlock> {
    if (this.#queued < this.#queue.length) return blockOf(await this.#read(max));
    if (this.#closed) return blockOf([]);
    if (this.#seg < 0) {
      this.#seek();
      if (this.#seg < 0) return blockOf([]);
    }
    const room = Math.max(1, Math.min(max, BLOCK_RECORDS));
    while (true) {
      const buf = this.#buf, dv = this.#dv;
      const len = buf.length;
      let pos = this.#pos;
      const block: RecordBlock = {
        count: 0,
        data: buf,
        starts: new Uint32Array(room),
        ends: new Uint32Array(room),
        offsets: new Float64Array(room),
        timestamps: new Float64Array(room),
        meta: undefined,
      };
      while (block.count < room) {
        const total = checkFrame(buf, dv, pos, len);
        if (total <= 0) break;
        const end = frameBase(dv, pos) + frameCount(dv, pos);
        if (end > this.#next) {
          const added = decodeFrameColumns(
            buf,
            dv,
            pos,
            total,
            this.#next,
            block,
            room - block.count,
          );
          // A frame whose records do not add up despite its checksum is skipped.
          if (added < 0) {
            pos += total;
            continue;
          }
          if (added > 0) this.#next = block.offsets[block.count - 1] + 1;
          if (this.#next < end) break; // the block is full within this frame
        }
        pos += total;
      }
      this.#pos = pos;
      if (block.count > 0) return block;
      const status = checkFrame(buf, dv, pos, len);
      if (status === 0 && (await this.#fill())) continue;
      if (this.#pos < this.#buf.length && (await this.#skipCorrupt())) continue;
      if (this.#seg < this.#bases.length - 1) {
        this.#openSegment(this.#seg + 1, 0);
        continue;
      }
      if (!this.#maybeNewSegments()) {
        await this.#passLost();
        return block;
      }
    }
  }

  /** The offset of the next record this reader can return (see `LogReader.position`). */
  position(): number {
    return this.#queued < this.#queue.length ? this.#queue[this.#queued].offset : this.#next;
  }

  /**
   * At the end of the last segment: offsets below the high-water mark that
   * no frame holds (a damaged tail cut off, a segment cut short) can never
   * be read; pass them, saying so. Checked again under the shared lock, as a
   * writer may be adding frames for them right now.
   */
  async #passLost(): Promise<void> {
    if (this.#seg < 0 || this.#seg < this.#bases.length - 1) return;
    if ((await readHighWater(this.#dir)) <= this.#next) return;
    const origin = this.#filePos - (this.#buf.length - this.#pos);
    let lock: Deno.FsFile | undefined;
    try {
      lock = await Deno.open(`${this.#dir}/.lock`, { read: true, write: true, create: true });
      await lock.lock(false);
      this.#rewind(origin);
      while (await this.#fill()) { /* to the end of the segment */ }
      const buf = this.#buf;
      const valid = checkFrame(buf, this.#dv, this.#pos, buf.length) > 0 ||
        resync(buf, this.#dv, this.#pos, buf.length, this.#next) >= 0;
      this.#rewind(origin);
      if (valid) return; // frames came meanwhile: read them first
      const hwm = await readHighWater(this.#dir);
      if (hwm <= this.#next) return;
      this.#onCorrupt?.({
        location: `${this.#dir}/${segmentName(this.#bases[this.#seg])}`,
        offsets: { from: this.#next, to: hwm },
      });
      this.#next = hwm;
    } finally {
      if (lock) {
        await lock.unlock().catch(() => {});
        lock.close();
      }
    }
  }

  /** Looks for segments created since the listing; true when it moved to one. */
  #maybeNewSegments(): boolean {
    if (Date.now() - this.#listedAt < 200 && this.#filePos < (1 << 27)) return false;
    this.#listedAt = Date.now();
    const bases = scanPartitionSync(this.#dir).bases;
    const cur = this.#bases[this.#seg];
    const later = bases.filter((b) => b > cur);
    if (later.length === 0) {
      if (!bases.includes(cur) && bases.length > 0) {
        // Our segment was removed (purge): go on from the first one there is.
        this.#bases = bases;
        this.#openSegment(0, 0);
        return true;
      }
      return false;
    }
    this.#bases = bases;
    this.#openSegment(bases.indexOf(later[0]), 0);
    return true;
  }

  /**
   * At an invalid record: wait for any writer to finish (shared lock), read
   * the bytes afresh, and jump to the next valid record. False when none
   * follows (the end, for now): the position is then kept, so that records a
   * later writer puts there (after cutting a torn tail) are read.
   */
  async #skipCorrupt(): Promise<boolean> {
    const origin = this.#filePos - (this.#buf.length - this.#pos);
    let lock: Deno.FsFile | undefined;
    try {
      lock = await Deno.open(`${this.#dir}/.lock`, { read: true, write: true, create: true });
      await lock.lock(false);
      this.#rewind(origin);
      let eof = false;
      while (!eof) {
        while (this.#buf.length - this.#pos < RESYNC_WINDOW) {
          if (!(await this.#fill())) {
            eof = true;
            break;
          }
        }
        const buf = this.#buf;
        if (checkFrame(buf, this.#dv, this.#pos, buf.length) > 0) return true;
        const found = resync(buf, this.#dv, this.#pos + 1, buf.length, this.#next);
        if (found >= 0) {
          const skipped = this.#filePos - (buf.length - found) - origin;
          const base = frameBase(this.#dv, found);
          this.#onCorrupt?.({
            location: `${this.#dir}/${segmentName(this.#bases[this.#seg])}`,
            bytes: { from: origin, to: origin + skipped },
            ...(base > this.#next ? { offsets: { from: this.#next, to: base } } : {}),
          });
          this.#pos = found;
          return true;
        }
        // Keep a little, in case a record starts near the end of the window.
        this.#pos = Math.max(this.#pos, buf.length - 64);
      }
      this.#rewind(origin);
      return false;
    } finally {
      if (lock) {
        await lock.unlock().catch(() => {});
        lock.close();
      }
    }
  }

  #rewind(filePos: number): void {
    this.#seekedTo = -1;
    this.#buf = new Uint8Array(0);
    this.#dv = new DataView(this.#buf.buffer);
    this.#pos = 0;
    this.#filePos = filePos;
  }

  close(): void {
    this.#closed = true;
    this.#file?.close();
    this.#file = undefined;
    this.#released = false;
    this.#handles?.forget(this);
  }
}
