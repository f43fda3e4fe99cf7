import type {
  Capabilities,
  DeduplicatedAppend,
  LogReader,
  PartitionBounds,
  PartitionWrite,
  StorageAdapter,
  TransactionCommit,
  TransactionCommitted,
  Versioned,
} from "../../core/adapter.ts";
import { MqError } from "../../core/errors.ts";
import { pickRecords, type RecordBatch, type StoredRecord } from "../../core/record.ts";
import { DedupIndex } from "../../core/_dedup.ts";

interface Partition {
  start: number;
  records: StoredRecord[];
  bytes: number;
  waiters: Set<() => void>;
  /** The ids stored, for native dedup. */
  ids: DedupIndex;
}

/**
 * A backend in this process's memory: the reference for the conformance suite
 * and for tests of code that uses mq. URL: `memory:`.
 *
 * | capability | |
 * | --- | --- |
 * | persistent | no |
 * | multiProcess | no |
 * | atomic writes across topics | yes (`appendAtomic`) |
 * | native dedup | yes (`appendDeduplicated`, per partition, in the same step as the append) |
 * | transactions | atomic (`commitTransaction`, no size limit) |
 *
 * @example
 * ```ts
 * import { MemoryAdapter } from "./memory_adapter.ts";
 * import { Mq } from "../../core/client.ts";
 * const mq = new Mq(new MemoryAdapter());
 * await mq.publish("t", "x");
 * ```
 */
export class MemoryAdapter implements StorageAdapter {
  readonly capabilities: Capabilities = {
    persistent: false,
    multiProcess: false,
    transactions: "atomic",
  };
  #logs = new Map<string, Partition[]>();
  #state = new Map<string, Versioned>();
  #version = 0;
  #closed = false;

  #partition(topic: string, p: number): Partition {
    if (this.#closed) throw new MqError("CLOSED", "the memory backend is closed");
    let parts = this.#logs.get(topic);
    if (!parts) this.#logs.set(topic, parts = []);
    return parts[p] ??= {
      start: 0,
      records: [],
      bytes: 0,
      waiters: new Set(),
      ids: new DedupIndex(),
    };
  }

  append(topic: string, partition: number, batch: RecordBatch): Promise<number> {
    return Promise.resolve(this.#append(topic, partition, batch));
  }

  /** Appends `batch` but for the ids this partition stored within the window: nothing runs in between. */
  appendDeduplicated(
    topic: string,
    partition: number,
    batch: RecordBatch,
    windowMs: number,
    now: number,
  ): Promise<DeduplicatedAppend> {
    const part = this.#partition(topic, partition);
    const kept = this.#kept(part, batch, windowMs, now);
    if (kept.length === 0) return Promise.resolve({ first: -1, kept });
    const first = this.#append(topic, partition, pickRecords(batch, kept), now);
    return Promise.resolve({ first, kept });
  }

  /** Appends every write at once: nothing else runs in between. */
  appendAtomic(writes: PartitionWrite[]): Promise<number[]> {
    for (const w of writes) this.#partition(w.topic, w.partition); // fails before any write
    return Promise.resolve(writes.map((w) => this.#append(w.topic, w.partition, w.batch)));
  }

  /** Checks every version, then appends and replaces everything: nothing else runs in between. */
  commitTransaction(commit: TransactionCommit): Promise<TransactionCommitted | "conflict"> {
    for (const w of commit.writes) this.#partition(w.topic, w.partition);
    for (const s of commit.states) {
      if ((this.#state.get(s.key.join("\u0000"))?.version ?? null) !== s.expected) {
        return Promise.resolve("conflict");
      }
    }
    const kept: (number[] | undefined)[] = [];
    const firsts = commit.writes.map((w) => {
      if (!w.dedup) {
        kept.push(undefined);
        return this.#append(w.topic, w.partition, w.batch);
      }
      const part = this.#partition(w.topic, w.partition);
      const k = this.#kept(part, w.batch, w.dedup.windowMs, w.dedup.now);
      kept.push(k);
      return this.#append(w.topic, w.partition, pickRecords(w.batch, k), w.dedup.now);
    });
    for (const s of commit.states) {
      this.#state.set(s.key.join("\u0000"), {
        value: s.value.slice(),
        version: String(++this.#version),
      });
    }
    return Promise.resolve({ firsts, kept });
  }

  /** The records of `batch` to store, but for the ids `part` stored within the window. */
  #kept(part: Partition, batch: RecordBatch, windowMs: number, now: number): number[] {
    part.ids.prune(windowMs, now);
    const { hits, keep } = part.ids.filter(batch, windowMs, now);
    if (hits.length === 0) return keep();
    const same = new Set<number>();
    for (const h of hits) {
      const stored = part.records[h.offset - part.start];
      if (!stored || stored.id === batch.meta?.[h.index]?.id) same.add(h.index);
    }
    return keep(same);
  }

  #append(topic: string, partition: number, batch: RecordBatch, now = Date.now()): number {
    const part = this.#partition(topic, partition);
    const first = part.start + part.records.length;
    part.ids.noteBatch(batch, undefined, now, first);
    for (let i = 0; i < batch.count; i++) {
      const m = batch.meta?.[i];
      const payload = batch.data.slice(batch.starts[i], batch.ends[i]);
      const rec: StoredRecord = {
        offset: first + i,
        timestamp: m?.timestamp ?? batch.timestamp,
        payload,
      };
      if (m) {
        for (const k of ["key", "id", "deliverAt", "expiresAt", "attempt"] as const) {
          if (m[k] !== undefined) (rec as unknown as Record<string, unknown>)[k] = m[k];
        }
        if (m.headers && Object.keys(m.headers).length > 0) rec.headers = { ...m.headers };
      }
      part.records.push(rec);
      part.bytes += payload.length;
    }
    for (const wake of part.waiters) wake();
    part.waiters.clear();
    return first;
  }

  openReader(topic: string, partition: number, from: number): Promise<LogReader> {
    const part = this.#partition(topic, partition);
    let pos = from;
    return Promise.resolve({
      read: (max: number) => {
        pos = Math.max(pos, part.start);
        const i = pos - part.start;
        const out = part.records.slice(i, i + max);
        pos += out.length;
        return Promise.resolve(out);
      },
      close: () => {},
    });
  }

  bounds(topic: string, partition: number): Promise<PartitionBounds> {
    const part = this.#partition(topic, partition);
    return Promise.resolve({ start: part.start, end: part.start + part.records.length });
  }

  storedBytes(topic: string, partition: number): Promise<number> {
    return Promise.resolve(this.#partition(topic, partition).bytes);
  }

  waitFor(
    topic: string,
    partition: number,
    offset: number,
    signal: AbortSignal,
    timeoutMs: number,
  ): Promise<void> {
    const part = this.#partition(topic, partition);
    if (part.start + part.records.length > offset || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        part.waiters.delete(done);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      part.waiters.add(done);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  trim(topic: string, partition: number, before: number): Promise<void> {
    const part = this.#partition(topic, partition);
    const n = Math.min(Math.max(0, before - part.start), part.records.length);
    for (let i = 0; i < n; i++) part.bytes -= part.records[i].payload.length;
    part.records.splice(0, n);
    part.start += n;
    return Promise.resolve();
  }

  dropLog(topic: string): Promise<void> {
    for (const part of this.#logs.get(topic) ?? []) {
      for (const wake of part?.waiters ?? []) wake();
    }
    this.#logs.delete(topic);
    return Promise.resolve();
  }

  getState(key: string[]): Promise<Versioned | undefined> {
    return Promise.resolve(this.#state.get(key.join("\u0000")));
  }

  compareAndSet(key: string[], expected: string | null, value: Uint8Array): Promise<boolean> {
    const k = key.join("\u0000");
    const cur = this.#state.get(k);
    if ((cur?.version ?? null) !== expected) return Promise.resolve(false);
    this.#state.set(k, { value: value.slice(), version: String(++this.#version) });
    return Promise.resolve(true);
  }

  deleteState(key: string[]): Promise<void> {
    const k = key.join("\u0000");
    for (const name of [...this.#state.keys()]) {
      if (name === k || name.startsWith(k + "\u0000")) this.#state.delete(name);
    }
    return Promise.resolve();
  }

  listState(prefix: string[]): Promise<string[]> {
    const p = prefix.join("\u0000") + "\u0000";
    const names = new Set<string>();
    for (const k of this.#state.keys()) {
      if (k.startsWith(p)) {
        const rest = k.slice(p.length);
        if (!rest.includes("\u0000")) names.add(rest);
      }
    }
    return Promise.resolve([...names]);
  }

  close(): Promise<void> {
    this.#closed = true;
    for (const parts of this.#logs.values()) {
      for (const part of parts) for (const wake of part?.waiters ?? []) wake();
    }
    return Promise.resolve();
  }
}
