import type {
  Capabilities,
  DeduplicatedAppend,
  LogReader,
  PartitionBounds,
  PartitionWrite,
  StorageAdapter,
  StorageCheckOptions,
  StorageFinding,
  TransactionCommit,
  TransactionCommitted,
  Versioned,
} from "../../core/adapter.ts";
import { checkKvLogs } from "./_doctor.ts";
import { MqError } from "../../core/errors.ts";
import { type RecordBatch, sliceOf } from "../../core/record.ts";
import { KvAppender } from "./_append.ts";
import { KvCommits } from "./_commit.ts";
import { headOf, splitPartKey } from "./_heads.ts";
import { isLockedError, type KvCallLimits, KvCalls, sleep, withDeadline } from "./_kv_calls.ts";
import { KV_COMMIT_BYTES } from "./_limits.ts";
import { KvLogReader } from "./_log_reader.ts";
import { firstTooLarge, MAX_PAYLOAD_BYTES, tooLargeError } from "./_record_size.ts";
import { KvStateDocs, MAX_STATE_BYTES } from "./_state_docs.ts";
import { deletePrefix, KvTrims } from "./_trim.ts";

/**
 * Payload bytes per append, so that a batch of records of a few dozen bytes
 * and more is one atomic commit of at most twelve 64 KiB values.
 */
export const MAX_APPEND_BYTES = 448 * 1024;

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
  readonly #appender: KvAppender;
  readonly #commits: KvCommits;
  readonly #trims: KvTrims;
  /** Appends of this client, one at a time (processes race through versionstamps). */
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(kv: Deno.Kv, what: string, persistent: boolean, limits: KvCallLimits) {
    this.#kv = kv;
    this.#calls = new KvCalls(what, limits);
    this.#state = new KvStateDocs(kv, this.#calls);
    this.#appender = new KvAppender(kv, this.#calls);
    this.#commits = new KvCommits(kv, this.#calls, this.#appender);
    this.#trims = new KvTrims(kv, this.#calls, () => this.#closed);
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
          await this.#appender.appendOne(topic, partition, sliceOf(batch, 0, tooLarge.index));
        }
        throw tooLargeError(tooLarge, tooLarge.index);
      }
      return (await this.#appender.appendOne(topic, partition, batch)).first;
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
          published =
            (await this.#appender.appendOne(topic, partition, sliceOf(batch, 0, tooLarge.index), {
              windowMs,
              now,
            })).kept.length;
        }
        throw tooLargeError(tooLarge, published);
      }
      return await this.#appender.appendOne(topic, partition, batch, { windowMs, now });
    });
  }

  /** The first record too large for one KV value with its key, id and headers. */
  checkRecords(batch: RecordBatch): { index: number; message: string } | undefined {
    const t = firstTooLarge(batch);
    return t ? { index: t.index, message: tooLargeError(t, t.index).message } : undefined;
  }

  appendAtomic(writes: PartitionWrite[]): Promise<number[] | undefined> {
    return this.#serial(() => this.#commits.appendAtomic(writes));
  }

  /**
   * One transaction in one KV commit (see {@link StorageAdapter.commitTransaction}):
   * the appends, checked on every partition head, and the state documents,
   * checked on their versionstamps.
   *
   * @throws {MqError} `TRANSACTION_TOO_LARGE`, having written nothing, beyond one commit
   */
  commitTransaction(commit: TransactionCommit): Promise<TransactionCommitted | "conflict"> {
    return this.#serial(() => this.#commits.commitTransaction(commit));
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
    // Aborted while the watch was being set up: the listener came too late.
    if (signal.aborted) onAbort();
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
   * less what lies below the start (see `_trim.ts`).
   */
  storedBytes(topic: string, partition: number): Promise<number> {
    this.#check();
    return this.#trims.storedBytes(topic, partition);
  }

  // ---------------------------------------------------------------- trims

  /**
   * Moves the partition's start to `before` at once (readers skip what lies
   * below), then deletes the values wholly below it in commits of at most
   * 64 values: two here, the rest in the background.
   */
  trim(topic: string, partition: number, before: number): Promise<void> {
    this.#check();
    return this.#trims.trim(topic, partition, before);
  }

  async dropLog(topic: string): Promise<void> {
    this.#check();
    await this.#trims.settled(topic);
    const heads = this.#appender.heads;
    for (const k of [...heads.keys()]) {
      if (splitPartKey(k)[0] === topic) heads.delete(k);
    }
    // Appends racing the removal wait on the held heads, so that none lands in
    // the log while it is deleted (a gap below it afterwards); the heads go last.
    await this.#appender.holdForDrop(topic);
    for (const ns of ["log", "start", "bytes", "dedup", "aborted", "head"]) {
      await deletePrefix(this.#kv, this.#calls, [ns, topic]);
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
    await deletePrefix(this.#kv, this.#calls, ["state", ...key]);
    await deletePrefix(this.#kv, this.#calls, ["chunk", ...key]);
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
  settled(): Promise<void> {
    return this.#trims.settled();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#queue;
    // Background trims stop at their next step; what they leave, the next trim deletes.
    this.#closed = true;
    await this.#trims.settled();
    // A call left unanswered (a store locked by another program) would block close.
    if (!this.#calls.abandoned) this.#kv.close();
  }
}

/** The largest payload and state document (re-exported for the README and tests). */
export { MAX_PAYLOAD_BYTES, MAX_STATE_BYTES };
