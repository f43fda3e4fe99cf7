import type {
  Capabilities,
  DeduplicatedAppend,
  LogReader,
  PartitionBounds,
  PartitionWrite,
  StateWrite,
  StorageAdapter,
  StorageCheckOptions,
  StorageFinding,
  TransactionCommit,
  TransactionCommitted,
  TransactionWrite,
  Versioned,
} from "../../core/adapter.ts";
import { checkKvLogs } from "./_doctor.ts";
import { MqError } from "../../core/errors.ts";
import { pickRecords, type RecordBatch, sliceOf } from "../../core/record.ts";
import {
  ByteSink,
  checkFrame,
  encodeFrames,
  FRAME_HEAD,
  FRAME_PREFIX,
  frameBase,
  frameCount,
  RECORD_HEAD,
} from "../frame_codec.ts";
import { isLockedError, type KvCallLimits, KvCalls, sleep, withDeadline } from "./_kv_calls.ts";
import {
  CommitBudget,
  KV_CHECKS,
  KV_COMMIT_BYTES,
  KV_GET_MANY,
  KV_MUTATIONS,
  KV_VALUE_BYTES,
  utf8Length,
} from "./_limits.ts";
import { KvLogReader, valueCount } from "./_log_reader.ts";
import { KvStateDocs, MAX_STATE_BYTES } from "./_state_docs.ts";

/** The largest frame body: a frame with its 8-byte prefix fills one KV value. */
const FRAME_BODY_MAX = KV_VALUE_BYTES - FRAME_PREFIX;
/** Bytes of framing around a record without key, id or headers. */
const RECORD_OVERHEAD = FRAME_PREFIX + FRAME_HEAD + RECORD_HEAD;
/** The largest payload of a record without key, id, headers, delay or TTL: 65,503 bytes. */
export const MAX_PAYLOAD_BYTES = KV_VALUE_BYTES - RECORD_OVERHEAD;
/**
 * Payload bytes per append, so that a batch of records of a few dozen bytes
 * and more is one atomic commit of at most twelve 64 KiB values.
 */
export const MAX_APPEND_BYTES = 448 * 1024;
/** How long a partition lock of a multi-commit append lasts without renewal. */
const LOCK_MS = 10_000;
/** Values deleted per trim commit (each checked, under KV's 100 checks). */
const TRIM_STEP = 64;
/** Trim commits made before a trim returns; the rest goes on in the background. */
const TRIM_INLINE_STEPS = 2;
/** ids read per step when deduplicating (in `getMany` calls of ten, at once). */
const DEDUP_READ_STEP = 500;
const TWO_64 = 1n << 64n;

/**
 * A partition's head while a multi-commit append holds it: its end stays
 * where it was until the last commit sets the new end.
 */
interface PartitionLock {
  end: number;
  owner: string;
  until: number;
  /** The dedup window (ms) of the append, when it wrote dedup entries. */
  dedupWindowMs: number;
}

/** A partition's head as read: its end and the version to check. */
interface Head {
  end: number;
  versionstamp: string | null;
  lock?: PartitionLock;
}

/** Options of {@link KvAdapter.open}. */
export interface KvOptions extends KvCallLimits {
  /**
   * How long opening waits for the store's first answer (a SQLite file held
   * locked by another program makes every call wait).
   * @default 3_000
   */
  openTimeoutMs?: number;
  /**
   * False: a file that does not exist is not created (`IO` instead), so
   * that reading commands leave nothing behind.
   * @default true
   */
  create?: boolean;
}

/** One partition's share of a commit being planned. */
interface PartitionPlan {
  topic: string;
  partition: number;
  head: Head;
  batch: RecordBatch;
  /** Frames in the sink: start and end of each, and its first offset. */
  frames: { from: number; to: number; offset: number }[];
  bytes: number;
}

/**
 * The Deno KV backend. URL: `kv:<path>` (a SQLite file), `kv::memory:`, or
 * `kv:https://...` (KV Connect; token from `DENO_KV_ACCESS_TOKEN`).
 *
 * Records are stored as CRC-checked frames, one per value of up to 64 KiB,
 * under `["log", topic, partition, firstOffset]`. A partition's head
 * `["head", topic, partition]` holds its end (the next offset) and is set, and
 * versionstamp-checked, in the same atomic commit as the frames it covers:
 * offsets are never lost or repeated with several publishers on one store,
 * and no half batch is ever visible. An append that does not fit one commit
 * (KV: 1,000 mutations, 800 KiB) locks the head for its few commits and sets
 * the end with the last one; readers never look past the end, and a lock left
 * by a crashed process expires after 10 s, when the next writer removes what
 * it wrote. `["bytes", topic, partition]` counts the bytes stored (a `sum` in
 * the same commits); `["dedup", topic, partition, id]` hold, for native
 * deduplication, until when an id counts, written with the frames. Trims move
 * `["start", topic, partition]` and delete old values in bounded commits,
 * finishing in the background. State documents are values under
 * `["state", ...key]`, larger ones split into chunks written in one commit.
 *
 * Every call is retried with backoff while SQLite reports `database is
 * locked` (several processes on one file), for 30 s at most; a store that
 * does not answer (a file another program holds locked) fails within 3 s on
 * open and 20 s later on, with exit 1.
 *
 * | capability | |
 * | --- | --- |
 * | persistent | yes (not for `kv::memory:`) |
 * | multiProcess | yes (SQLite file, remote KV) |
 * | largest message | one 64 KiB value: payload + key + id + headers (JSON) up to 65,503 bytes, less 2 for a key, 2 for an id, 4 for headers, 8 each for a delay and a TTL, 2 for a retry count; larger is refused with exit 2 (`MESSAGE_TOO_LARGE`) |
 * | atomic writes across topics | yes (`appendAtomic`, up to 100 partitions and one commit) |
 * | native dedup | yes (`appendDeduplicated`, per partition) |
 * | transactions | atomic: one commit of at most 800 KiB, 1,000 mutations, 100 partitions and documents (`commitTransaction`; larger is `TRANSACTION_TOO_LARGE`, nothing written) |
 * | largest state document | 786,432 bytes (12 values in one commit) |
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
  readonly #kv: Deno.Kv;
  readonly #calls: KvCalls;
  readonly #state: KvStateDocs;
  #sink = new ByteSink(1 << 20);
  /** Appends of this client, one at a time (processes race through versionstamps). */
  #queue: Promise<unknown> = Promise.resolve();
  /** Heads as this client last read or wrote them. */
  #heads = new Map<string, Head>();
  /** Trims going on in the background, by partition. */
  #trims = new Map<string, Promise<void>>();
  #closed = false;

  private constructor(kv: Deno.Kv, what: string, persistent: boolean, limits: KvCallLimits) {
    this.#kv = kv;
    this.#calls = new KvCalls(what, limits);
    this.#state = new KvStateDocs(kv, this.#calls);
    this.capabilities = {
      persistent,
      multiProcess: persistent,
      maxMessageBytes: MAX_PAYLOAD_BYTES,
      maxAppendBytes: MAX_APPEND_BYTES,
      transactions: "atomic",
      maxTransactionBytes: KV_COMMIT_BYTES,
    };
  }

  /**
   * Opens a KV store: a file path, `:memory:`, or an `https://` KV Connect URL.
   *
   * @throws {MqError} `IO` when a file cannot be opened (locked, unreadable, not a KV store),
   * `UNREACHABLE` for a remote one (no token, refused, no answer)
   */
  static async open(path: string, options: KvOptions = {}): Promise<KvAdapter> {
    const remote = /^https?:\/\//i.test(path);
    const what = remote ? `Deno KV at ${path}` : `Deno KV file ${path}`;
    if (typeof Deno.openKv !== "function") {
      throw new MqError(
        "IO",
        `cannot open ${what}: Deno KV is not enabled; run Deno with --unstable-kv (or "unstable": ["kv"] in deno.json)`,
      );
    }
    if (remote && !Deno.env.get("DENO_KV_ACCESS_TOKEN")) {
      throw new MqError(
        "UNREACHABLE",
        `cannot open ${what}: set DENO_KV_ACCESS_TOKEN to an access token of that database`,
      );
    }
    if (!remote && path !== ":memory:" && options.create === false) {
      const exists = await Deno.stat(path).then(() => true, (e) => {
        if (e instanceof Deno.errors.NotFound) return false;
        throw new MqError("IO", `cannot open ${what}: ${(e as Error).message}`, { cause: e });
      });
      if (!exists) {
        throw new MqError(
          "IO",
          `${what} does not exist (a command that writes, such as mq pub, creates it)`,
        );
      }
    }
    if (!remote && path !== ":memory:" && path.includes("/") && options.create !== false) {
      // A new store's folder is made, as the fs backend makes its own.
      await Deno.mkdir(path.slice(0, path.lastIndexOf("/")) || "/", { recursive: true })
        .catch(() => {}); // opening reports what is wrong
    }
    const timeout = options.openTimeoutMs ?? 3_000;
    const noAnswer = () =>
      new MqError(
        remote ? "UNREACHABLE" : "IO",
        remote
          ? `cannot open ${what}: no answer within ${timeout / 1000}s`
          : `cannot open ${what}: it is locked by another process (no answer within ${
            timeout / 1000
          }s)`,
      );
    const failed = (cause: unknown) =>
      new MqError(
        remote ? "UNREACHABLE" : "IO",
        `cannot open ${what}: ${(cause as Error).message}`,
        {
          cause,
        },
      );
    let kv: Deno.Kv;
    try {
      kv = await withDeadline(Deno.openKv(path), timeout, noAnswer);
    } catch (cause) {
      throw MqError.is(cause) ? cause : failed(cause);
    }
    // Touch it, so that a file that is not a KV store, or is locked, fails here, clearly.
    const probe = async () => {
      for (;;) {
        try {
          return await kv.get(["head"]);
        } catch (e) {
          if (!isLockedError(e)) throw e;
          await sleep(10 + Math.random() * 20);
        }
      }
    };
    try {
      await withDeadline(probe(), timeout, noAnswer);
    } catch (cause) {
      // Closing waits for the unanswered call (it blocks): leave a locked store open.
      if (!MqError.is(cause)) {
        try {
          kv.close();
        } catch { /* closed */ }
      }
      throw MqError.is(cause) ? cause : failed(cause);
    }
    return new KvAdapter(kv, what, path !== ":memory:", options);
  }

  #check(): void {
    if (this.#closed) throw new MqError("CLOSED", "the kv backend is closed");
  }

  #serial<T>(run: () => Promise<T>): Promise<T> {
    this.#check();
    const p = this.#queue.then(run);
    this.#queue = p.catch(() => {});
    return p;
  }

  // ---------------------------------------------------------------- appends

  append(topic: string, partition: number, batch: RecordBatch): Promise<number> {
    return this.#serial(async () => {
      const tooLarge = firstTooLarge(batch);
      if (tooLarge) {
        // Those before it are stored; then the refusal, with where it was.
        if (tooLarge.index > 0) {
          await this.#appendOne(topic, partition, sliceOf(batch, 0, tooLarge.index));
        }
        throw tooLargeError(tooLarge, tooLarge.index);
      }
      return (await this.#appendOne(topic, partition, batch)).first;
    });
  }

  appendDeduplicated(
    topic: string,
    partition: number,
    batch: RecordBatch,
    windowMs: number,
    now: number = Date.now(),
  ): Promise<DeduplicatedAppend> {
    return this.#serial(async () => {
      const tooLarge = firstTooLarge(batch);
      if (tooLarge) {
        let published = 0;
        if (tooLarge.index > 0) {
          published = (await this.#appendOne(topic, partition, sliceOf(batch, 0, tooLarge.index), {
            windowMs,
            now,
          })).kept.length;
        }
        throw tooLargeError(tooLarge, published);
      }
      return await this.#appendOne(topic, partition, batch, { windowMs, now });
    });
  }

  /** The first record too large for one KV value with its key, id and headers. */
  checkRecords(batch: RecordBatch): { index: number; message: string } | undefined {
    const t = firstTooLarge(batch);
    return t ? { index: t.index, message: tooLargeError(t, t.index).message } : undefined;
  }

  appendAtomic(writes: PartitionWrite[]): Promise<number[] | undefined> {
    return this.#serial(() => this.#appendAtomic(writes));
  }

  /**
   * Appends to one partition (dropping ids seen within `dedup.windowMs`):
   * one commit checked on the head when it fits, else several under a lock.
   */
  async #appendOne(
    topic: string,
    partition: number,
    batch: RecordBatch,
    dedup?: { windowMs: number; now: number },
  ): Promise<DeduplicatedAppend> {
    const headKey = ["head", topic, partition];
    for (let attempt = 0;; attempt++) {
      const head = await this.#head(topic, partition);
      if (head.lock) {
        await this.#waitForLock(topic, partition, head);
        continue;
      }
      let kept: number[] | undefined;
      let records = batch;
      let entries: DedupEntry[] = [];
      const now = dedup?.now ?? Date.now();
      if (dedup) {
        const plan = await this.#dedupPlan(topic, partition, batch, head, now, dedup.windowMs);
        kept = plan.kept;
        if (kept.length === 0) return { first: -1, kept };
        if (kept.length < batch.count) records = pickRecords(batch, kept);
        entries = plan.ids.map((id, j) => ({ id, index: plan.idIndex[j] }));
      }
      const plan = this.#encode([{ topic, partition, head, batch: records }])[0];
      const windowMs = dedup?.windowMs ?? 0;
      const mutations = this.#mutations(plan, entries, now, windowMs);
      const budget = new CommitBudget();
      let fits = true;
      for (const m of mutations) {
        if (!budget.fits(m.key, m.bytes)) {
          fits = false;
          break;
        }
        budget.add(m.key, m.bytes);
      }
      const keptOf = () => kept ?? Array.from({ length: batch.count }, (_, i) => i);
      if (fits) {
        const end = head.end + records.count;
        const res = await this.#calls.run("append", () => {
          const op = this.#kv.atomic().check({ key: headKey, versionstamp: head.versionstamp });
          for (const m of mutations) op.set(m.key, m.value, m.options);
          op.set(headKey, BigInt(end));
          op.sum(["bytes", topic, partition], BigInt(plan.bytes));
          return op.commit();
        });
        if (res.ok) {
          this.#heads.set(partKey(topic, partition), { end, versionstamp: res.versionstamp });
          return { first: head.end, kept: keptOf() };
        }
      } else {
        const first = await this.#appendLocked(plan, mutations, windowMs);
        if (first !== undefined) return { first, kept: keptOf() };
      }
      // Another writer moved the head: read it again.
      this.#heads.delete(partKey(topic, partition));
      if (attempt > 0) await sleep(Math.random() * Math.min(20, attempt));
      if (attempt > 100_000) {
        throw new MqError("CONFLICT", `too many concurrent publishers on "${topic}"`);
      }
    }
  }

  /** The mutations of a partition's frames (and dedup entries), in order. */
  #mutations(
    plan: PartitionPlan,
    entries: DedupEntry[],
    now: number,
    windowMs: number,
    token?: string,
  ): Mutation[] {
    const { topic, partition } = plan;
    const out: Mutation[] = [];
    const bytes = this.#sink.bytes;
    for (const f of plan.frames) {
      out.push({
        key: ["log", topic, partition, f.offset],
        value: bytes.subarray(f.from, f.to),
        bytes: f.to - f.from,
      });
    }
    for (const e of entries) {
      const value = dedupValue(now + windowMs, plan.head.end + e.index, token);
      out.push({
        key: ["dedup", topic, partition, e.id],
        value,
        bytes: value.length,
        options: { expireIn: windowMs + 60_000 },
      });
    }
    return out;
  }

  /**
   * Writes a plan that needs several commits: the first locks the head (its
   * end unchanged), each renews the lock, the last sets the end. Resolves to
   * the first offset, or undefined when the head was taken meanwhile (nothing
   * of this append is then visible; the caller starts again).
   */
  async #appendLocked(
    plan: PartitionPlan,
    mutations: Mutation[],
    windowMs: number,
  ): Promise<number | undefined> {
    const { topic, partition, head } = plan;
    const headKey = ["head", topic, partition];
    const owner = crypto.randomUUID();
    const lock = (): PartitionLock => ({
      end: head.end,
      owner,
      until: Date.now() + LOCK_MS,
      dedupWindowMs: windowMs,
    });
    // Dedup entries written under a lock carry its owner, so that a crash
    // (the owner marked aborted by the next writer) voids them.
    if (windowMs > 0) {
      for (const m of mutations) {
        if (m.key[0] === "dedup") {
          const v = m.value as Uint8Array;
          m.value = dedupValue(
            new DataView(v.buffer, v.byteOffset).getFloat64(0, true),
            new DataView(v.buffer, v.byteOffset).getFloat64(8, true),
            owner,
          );
          m.bytes = (m.value as Uint8Array).length;
        }
      }
    }
    const commits: Mutation[][] = [];
    let budget = new CommitBudget();
    for (const m of mutations) {
      if (!budget.fits(m.key, m.bytes) && !budget.empty) {
        commits.push([]);
        budget = new CommitBudget();
      }
      if (commits.length === 0) commits.push([]);
      commits[commits.length - 1].push(m);
      budget.add(m.key, m.bytes);
    }
    let versionstamp = head.versionstamp;
    const end = head.end + plan.batch.count;
    let locked = false;
    try {
      for (let k = 0; k < commits.length; k++) {
        const last = k === commits.length - 1;
        const expected = versionstamp;
        const res = await this.#calls.run("append", () => {
          const op = this.#kv.atomic().check({ key: headKey, versionstamp: expected });
          for (const m of commits[k]) op.set(m.key, m.value, m.options);
          if (last) {
            op.set(headKey, BigInt(end));
            op.sum(["bytes", topic, partition], BigInt(plan.bytes));
          } else op.set(headKey, lock());
          return op.commit();
        });
        if (!res.ok) {
          // Taken over (this append was too slow) or moved before the first commit.
          this.#heads.delete(partKey(topic, partition));
          return undefined;
        }
        locked = !last;
        versionstamp = res.versionstamp;
      }
      this.#heads.set(partKey(topic, partition), { end, versionstamp });
      return head.end;
    } catch (e) {
      if (locked) {
        await this.#clearLock(topic, partition, { ...lock(), until: 0 }, versionstamp!)
          .catch(() => {});
      }
      throw e;
    }
  }

  /** Waits while another writer's lock is live; takes over and clears it once expired. */
  async #waitForLock(topic: string, partition: number, head: Head): Promise<void> {
    this.#heads.delete(partKey(topic, partition));
    const lock = head.lock!;
    const left = lock.until - Date.now();
    if (left > 0) {
      await sleep(Math.min(left, 5 + Math.random() * 20));
      return;
    }
    const mine: PartitionLock = {
      ...lock,
      owner: crypto.randomUUID(),
      until: Date.now() + LOCK_MS,
    };
    const headKey = ["head", topic, partition];
    const res = await this.#calls.run(
      "append",
      () =>
        this.#kv.atomic().check({ key: headKey, versionstamp: head.versionstamp }).set(
          headKey,
          mine,
        )
          .commit(),
    );
    if (!res.ok) return; // someone else took it
    await this.#clearLock(topic, partition, lock, res.versionstamp);
  }

  /**
   * With the head held at `versionstamp`: voids the dedup entries of the
   * interrupted append `lock`, deletes the values it left past the end, and
   * releases the head.
   */
  async #clearLock(
    topic: string,
    partition: number,
    lock: PartitionLock,
    versionstamp: string,
  ): Promise<void> {
    const headKey = ["head", topic, partition];
    const prefix = ["log", topic, partition];
    for (;;) {
      const left = await this.#calls.run("clear a partition lock", async () => {
        const keys: Deno.KvKey[] = [];
        for await (
          const e of this.#kv.list({ start: [...prefix, lock.end], end: [...prefix, Infinity] }, {
            limit: TRIM_STEP,
            batchSize: TRIM_STEP,
          })
        ) keys.push(e.key);
        return keys;
      });
      const last = left.length < TRIM_STEP;
      const res = await this.#calls.run("clear a partition lock", () => {
        const op = this.#kv.atomic().check({ key: headKey, versionstamp });
        for (const k of left) op.delete(k);
        if (last) {
          if (lock.dedupWindowMs > 0) {
            op.set(["aborted", topic, partition, lock.owner], true, {
              expireIn: lock.dedupWindowMs + 60_000,
            });
          }
          op.set(headKey, BigInt(lock.end));
        }
        return op.commit();
      });
      if (!res.ok || last) return;
    }
  }

  async #appendAtomic(writes: PartitionWrite[]): Promise<number[] | undefined> {
    if (writes.length === 0) return [];
    for (const w of writes) if (firstTooLarge(w.batch)) return undefined;
    const r = await this.#commitAll(writes, []);
    return typeof r === "string" ? undefined : r.firsts;
  }

  /**
   * One transaction in one KV commit (see {@link StorageAdapter.commitTransaction}):
   * the appends, checked on every partition head, and the state documents,
   * checked on their versionstamps.
   *
   * @throws {MqError} `TRANSACTION_TOO_LARGE`, having written nothing, beyond one commit
   */
  commitTransaction(commit: TransactionCommit): Promise<TransactionCommitted | "conflict"> {
    return this.#serial(async () => {
      for (const w of commit.writes) {
        const t = firstTooLarge(w.batch);
        if (t) throw tooLargeError(t, 0);
      }
      for (const st of commit.states) {
        if (st.value.length > KV_VALUE_BYTES - 64) {
          throw new MqError(
            "TRANSACTION_TOO_LARGE",
            `the transaction's state document ${
              st.key.join("/")
            } is ${st.value.length} bytes; a kv transaction holds documents of up to ${
              KV_VALUE_BYTES - 64
            } bytes`,
          );
        }
      }
      const r = await this.#commitAll(commit.writes, commit.states);
      if (typeof r === "string" && r !== "conflict") {
        throw new MqError(
          "TRANSACTION_TOO_LARGE",
          `the transaction does not fit one Deno KV commit (${r}; at most ${KV_COMMIT_BYTES} bytes, ${KV_MUTATIONS} mutations and ${KV_CHECKS} partitions and documents): nothing was written`,
        );
      }
      return r;
    });
  }

  /**
   * Appends `writes` and replaces `states` in one commit: the first offsets,
   * `"conflict"` when a state document's version changed, or what did not
   * fit (nothing written).
   */
  async #commitAll(
    given: TransactionWrite[],
    states: StateWrite[],
  ): Promise<TransactionCommitted | string> {
    let writes = given;
    const parts = [...new Set(given.map((w) => partKey(w.topic, w.partition)))];
    if (parts.length + states.length > KV_CHECKS) {
      return `${parts.length} partitions and ${states.length} documents`;
    }
    const stateKeys = states.map((st) => ["state", ...st.key] as Deno.KvKey);
    for (let attempt = 0;; attempt++) {
      // Every head, fresh.
      const heads = new Map<string, Head>();
      const keys = parts.map((k) => ["head", ...splitPartKey(k)] as Deno.KvKey);
      for (let i = 0; i < keys.length; i += KV_GET_MANY) {
        const got = await this.#calls.run(
          "append",
          () => this.#kv.getMany(keys.slice(i, i + KV_GET_MANY)),
        );
        got.forEach((e, j) => heads.set(parts[i + j], headOf(e)));
      }
      // The documents: still the expected versions? A chunked one's chunks go.
      const dropChunks: Deno.KvKey[] = [];
      for (let i = 0; i < stateKeys.length; i += KV_GET_MANY) {
        const got = await this.#calls.run(
          "read a state document",
          () => this.#kv.getMany(stateKeys.slice(i, i + KV_GET_MANY)),
        );
        for (let j = 0; j < got.length; j++) {
          const st = states[i + j];
          if (got[j].versionstamp !== st.expected) return "conflict";
          const v = got[j].value as { chunks?: unknown } | null;
          if (v && !(v instanceof Uint8Array) && typeof v.chunks === "number") {
            for (let c = 0; c < v.chunks; c++) dropChunks.push(["chunk", ...st.key, c]);
          }
        }
      }
      const locked = [...heads.entries()].find(([, h]) => h.lock);
      if (locked) {
        const [t, p] = splitPartKey(locked[0]);
        await this.#waitForLock(t, p, locked[1]);
        continue;
      }
      // Native dedup, planned on the fresh heads, written in the same commit.
      const kept: (number[] | undefined)[] = [];
      const entries: DedupEntry[][] = [];
      writes = [];
      for (const w of given) {
        if (!w.dedup) {
          kept.push(undefined);
          entries.push([]);
          writes.push(w);
          continue;
        }
        const head = heads.get(partKey(w.topic, w.partition))!;
        const d = await this.#dedupPlan(
          w.topic,
          w.partition,
          w.batch,
          head,
          w.dedup.now,
          w.dedup.windowMs,
        );
        kept.push(d.kept);
        entries.push(d.ids.map((id, j) => ({ id, index: d.idIndex[j] })));
        writes.push({ ...w, batch: pickRecords(w.batch, d.kept) });
      }
      // Several writes to one partition follow each other.
      const ends = new Map([...heads].map(([k, h]) => [k, h.end]));
      const plans = this.#encode(writes.map((w) => {
        const k = partKey(w.topic, w.partition);
        const h = heads.get(k)!;
        const head = { ...h, end: ends.get(k)! };
        ends.set(k, head.end + w.batch.count);
        return { topic: w.topic, partition: w.partition, head, batch: w.batch };
      }));
      const mutations = plans.flatMap((p, i) =>
        this.#mutations(p, entries[i], writes[i].dedup?.now ?? 0, writes[i].dedup?.windowMs ?? 0)
      );
      for (let i = 0; i < states.length; i++) {
        mutations.push({
          key: stateKeys[i],
          value: states[i].value,
          bytes: states[i].value.length,
        });
      }
      const budget = new CommitBudget();
      for (const k of parts) {
        const [t, p] = splitPartKey(k);
        budget.add(["head", t, p], 16);
        budget.add(["bytes", t, p], 16);
      }
      for (const k of dropChunks) budget.add(k, 0);
      for (const m of mutations) {
        if (!budget.fits(m.key, m.bytes)) {
          const bytes = mutations.reduce((n, x) => n + x.bytes, 0);
          return `${mutations.length} values of ${bytes} bytes`;
        }
        budget.add(m.key, m.bytes);
      }
      const res = await this.#calls.run("append", () => {
        const op = this.#kv.atomic();
        for (const k of parts) {
          op.check({ key: ["head", ...splitPartKey(k)], versionstamp: heads.get(k)!.versionstamp });
        }
        states.forEach((st, i) => op.check({ key: stateKeys[i], versionstamp: st.expected }));
        for (const m of mutations) op.set(m.key, m.value, m.options);
        for (const k of dropChunks) op.delete(k);
        for (const k of parts) {
          const [t, p] = splitPartKey(k);
          let bytes = 0;
          for (const plan of plans) {
            if (plan.topic === t && plan.partition === p) bytes += plan.bytes;
          }
          op.set(["head", t, p], BigInt(ends.get(k)!));
          op.sum(["bytes", t, p], BigInt(bytes));
        }
        return op.commit();
      });
      if (res.ok) {
        for (const k of parts) {
          this.#heads.set(k, { end: ends.get(k)!, versionstamp: res.versionstamp });
        }
        return { firsts: plans.map((p) => p.head.end), kept };
      }
      // A head moved (another writer) or a document changed: look again.
      for (const k of parts) this.#heads.delete(k);
      await sleep(Math.random() * Math.min(20, attempt + 1));
    }
  }

  /** Encodes each plan's records into the sink as frames of one value each. */
  #encode(
    plans: { topic: string; partition: number; head: Head; batch: RecordBatch }[],
  ): PartitionPlan[] {
    let sink = this.#sink;
    if (sink.bytes.length > 8 << 20) sink = this.#sink = new ByteSink(1 << 20);
    sink.length = 0;
    const out: PartitionPlan[] = [];
    for (const p of plans) {
      const start = sink.length;
      const ends = encodeFrames(p.batch, p.head.end, sink, FRAME_BODY_MAX);
      const frames: PartitionPlan["frames"] = [];
      let from = start;
      for (const to of ends) {
        frames.push({ from, to, offset: frameBase(sink.view, from) });
        from = to;
      }
      out.push({ ...p, frames, bytes: sink.length - start });
    }
    return out;
  }

  /** The head of a partition: this client's own last write, else read. */
  async #head(topic: string, partition: number): Promise<Head> {
    const cached = this.#heads.get(partKey(topic, partition));
    if (cached) return cached;
    const e = await this.#calls.run(
      "read a partition head",
      () => this.#kv.get(["head", topic, partition]),
    );
    return headOf(e);
  }

  // ---------------------------------------------------------------- dedup

  /**
   * Which records of `batch` to keep: those without an id, and the first of
   * each id that no live entry of this partition names.
   */
  async #dedupPlan(
    topic: string,
    partition: number,
    batch: RecordBatch,
    head: Head,
    now: number,
    windowMs: number,
  ): Promise<{ kept: number[]; ids: string[]; idIndex: number[] }> {
    const firstOf = new Map<string, number>();
    for (let i = 0; i < batch.count; i++) {
      const id = batch.meta?.[i]?.id;
      if (id !== undefined && !firstOf.has(id)) firstOf.set(id, i);
    }
    const ids = [...firstOf.keys()];
    const seen = new Set<string>();
    if (windowMs > 0) {
      const found: { id: string; until: number; offset: number; owner?: string }[] = [];
      for (let i = 0; i < ids.length; i += DEDUP_READ_STEP) {
        const step = ids.slice(i, i + DEDUP_READ_STEP);
        const reads: Promise<Deno.KvEntryMaybe<unknown>[]>[] = [];
        for (let j = 0; j < step.length; j += KV_GET_MANY) {
          const keys = step.slice(j, j + KV_GET_MANY).map((id) => ["dedup", topic, partition, id]);
          reads.push(this.#calls.run("read dedup entries", () => this.#kv.getMany(keys)));
        }
        for (const entries of await Promise.all(reads)) {
          for (const e of entries) {
            if (!(e.value instanceof Uint8Array) || e.value.length < 16) continue;
            const entry = readDedupValue(e.value);
            if (entry.until > now && entry.offset < head.end) {
              found.push({ id: String(e.key[3]), ...entry });
            }
          }
        }
      }
      // Entries of appends that were interrupted do not count.
      const owners = [...new Set(found.flatMap((f) => f.owner ? [f.owner] : []))];
      const aborted = new Set<string>();
      for (let j = 0; j < owners.length; j += KV_GET_MANY) {
        const keys = owners.slice(j, j + KV_GET_MANY).map((o) => ["aborted", topic, partition, o]);
        const got = await this.#calls.run("read dedup entries", () => this.#kv.getMany(keys));
        for (const e of got) if (e.versionstamp !== null) aborted.add(String(e.key[3]));
      }
      for (const f of found) if (!f.owner || !aborted.has(f.owner)) seen.add(f.id);
    }
    const kept: number[] = [];
    const keptIds: string[] = [];
    const idIndex: number[] = [];
    for (let i = 0; i < batch.count; i++) {
      const id = batch.meta?.[i]?.id;
      if (id === undefined) {
        kept.push(i);
        continue;
      }
      if (firstOf.get(id) !== i || seen.has(id)) continue;
      if (windowMs > 0) {
        keptIds.push(id);
        idIndex.push(kept.length);
      }
      kept.push(i);
    }
    return { kept, ids: keptIds, idIndex };
  }

  // ---------------------------------------------------------------- reads

  async openReader(topic: string, partition: number, from: number): Promise<LogReader> {
    this.#check();
    const bounds = await this.bounds(topic, partition);
    return new KvLogReader(
      this.#kv,
      this.#calls,
      ["log", topic, partition],
      from,
      bounds,
      () => this.bounds(topic, partition),
    );
  }

  async bounds(topic: string, partition: number): Promise<PartitionBounds> {
    this.#check();
    const [head, start] = await this.#calls.run("read a partition head", () =>
      this.#kv.getMany([
        ["head", topic, partition],
        ["start", topic, partition],
      ]));
    const end = headOf(head).end;
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
        if (headOf(value[0]).end > offset) return;
      }
    } catch {
      // Cancelled, or the store was busy: callers check again (after a breath).
      await sleep(10);
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      reader.releaseLock();
      await stream.cancel().catch(() => {});
    }
  }

  /**
   * Bytes of the values from the partition's start to its end: the counter
   * less what lies below the start (in the value the start falls in, and in
   * values a trim has not deleted yet).
   */
  async storedBytes(topic: string, partition: number): Promise<number> {
    this.#check();
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
      const local = this.#trims.get(partKey(topic, partition));
      if (local && attempt >= 1) await local.catch(() => {});
      else await sleep(Math.min(50, attempt * 2));
    }
  }

  // ---------------------------------------------------------------- trims

  /**
   * Moves the partition's start to `before` at once (readers skip what lies
   * below), then deletes the values wholly below it in commits of at most
   * 64 values: two here, the rest in the background.
   */
  async trim(topic: string, partition: number, before: number): Promise<void> {
    this.#check();
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
    if (this.#trims.has(key)) return; // the background trim goes on to the new start
    let more = true;
    for (let step = 0; step < TRIM_INLINE_STEPS && more; step++) {
      more = await this.#trimStep(topic, partition);
    }
    if (!more) return;
    const background = (async () => {
      try {
        while (!this.#closed && await this.#trimStep(topic, partition)) await sleep(0);
      } catch { /* the next trim goes on from where this one stopped */ }
    })().finally(() => this.#trims.delete(key));
    this.#trims.set(key, background);
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

  async dropLog(topic: string): Promise<void> {
    this.#check();
    for (const [k, p] of this.#trims) if (splitPartKey(k)[0] === topic) await p;
    for (const k of [...this.#heads.keys()]) {
      if (splitPartKey(k)[0] === topic) this.#heads.delete(k);
    }
    for (const ns of ["log", "head", "start", "bytes", "dedup", "aborted"]) {
      await this.#deletePrefix([ns, topic]);
    }
  }

  async #deletePrefix(prefix: Deno.KvKey): Promise<void> {
    for (;;) {
      const keys = await this.#calls.run("delete", async () => {
        const out: Deno.KvKey[] = [];
        for await (const e of this.#kv.list({ prefix }, { limit: 500, batchSize: 500 })) {
          out.push(e.key);
        }
        return out;
      });
      if (keys.length === 0) return;
      await this.#calls.run("delete", () => {
        const op = this.#kv.atomic();
        for (const k of keys) op.delete(k);
        return op.commit();
      });
    }
  }

  // ---------------------------------------------------------------- state

  getState(key: string[]): Promise<Versioned | undefined> {
    this.#check();
    return this.#state.get(key);
  }

  compareAndSet(key: string[], expected: string | null, value: Uint8Array): Promise<boolean> {
    this.#check();
    return this.#state.compareAndSet(key, expected, value);
  }

  async deleteState(key: string[]): Promise<void> {
    this.#check();
    await this.#calls.run("delete a state document", () => this.#kv.delete(["state", ...key]));
    await this.#deletePrefix(["state", ...key]);
    await this.#deletePrefix(["chunk", ...key]);
  }

  /** Checks every stored frame of the topics named (see `_doctor.ts`); reports only. */
  checkStorage(options: StorageCheckOptions): Promise<StorageFinding[]> {
    this.#check();
    return checkKvLogs(this.#kv, options, async (t, p) => (await this.bounds(t, p)).start);
  }

  async listState(prefix: string[]): Promise<string[]> {
    this.#check();
    const p = ["state", ...prefix];
    return await this.#calls.run("list state documents", async () => {
      const out: string[] = [];
      for await (const e of this.#kv.list({ prefix: p })) {
        if (e.key.length === p.length + 1) out.push(String(e.key[p.length]));
      }
      return out;
    });
  }

  /** Resolves when the background trims of this client are done (for tests). */
  async settled(): Promise<void> {
    while (this.#trims.size > 0) await Promise.all(this.#trims.values());
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#queue;
    // Background trims stop at their next step; what they leave, the next trim deletes.
    this.#closed = true;
    await Promise.all(this.#trims.values());
    // A call left unanswered (a store locked by another program) would block close.
    if (!this.#calls.abandoned) this.#kv.close();
  }
}

/** Largest state document (re-exported for the README and tests). */
export { MAX_STATE_BYTES };

interface Mutation {
  key: Deno.KvKey;
  value: unknown;
  bytes: number;
  options?: { expireIn: number };
}

interface DedupEntry {
  id: string;
  /** Index of the record within the records kept. */
  index: number;
}

function partKey(topic: string, partition: number): string {
  return `${topic}\0${partition}`;
}

function splitPartKey(k: string): [string, number] {
  const at = k.lastIndexOf("\0");
  return [k.slice(0, at), Number(k.slice(at + 1))];
}

function headOf(e: Deno.KvEntryMaybe<unknown>): Head {
  const v = e.value;
  if (v === null || v === undefined) return { end: 0, versionstamp: e.versionstamp };
  if (typeof v === "bigint") return { end: Number(v), versionstamp: e.versionstamp };
  if (typeof v === "object" && typeof (v as PartitionLock).end === "number") {
    const lock = v as PartitionLock;
    return { end: lock.end, versionstamp: e.versionstamp, lock };
  }
  throw new MqError("CORRUPT", `partition head ${e.key.join("/")} is not one mq wrote`);
}

const enc = new TextEncoder(), dec = new TextDecoder();

/** A dedup entry: until when the id counts, the offset of its record, the lock owner (if any). */
function dedupValue(until: number, offset: number, owner?: string): Uint8Array {
  const o = owner ? enc.encode(owner) : undefined;
  const v = new Uint8Array(16 + (o?.length ?? 0));
  const dv = new DataView(v.buffer);
  dv.setFloat64(0, until, true);
  dv.setFloat64(8, offset, true);
  if (o) v.set(o, 16);
  return v;
}

function readDedupValue(v: Uint8Array): { until: number; offset: number; owner?: string } {
  const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
  return {
    until: dv.getFloat64(0, true),
    offset: dv.getFloat64(8, true),
    owner: v.length > 16 ? dec.decode(v.subarray(16)) : undefined,
  };
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

/** A record too large for one value: where, and its sizes. */
interface TooLarge {
  index: number;
  payload: number;
  extra: number;
  limit: number;
}

/** The first record of `batch` whose frame would not fit one KV value. */
function firstTooLarge(batch: RecordBatch): TooLarge | undefined {
  const { starts, ends, meta, count } = batch;
  for (let i = 0; i < count; i++) {
    const payload = ends[i] - starts[i];
    const m = meta?.[i];
    if (!m) {
      if (payload > MAX_PAYLOAD_BYTES) {
        return { index: i, payload, extra: 0, limit: MAX_PAYLOAD_BYTES };
      }
      continue;
    }
    // Cheap bound first: a UTF-16 unit is at most three UTF-8 bytes.
    let fixed = 0, bound = 0;
    if (m.key !== undefined) (fixed += 2), (bound += 3 * m.key.length);
    if (m.id !== undefined) (fixed += 2), (bound += 3 * m.id.length);
    const headers = m.headers && Object.keys(m.headers).length > 0
      ? JSON.stringify(m.headers)
      : undefined;
    if (headers !== undefined) (fixed += 4), (bound += 3 * headers.length);
    if (m.deliverAt !== undefined) fixed += 8;
    if (m.expiresAt !== undefined) fixed += 8;
    if (m.attempt) fixed += 2;
    const limit = MAX_PAYLOAD_BYTES - fixed;
    if (payload + bound <= limit) continue;
    const extra = (m.key !== undefined ? utf8Length(m.key) : 0) +
      (m.id !== undefined ? utf8Length(m.id) : 0) +
      (headers !== undefined ? utf8Length(headers) : 0);
    if (payload + extra > limit) return { index: i, payload, extra, limit };
  }
  return undefined;
}

function tooLargeError(t: TooLarge, published: number): MqError {
  const what = t.extra > 0
    ? `message is ${t.payload + t.extra} bytes with its key, id and headers (payload ${t.payload})`
    : `message is ${t.payload} bytes`;
  return new MqError(
    "MESSAGE_TOO_LARGE",
    `${what}; the kv backend stores at most ${t.limit} in one Deno KV value`,
    { details: { index: t.index, published } },
  );
}
