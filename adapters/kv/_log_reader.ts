/**
 * A sequential reader over one partition of the kv backend: lists the values
 * (frames) from the one holding its position on, up to the partition's end as
 * last read from its head, so that values of an append still in progress
 * (under a partition lock) or left behind by a crash are never seen.
 *
 * @module
 */
import type { LogReader, PartitionBounds } from "../../core/adapter.ts";
import type { StoredRecord } from "../../core/record.ts";
import {
  checkFrame,
  decodeFrame,
  FRAME_HEAD,
  FRAME_PREFIX,
  frameBase,
  frameCount,
} from "../_frame_codec.ts";
import type { KvCalls } from "./_kv_calls.ts";

/** Values listed per step (each at most 64 KiB). */
const VALUES_PER_READ = 16;

/** See the module doc. */
export class KvLogReader implements LogReader {
  readonly #kv: Deno.Kv;
  readonly #calls: KvCalls;
  readonly #prefix: Deno.KvKey;
  readonly #bounds: () => Promise<PartitionBounds>;
  /** The next offset to return. */
  #next: number;
  /** The partition's end as last read. */
  #end: number;
  /** The key (first offset) of the next value to list; undefined: find it from `#next`. */
  #listFrom: number | undefined;
  #queue: StoredRecord[] = [];
  #closed = false;
  /** True when no value is stored from `#next` to `#end` (they were corrupt, and skipped). */
  #passed = false;

  constructor(
    kv: Deno.Kv,
    calls: KvCalls,
    prefix: Deno.KvKey,
    from: number,
    bounds: PartitionBounds,
    readBounds: () => Promise<PartitionBounds>,
  ) {
    this.#kv = kv;
    this.#calls = calls;
    this.#prefix = prefix;
    this.#next = Math.max(from, bounds.start);
    this.#end = bounds.end;
    this.#bounds = readBounds;
  }

  /**
   * The offset of the next record this reader can return: past offsets whose
   * values could not be read (see `LogReader.position`).
   */
  position(): number {
    if (this.#queue.length > 0) return this.#queue[0].offset;
    return this.#passed ? this.#end : this.#next;
  }

  async read(max: number): Promise<StoredRecord[]> {
    this.#passed = false;
    const out: StoredRecord[] = [];
    let refreshed = false;
    while (out.length < max && !this.#closed) {
      if (this.#queue.length > 0) {
        const take = this.#queue.length <= max - out.length
          ? this.#queue.splice(0)
          : this.#queue.splice(0, max - out.length);
        for (const r of take) out.push(r);
        this.#next = take[take.length - 1].offset + 1;
        continue;
      }
      if (this.#next >= this.#end) {
        if (refreshed) break;
        refreshed = true;
        const b = await this.#bounds();
        this.#end = b.end;
        if (b.start > this.#next) (this.#next = b.start), (this.#listFrom = undefined);
        if (this.#next >= this.#end) break;
      }
      if (!(await this.#fill())) {
        // Nothing stored where records should be: trimmed meanwhile.
        const b = await this.#bounds();
        this.#end = b.end;
        if (b.start > this.#next) {
          this.#next = b.start;
          this.#listFrom = undefined;
          continue;
        }
        this.#passed = this.#next < this.#end;
        break;
      }
    }
    return out;
  }

  /** Lists the next values into the queue; false when there were none. */
  async #fill(): Promise<boolean> {
    const prefix = this.#prefix;
    if (this.#listFrom === undefined) {
      // The value holding `#next`: the last one that starts at or before it
      // and reaches it (a nearer one that does not is stray, or a gap).
      const next = this.#next;
      this.#listFrom = await this.#calls.run("read", async () => {
        let nearest: number | undefined;
        for (const limit of [1, 64]) {
          for await (
            const e of this.#kv.list({ prefix, end: [...prefix, next + 1] }, {
              reverse: true,
              limit,
              batchSize: limit,
            })
          ) {
            const base = Number(e.key[e.key.length - 1]);
            nearest ??= base;
            if (base + valueCount(e.value) > next) return base;
          }
          if (nearest === undefined) return next;
        }
        return nearest ?? next;
      });
    }
    const from = this.#listFrom, end = this.#end;
    const values = await this.#calls.run("read", async () => {
      const got: Deno.KvEntry<unknown>[] = [];
      for await (
        const e of this.#kv.list({ start: [...prefix, from], end: [...prefix, end] }, {
          limit: VALUES_PER_READ,
          batchSize: VALUES_PER_READ,
        })
      ) got.push(e);
      return got;
    });
    if (values.length === 0) return false;
    // Offsets already queued are never queued again (a stray value overlapping
    // its predecessor, left by a topic removed during an append, is skipped).
    let min = this.#next;
    for (const e of values) {
      const bytes = e.value;
      if (!(bytes instanceof Uint8Array)) continue;
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const total = checkFrame(bytes, dv, 0, bytes.length);
      // Never return a corrupt record, nor one of a frame stored under the wrong key.
      if (total <= 0 || frameBase(dv, 0) !== Number(e.key[e.key.length - 1])) continue;
      if (frameBase(dv, 0) < min && frameBase(dv, 0) >= this.#next) continue;
      const mark = this.#queue.length;
      decodeFrame(bytes, dv, 0, total, min, this.#queue);
      if (this.#queue.length > mark) min = this.#queue[this.#queue.length - 1].offset + 1;
      // Records at or past the end read belong to nothing committed yet.
      let keep = this.#queue.length;
      while (keep > mark && this.#queue[keep - 1].offset >= end) keep--;
      this.#queue.length = keep;
    }
    this.#listFrom = Number(values[values.length - 1].key[prefix.length]) + 1;
    // A gap (values trimmed under the reader): go on from what is there.
    if (this.#queue.length > 0 && this.#queue[0].offset > this.#next) {
      this.#next = this.#queue[0].offset;
    }
    return true;
  }

  close(): void {
    this.#closed = true;
    this.#queue = [];
  }
}

/** Records in a stored value (0 when it is not a frame). */
export function valueCount(v: unknown): number {
  if (!(v instanceof Uint8Array) || v.length < FRAME_PREFIX + FRAME_HEAD) return 0;
  return frameCount(new DataView(v.buffer, v.byteOffset, v.byteLength), 0);
}
