import type {
  Capabilities,
  LogReader,
  PartitionBounds,
  StorageAdapter,
  Versioned,
} from "../../core/adapter.ts";
import { MqError } from "../../core/errors.ts";
import type { RecordBatch, StoredRecord } from "../../core/record.ts";
import { ByteSink, checkFrame, decodeFrame, encodeFrames, frameBase } from "../frame_codec.ts";

/** Bytes of records per KV value (a value may hold 64 KiB). */
const VALUE_TARGET = 60 * 1024;
/** Bytes of values per atomic commit (KV allows 800 KiB). */
const COMMIT_BYTES = 720 * 1024;
/** Values per atomic commit (KV allows 1000 mutations). */
const COMMIT_RECORDS = 50_000;
/** Records below a trim removed per background step. */
const TRIM_STEP = 200;

/**
 * The Deno KV backend. URL: `kv:<path>` (a SQLite file), `kv::memory:`, or
 * `kv:https://...` (KV Connect; token from `DENO_KV_ACCESS_TOKEN`).
 *
 * Records are stored as CRC-checked frames of up to ~60 KiB under
 * `["log", topic, partition, firstOffset]`; each partition has a head key
 * `["head", topic, partition]` holding the next offset, advanced in the same
 * atomic commit (versionstamp-checked) as the frames it covers, so offsets are
 * never lost or repeated with several publishers on one KV, and no half batch
 * is ever visible. State documents live under `["state", ...key]`.
 *
 * | capability | |
 * | --- | --- |
 * | persistent | yes (not for `kv::memory:`) |
 * | multiProcess | yes (SQLite file) |
 * | largest message | 60 KiB (a KV value holds 64 KiB; larger is refused with exit 2) |
 *
 * @example
 * ```ts ignore
 * import { KvAdapter } from "./kv_adapter.ts";
 * import { Mq } from "../../core/client.ts";
 * const mq = new Mq(await KvAdapter.open("./mq.sqlite"));
 * await mq.publish("orders", "hello");
 * ```
 */
export class KvAdapter implements StorageAdapter {
  readonly capabilities: Capabilities;
  #kv: Deno.Kv;
  #sink = new ByteSink(1 << 20);
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(kv: Deno.Kv, persistent: boolean) {
    this.#kv = kv;
    this.capabilities = {
      persistent,
      multiProcess: persistent,
      maxMessageBytes: VALUE_TARGET - 1024,
    };
  }

  /**
   * Opens a KV store: a file path, `:memory:`, or an `https://` KV Connect URL.
   *
   * @throws {MqError} `IO` when it cannot be opened (locked, unreadable), `UNREACHABLE` for a remote one
   */
  static async open(path: string): Promise<KvAdapter> {
    try {
      const kv = await Deno.openKv(path);
      // Touch it, so that a file that is not a KV store fails here, clearly.
      await kv.get(["head"]);
      return new KvAdapter(kv, path !== ":memory:");
    } catch (cause) {
      const remote = path.startsWith("http");
      throw new MqError(
        remote ? "UNREACHABLE" : "IO",
        `cannot open Deno KV ${remote ? "at" : "file"} ${path}: ${(cause as Error).message}`,
        { cause },
      );
    }
  }

  #check(): void {
    if (this.#closed) throw new MqError("CLOSED", "the kv backend is closed");
  }

  append(topic: string, partition: number, batch: RecordBatch): Promise<number> {
    this.#check();
    // One append at a time per client keeps the sink simple; processes race through versionstamps.
    const run = this.#queue.then(() => this.#append(topic, partition, batch));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #append(topic: string, partition: number, batch: RecordBatch): Promise<number> {
    const headKey = ["head", topic, partition];
    let first = -1;
    let i = 0;
    while (i < batch.count) {
      // Records for one commit: within the value and byte limits.
      let bytes = 0, n = 0;
      while (i + n < batch.count && n < COMMIT_RECORDS) {
        const m = batch.meta?.[i + n];
        const size = batch.ends[i + n] - batch.starts[i + n] + 16 +
          (m
            ? 3 *
                ((m.key?.length ?? 0) + (m.id?.length ?? 0) +
                  (m.headers ? JSON.stringify(m.headers).length : 0)) + 40
            : 0);
        if (n > 0 && bytes + size > COMMIT_BYTES) break;
        bytes += size;
        n++;
      }
      const part = slice(batch, i, n);
      for (let attempt = 0;; attempt++) {
        const head = await this.#kv.get<bigint>(headKey);
        const next = head.value === null ? 0 : Number(head.value);
        const sink = this.#sink;
        sink.length = 0;
        const ends = encodeFrames(part, next, sink, VALUE_TARGET);
        const op = this.#kv.atomic().check({ key: headKey, versionstamp: head.versionstamp });
        let start = 0, offset = next;
        const dv = sink.view;
        for (const end of ends) {
          op.set(["log", topic, partition, offset], sink.bytes.slice(start, end));
          offset = frameBase(dv, start) + dv.getUint32(start + 16, true);
          start = end;
        }
        op.set(headKey, BigInt(next + part.count));
        const res = await op.commit();
        if (res.ok) {
          if (first < 0) first = next;
          break;
        }
        if (attempt > 10_000) {
          throw new MqError("CONFLICT", `too many concurrent publishers on "${topic}"`);
        }
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(20, attempt + 1)));
      }
      i += n;
    }
    if (this.#sink.bytes.length > 8 << 20) this.#sink = new ByteSink(1 << 20);
    return first < 0 ? Number((await this.#kv.get<bigint>(headKey)).value ?? 0n) : first;
  }

  async openReader(topic: string, partition: number, from: number): Promise<LogReader> {
    this.#check();
    const kv = this.#kv;
    const start = Math.max(from, await this.#start(topic, partition));
    let next = start;
    let queue: StoredRecord[] = [];
    let closed = false;
    return {
      read: async (max: number) => {
        const out: StoredRecord[] = [];
        while (out.length < max && !closed) {
          if (queue.length > 0) {
            const take = queue.splice(0, max - out.length);
            out.push(...take);
            next = take[take.length - 1].offset + 1;
            continue;
          }
          // The value holding `next`: the last one that starts at or before it.
          const prefix = ["log", topic, partition];
          let base = next;
          for await (
            const e of kv.list({ prefix, end: [...prefix, next + 1] }, { reverse: true, limit: 1 })
          ) {
            base = Number(e.key[3]);
          }
          let got = 0;
          for await (
            const e of kv.list<Uint8Array>({
              start: [...prefix, base],
              end: [...prefix, Number.MAX_SAFE_INTEGER],
            }, {
              limit: 16,
              batchSize: 16,
            })
          ) {
            got++;
            const bytes = e.value;
            if (!(bytes instanceof Uint8Array)) continue;
            const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
            const total = checkFrame(bytes, dv, 0, bytes.length);
            if (total <= 0) continue; // never return a corrupt record
            decodeFrame(bytes, dv, 0, total, next, queue);
          }
          if (queue.length === 0) break;
          if (got === 0) break;
        }
        return out;
      },
      close: () => {
        closed = true;
        queue = [];
      },
    };
  }

  async #start(topic: string, partition: number): Promise<number> {
    const s = await this.#kv.get<bigint>(["start", topic, partition]);
    return s.value === null ? 0 : Number(s.value);
  }

  async bounds(topic: string, partition: number): Promise<PartitionBounds> {
    this.#check();
    const [head, start] = await this.#kv.getMany<[bigint, bigint]>([
      ["head", topic, partition],
      ["start", topic, partition],
    ]);
    const end = head.value === null ? 0 : Number(head.value);
    return { start: Math.min(end, start.value === null ? 0 : Number(start.value)), end };
  }

  async waitFor(
    topic: string,
    partition: number,
    offset: number,
    signal: AbortSignal,
    timeoutMs: number,
  ): Promise<void> {
    if (signal.aborted || (await this.bounds(topic, partition)).end > offset) return;
    const stream = this.#kv.watch([["head", topic, partition]]);
    const reader = stream.getReader();
    const timer = setTimeout(() => reader.cancel().catch(() => {}), timeoutMs);
    const onAbort = () => reader.cancel().catch(() => {});
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || !value) return;
        const head = value[0].value as bigint | null;
        if (head !== null && Number(head) > offset) return;
      }
    } catch {
      // cancelled
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      reader.releaseLock();
      await stream.cancel().catch(() => {});
    }
  }

  async trim(topic: string, partition: number, before: number): Promise<void> {
    this.#check();
    const end = (await this.bounds(topic, partition)).end;
    const cut = Math.min(before, end);
    await this.#kv.set(["start", topic, partition], BigInt(cut));
    // Values wholly below the cut go, in bounded steps.
    const prefix = ["log", topic, partition];
    for (;;) {
      const keys: Deno.KvKey[] = [];
      let lastStart = -1;
      for await (
        const e of this.#kv.list({ prefix, end: [...prefix, cut] }, { limit: TRIM_STEP })
      ) {
        keys.push(e.key);
        lastStart = Number(e.key[3]);
      }
      if (keys.length === 0) return;
      // The last value may hold records at or above the cut: keep it unless the next one starts at or below the cut.
      let keepLast = true;
      for await (
        const e of this.#kv.list({ start: [...prefix, lastStart + 1], end: [...prefix, cut + 1] }, {
          limit: 1,
        })
      ) {
        if (e) keepLast = false;
      }
      const drop = keepLast ? keys.slice(0, -1) : keys;
      if (drop.length === 0) return;
      const op = this.#kv.atomic();
      for (const k of drop) op.delete(k);
      await op.commit();
      if (keys.length < TRIM_STEP) return;
    }
  }

  async dropLog(topic: string): Promise<void> {
    this.#check();
    for (const prefix of [["log", topic], ["head", topic], ["start", topic]]) {
      await this.#deletePrefix(prefix);
    }
  }

  async #deletePrefix(prefix: Deno.KvKey): Promise<void> {
    for (;;) {
      const op = this.#kv.atomic();
      let n = 0;
      for await (const e of this.#kv.list({ prefix }, { limit: 500 })) {
        op.delete(e.key);
        n++;
      }
      if (n === 0) return;
      await op.commit();
    }
  }

  async getState(key: string[]): Promise<Versioned | undefined> {
    this.#check();
    const e = await this.#kv.get<Uint8Array>(["state", ...key]);
    if (e.value === null || e.versionstamp === null) return undefined;
    return { value: e.value, version: e.versionstamp };
  }

  async compareAndSet(key: string[], expected: string | null, value: Uint8Array): Promise<boolean> {
    this.#check();
    if (value.length > 65536) {
      throw new MqError(
        "IO",
        `state document ${key.join("/")} is ${value.length} bytes; Deno KV values hold 64 KiB`,
      );
    }
    const res = await this.#kv.atomic()
      .check({ key: ["state", ...key], versionstamp: expected })
      .set(["state", ...key], value)
      .commit();
    return res.ok;
  }

  async deleteState(key: string[]): Promise<void> {
    this.#check();
    await this.#kv.delete(["state", ...key]);
    await this.#deletePrefix(["state", ...key]);
  }

  async listState(prefix: string[]): Promise<string[]> {
    this.#check();
    const out: string[] = [];
    const p = ["state", ...prefix];
    for await (const e of this.#kv.list({ prefix: p })) {
      if (e.key.length === p.length + 1) out.push(String(e.key[p.length]));
    }
    return out;
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#kv.close();
    }
    return Promise.resolve();
  }
}

function slice(batch: RecordBatch, from: number, n: number): RecordBatch {
  if (from === 0 && n === batch.count) return batch;
  return {
    count: n,
    data: batch.data,
    starts: batch.starts.subarray(from, from + n),
    ends: batch.ends.subarray(from, from + n),
    meta: batch.meta?.slice(from, from + n),
    timestamp: batch.timestamp,
  };
}
