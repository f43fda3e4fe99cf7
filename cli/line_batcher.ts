/**
 * Splits stdin bytes into records without copying each line: complete lines
 * of a chunk become one {@link RecordBatch} over the chunk's bytes. A line
 * longer than `maxLineBytes` is never buffered whole: as soon as it passes the
 * limit it becomes an empty placeholder record, listed in the batch's
 * `oversize` (with its size in `oversizeBytes`, -1 when it was cut off before
 * its end), and its remaining bytes are dropped up to the next delimiter.
 */
import type { RecordBatch } from "../mod.ts";

const NL = 10, CR = 13;

/** Cuts a byte stream at a delimiter into batches of records. */
export class LineBatcher {
  #delimiter: number;
  #stripCr: boolean;
  #buf: Uint8Array;
  #initial: number;
  #pool: Uint8Array[] = [];
  #offsetPool: [Uint32Array<ArrayBuffer>, Uint32Array<ArrayBuffer>][] = [];
  #len = 0;
  #scan = 0;
  #lineStart = 0;
  #starts = new Uint32Array(4096);
  #ends = new Uint32Array(4096);
  #count = 0;
  #maxLine: number;
  /** Inside an oversize line: dropping bytes up to the next delimiter. */
  #dropping = false;
  #oversize: number[] = [];
  #oversizeBytes: number[] = [];
  /** Lines cut before the pending ones (for line numbers). */
  linesBefore = 0;

  constructor(
    options: { delimiter: "newline" | "nul"; capacity?: number; maxLineBytes?: number },
  ) {
    this.#delimiter = options.delimiter === "nul" ? 0 : NL;
    this.#stripCr = options.delimiter === "newline";
    this.#initial = options.capacity ?? 1 << 22;
    this.#maxLine = options.maxLineBytes ?? Infinity;
    this.#buf = new Uint8Array(this.#initial);
  }

  /** Complete lines waiting to be taken. */
  get pending(): number {
    return this.#count;
  }

  /** Bytes of complete lines waiting to be taken. */
  get pendingBytes(): number {
    return this.#lineStart;
  }

  /** Adds bytes read from the input, and cuts the complete lines among them. */
  push(chunk: Uint8Array): void {
    if (this.#dropping) {
      const at = chunk.indexOf(this.#delimiter);
      if (at < 0) return;
      this.#dropping = false;
      chunk = chunk.subarray(at + 1);
    }
    if (this.#len + chunk.length > this.#buf.length) {
      let size = this.#buf.length * 2;
      while (size < this.#len + chunk.length) size *= 2;
      const next = new Uint8Array(size);
      next.set(this.#buf.subarray(0, this.#len));
      this.#buf = next;
    }
    this.#buf.set(chunk, this.#len);
    this.#len += chunk.length;
    const buf = this.#buf.subarray(0, this.#len), d = this.#delimiter;
    let at = buf.indexOf(d, this.#scan);
    while (at >= 0) {
      let end = at;
      if (this.#stripCr && end > this.#lineStart && buf[end - 1] === CR) end--;
      if (end - this.#lineStart > this.#maxLine) this.#cutOversize(end - this.#lineStart);
      else this.#push(this.#lineStart, end);
      this.#lineStart = at + 1;
      at = buf.indexOf(d, at + 1);
    }
    this.#scan = this.#len;
    if (this.#len - this.#lineStart > this.#maxLine + 1) {
      // The partial line is over the limit already: keep none of it.
      this.#cutOversize(-1);
      this.#len = this.#lineStart;
      this.#scan = this.#len;
      this.#dropping = true;
    }
  }

  /**
   * Records an oversize line as an empty placeholder at `#lineStart`, with its
   * size (-1: cut off before its end, so only known to be over the limit).
   */
  #cutOversize(bytes: number): void {
    this.#oversize.push(this.#count);
    this.#oversizeBytes.push(bytes);
    this.#push(this.#lineStart, this.#lineStart);
  }

  /**
   * Gives back the bytes and offset arrays of a batch from {@link take} once
   * it has been written, so that they are reused rather than left to the
   * garbage collector (a steady stream then allocates nothing).
   */
  recycle(batch: RecordBatch): void {
    if (batch.data.length === this.#initial && this.#pool.length < 2) this.#pool.push(batch.data);
    const starts = new Uint32Array(batch.starts.buffer as ArrayBuffer);
    const ends = new Uint32Array(batch.ends.buffer as ArrayBuffer);
    if (starts.length === ends.length && this.#offsetPool.length < 2) {
      this.#offsetPool.push([starts, ends]);
    }
  }

  /** At the end of input: a last line without a delimiter is still a line. */
  finish(): void {
    if (this.#lineStart < this.#len) {
      let end = this.#len;
      if (this.#stripCr && end > this.#lineStart && this.#buf[end - 1] === CR) end--;
      if (end - this.#lineStart > this.#maxLine) this.#cutOversize(end - this.#lineStart);
      else this.#push(this.#lineStart, end);
      this.#lineStart = this.#len;
    }
    this.#dropping = false;
  }

  #push(start: number, end: number): void {
    if (this.#count === this.#starts.length) {
      const s = new Uint32Array(this.#count * 2), e = new Uint32Array(this.#count * 2);
      s.set(this.#starts);
      e.set(this.#ends);
      this.#starts = s;
      this.#ends = e;
    }
    this.#starts[this.#count] = start;
    this.#ends[this.#count] = end;
    this.#count++;
  }

  /**
   * Takes the complete lines as a batch; the partial line moves to a fresh
   * buffer, so the batch's bytes stay valid while it is being written.
   */
  take(timestamp: number): RecordBatch & { oversize: number[]; oversizeBytes: number[] } {
    const batch = {
      count: this.#count,
      data: this.#buf,
      starts: this.#starts.subarray(0, this.#count),
      ends: this.#ends.subarray(0, this.#count),
      timestamp,
      oversize: this.#oversize,
      oversizeBytes: this.#oversizeBytes,
    };
    this.#oversizeBytes = [];
    // The batch keeps these offset arrays; go on with recycled (or new) ones.
    const offsets = this.#offsetPool.pop();
    this.#starts = offsets?.[0] ?? new Uint32Array(this.#starts.length);
    this.#ends = offsets?.[1] ?? new Uint32Array(this.#ends.length);
    this.#oversize = [];
    this.linesBefore += this.#count;
    const rest = this.#buf.subarray(this.#lineStart, this.#len);
    const pooled = this.#pool.pop();
    const next = pooled && pooled.length >= rest.length * 2
      ? pooled
      : new Uint8Array(Math.max(this.#initial, rest.length * 2));
    next.set(rest);
    this.#buf = next;
    this.#len = rest.length;
    this.#scan = rest.length;
    this.#lineStart = 0;
    this.#count = 0;
    return batch;
  }
}
