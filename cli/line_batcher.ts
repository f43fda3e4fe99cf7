/**
 * Splits stdin bytes into records without copying each line: complete lines
 * of a chunk become one {@link RecordBatch} over the chunk's bytes.
 */
import type { RecordBatch } from "../core/record.ts";

const NL = 10, CR = 13;

/** Cuts a byte stream at a delimiter into batches of records. */
export class LineBatcher {
  #delimiter: number;
  #stripCr: boolean;
  #buf: Uint8Array;
  #initial: number;
  #pool: Uint8Array[] = [];
  #len = 0;
  #scan = 0;
  #lineStart = 0;
  #starts = new Uint32Array(4096);
  #ends = new Uint32Array(4096);
  #count = 0;
  /** Lines cut before the pending ones (for line numbers). */
  linesBefore = 0;

  constructor(options: { delimiter: "newline" | "nul"; capacity?: number }) {
    this.#delimiter = options.delimiter === "nul" ? 0 : NL;
    this.#stripCr = options.delimiter === "newline";
    this.#initial = options.capacity ?? 1 << 22;
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
      this.#push(this.#lineStart, end);
      this.#lineStart = at + 1;
      at = buf.indexOf(d, at + 1);
    }
    this.#scan = this.#len;
  }

  /**
   * Gives back the bytes of a batch from {@link take} once it has been written,
   * so that they are reused rather than left to the garbage collector.
   */
  recycle(batch: RecordBatch): void {
    if (batch.data.length === this.#initial && this.#pool.length < 2) this.#pool.push(batch.data);
  }

  /** At the end of input: a last line without a delimiter is still a line. */
  finish(): void {
    if (this.#lineStart < this.#len) {
      let end = this.#len;
      if (this.#stripCr && end > this.#lineStart && this.#buf[end - 1] === CR) end--;
      this.#push(this.#lineStart, end);
      this.#lineStart = this.#len;
    }
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
  take(timestamp: number): RecordBatch {
    const batch: RecordBatch = {
      count: this.#count,
      data: this.#buf,
      starts: this.#starts.slice(0, this.#count),
      ends: this.#ends.slice(0, this.#count),
      timestamp,
    };
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
