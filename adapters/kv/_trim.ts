/**
 * Trimming in the kv backend: a trim moves `["start", topic, partition]` at
 * once (readers skip what lies below), then deletes the values wholly below
 * it in checked commits of at most {@link TRIM_STEP}, taking their bytes off
 * `["bytes", topic, partition]`: two commits inline, the rest in the
 * background. Also the partition's stored size, which a trim going on
 * changes under the reader.
 *
 * @module
 */
import { checkFrame, FRAME_HEAD, FRAME_PREFIX, frameBase, frameCount } from "../_frame_codec.ts";
import { headOf, partKey, splitPartKey } from "./_heads.ts";
import { type KvCalls, sleep } from "./_kv_calls.ts";
import { valueCount } from "./_log_reader.ts";

/** Values deleted per trim commit (each checked, under KV's 100 checks). */
export const TRIM_STEP = 64;
/** Trim commits made before a trim returns; the rest goes on in the background. */
const TRIM_INLINE_STEPS = 2;
const TWO_64 = 1n << 64n;

/** Trims of one store, and the background ones still going on; see the module doc. */
export class KvTrims {
  readonly #kv: Deno.Kv;
  readonly #calls: KvCalls;
  readonly #closed: () => boolean;
  /** Trims going on in the background, by partition. */
  readonly #running = new Map<string, Promise<void>>();

  /** `closed`: true once the store closes (background trims stop at their next step). */
  constructor(kv: Deno.Kv, calls: KvCalls, closed: () => boolean) {
    this.#kv = kv;
    this.#calls = calls;
    this.#closed = closed;
  }

  /**
   * Bytes of the values from the partition's start to its end: the counter
   * less what lies below the start (in the value the start falls in, and in
   * values a trim has not deleted yet).
   */
  async storedBytes(topic: string, partition: number): Promise<number> {
    const prefix = ["log", topic, partition];
    for (let attempt = 0;; attempt++) {
      const [counter, start] = await this.#calls.run(
        "read a partition's size",
        () => this.#kv.getMany([["bytes", topic, partition], ["start", topic, partition]]),
      );
      const total = counter.value instanceof Deno.KvU64 ? Number(counter.value.value) : 0;
      const from = start.value === null ? 0 : Number(start.value);
      let below = 0;
      if (from > 0) {
        below = await this.#calls.run("read a partition's size", async () => {
          let n = 0;
          for await (const e of this.#kv.list({ prefix, end: [...prefix, from] })) {
            n += bytesBelow(e.value, from);
          }
          return n;
        });
      }
      const again = await this.#calls.run(
        "read a partition's size",
        () => this.#kv.get(["bytes", topic, partition]),
      );
      if (again.versionstamp === counter.versionstamp || attempt >= 200) {
        return Math.max(0, total - below);
      }
      // A trim step (or an append) committed meanwhile. A trim of this client
      // is waited for; another writer's is given room, ever more of it.
      const local = this.#running.get(partKey(topic, partition));
      if (local && attempt >= 1) await local.catch(() => {});
      else await sleep(Math.min(50, attempt * 2));
    }
  }

  /**
   * Moves the partition's start to `before` at once (readers skip what lies
   * below), then deletes the values wholly below it in commits of at most
   * 64 values: two here, the rest in the background.
   */
  async trim(topic: string, partition: number, before: number): Promise<void> {
    const startKey = ["start", topic, partition];
    let cut = 0;
    for (let attempt = 0;; attempt++) {
      const [head, start] = await this.#calls.run(
        "trim",
        () => this.#kv.getMany([["head", topic, partition], startKey]),
      );
      const end = headOf(head).end;
      const from = start.value === null ? 0 : Number(start.value);
      cut = Math.min(before, end);
      if (cut <= from) break;
      const res = await this.#calls.run(
        "trim",
        () =>
          this.#kv.atomic().check({ key: startKey, versionstamp: start.versionstamp })
            .set(startKey, BigInt(cut)).commit(),
      );
      if (res.ok) break;
      await sleep(Math.random() * Math.min(20, attempt + 1));
    }
    const key = partKey(topic, partition);
    if (this.#running.has(key)) return; // the background trim goes on to the new start
    let more = true;
    for (let step = 0; step < TRIM_INLINE_STEPS && more; step++) {
      more = await this.#trimStep(topic, partition);
    }
    if (!more) return;
    const background = (async () => {
      try {
        while (!this.#closed() && await this.#trimStep(topic, partition)) await sleep(0);
      } catch { /* the next trim goes on from where this one stopped */ }
    })().finally(() => this.#running.delete(key));
    this.#running.set(key, background);
  }

  /**
   * Deletes up to {@link TRIM_STEP} values wholly below the start, each
   * checked (a concurrent trim must not count its bytes twice), and takes
   * their bytes off the counter; true when more may remain.
   */
  async #trimStep(topic: string, partition: number): Promise<boolean> {
    const prefix = ["log", topic, partition];
    for (;;) {
      const start = await this.#calls.run("trim", () => this.#kv.get(["start", topic, partition]));
      const cut = start.value === null ? 0 : Number(start.value);
      const drop = await this.#calls.run("trim", async () => {
        const out: { key: Deno.KvKey; versionstamp: string; bytes: number }[] = [];
        for await (
          const e of this.#kv.list({ prefix, end: [...prefix, cut] }, {
            limit: TRIM_STEP,
            batchSize: TRIM_STEP,
          })
        ) {
          const v = e.value;
          if (!(v instanceof Uint8Array)) continue;
          const last = Number(e.key[3]) + valueCount(v) - 1;
          if (last < cut) out.push({ key: e.key, versionstamp: e.versionstamp, bytes: v.length });
        }
        return out;
      });
      if (drop.length === 0) return false;
      const bytes = drop.reduce((n, d) => n + d.bytes, 0);
      const res = await this.#calls.run("trim", () => {
        const op = this.#kv.atomic();
        for (const d of drop) op.check(d).delete(d.key);
        op.sum(["bytes", topic, partition], TWO_64 - BigInt(bytes));
        return op.commit();
      });
      if (res.ok) return drop.length === TRIM_STEP;
      // Another process deleted some of them first: list again.
      await sleep(Math.random() * 10);
    }
  }

  /** Resolves when the background trims of `topic` (every topic: undefined) are done. */
  async settled(topic?: string): Promise<void> {
    if (topic !== undefined) {
      for (const [k, p] of this.#running) if (splitPartKey(k)[0] === topic) await p;
      return;
    }
    while (this.#running.size > 0) await Promise.all(this.#running.values());
  }
}

export async function deletePrefix(kv: Deno.Kv, calls: KvCalls, prefix: Deno.KvKey): Promise<void> {
  for (;;) {
    const keys = await calls.run("delete", async () => {
      const out: Deno.KvKey[] = [];
      for await (const e of kv.list({ prefix }, { limit: 500, batchSize: 500 })) {
        out.push(e.key);
      }
      return out;
    });
    if (keys.length === 0) return;
    await calls.run("delete", () => {
      const op = kv.atomic();
      for (const k of keys) op.delete(k);
      return op.commit();
    });
  }
}

/** Bytes of a stored value that lie below offset `start`: all of it, or its records below. */
function bytesBelow(v: unknown, start: number): number {
  if (!(v instanceof Uint8Array)) return 0;
  const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
  const total = checkFrame(v, dv, 0, v.length);
  if (total <= 0) return v.length;
  const base = frameBase(dv, 0), count = frameCount(dv, 0);
  if (base + count <= start) return v.length;
  let p = FRAME_PREFIX + FRAME_HEAD;
  for (let off = base; off < start; off++) p += 4 + dv.getUint32(p, true);
  return p - FRAME_PREFIX - FRAME_HEAD;
}
