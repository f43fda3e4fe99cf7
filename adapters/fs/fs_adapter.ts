import type {
  Capabilities,
  CorruptionReport,
  DeduplicatedAppend,
  LogReader,
  PartitionBounds,
  StorageAdapter,
  StorageCheckOptions,
  StorageFinding,
  TransactionCommit,
  TransactionCommitted,
  Versioned,
} from "../../core/adapter.ts";
import { MqError } from "../../core/errors.ts";
import type { RecordBatch } from "../../core/record.ts";
import { bytesBefore, PartitionScans } from "./_partition_scan.ts";
import { listSegments, partitionDir, readStart, segmentName } from "./_paths.ts";
import {
  type DamageListener,
  PartitionWriter,
  syncDir,
  type SyncPolicy,
} from "./partition_writer.ts";
import type * as Doctor from "./_doctor.ts";
import { lazy } from "../../core/_lazy.ts";
import { StateFiles } from "./_state_files.ts";
import { saveSummary, StoreSummary } from "./_summary.ts";
import { HandleLru } from "./_handles.ts";
import type { FsTransactions } from "./_transactions.ts";
import type * as Transactions from "./_transactions.ts";
import { hasJournals, TX_PENDING } from "./_journals.ts";
import { checkDataFolder, fsCapabilities } from "./_data_folder.ts";
import { io, ioNow } from "./_io.ts";

/** Options of the fs backend. */
export interface FsOptions {
  /** When data reaches the disk. @default "batch" */
  fsync?: SyncPolicy;
  /**
   * Told of corrupt bytes a reader skipped (the segment file, the byte
   * range, the offsets lost) and of damage a writer cut off; the same as
   * setting {@link FsAdapter.onCorrupt}.
   */
  onCorrupt?: (report: CorruptionReport) => void;
  /**
   * The most partitions whose writers keep their files open (a lock file and
   * a high-water mark each, two file descriptors): past it, the least
   * recently used idle writer closes its files, reopening them on its next
   * append. A process that writes to 10,000 topics stays within `ulimit -n`.
   * Writers in the middle of an append or a transaction are never closed,
   * so the bound may be passed while more than this many are busy.
   * @default 64
   */
  maxOpenPartitions?: number;
  /**
   * The most readers that keep their segment file open (one file descriptor
   * each): past it, the least recently used idle reader closes its file and
   * reopens it, at the same place, on its next read. A subscription to
   * 10,000 topics stays within `ulimit -n`. With the writers' default, at
   * most about 190 descriptors: under 256, macOS's default limit.
   * @default 64
   */
  maxOpenReaders?: number;
}

/** See {@link FsOptions.maxOpenPartitions}. */
export const MAX_OPEN_PARTITIONS = 64;
/** See {@link FsOptions.maxOpenReaders}. */
export const MAX_OPEN_READERS = 64;

/**
 * The filesystem backend, the embedded default. URL: `file:<dir>` or
 * `file:///abs/dir`, with `?fsync=always|batch|never`: `batch` (the default)
 * syncs each written batch before a publish resolves, and each state document
 * before it replaces the old one; `always` also syncs the folder after every
 * state update, so that the update itself survives a power loss; `never`
 * leaves it to the OS (a crash of mq alone loses nothing written).
 *
 * | capability | |
 * | --- | --- |
 * | persistent | yes |
 * | multiProcess | yes (file locks) |
 * | transactions | atomic (`commitTransaction`: a commit record per transaction in `tx/`, rolled forward after a crash; up to 256 MiB of messages) |
 * | native dedup | yes (`appendDeduplicated`, per partition: the ids of the log within the window, decided under the append lock; `dedup.tix` times the appends) |
 *
 * @example
 * ```ts ignore
 * import { FsAdapter } from "./fs_adapter.ts";
 * import { Mq } from "../../core/client.ts";
 * const mq = new Mq(await FsAdapter.open("./data"));
 * await mq.publish("orders", "hello");
 * ```
 */
export class FsAdapter implements StorageAdapter {
  readonly capabilities: Capabilities = fsCapabilities();
  /** The data folder. */
  readonly root: string;
  #options: FsOptions;
  #writers = new Map<string, PartitionWriter>();
  /** Writers that may hold open files (see {@link FsOptions.maxOpenPartitions}). */
  #openWriters: HandleLru;
  /** Readers that may hold an open segment (see {@link FsOptions.maxOpenReaders}). */
  #openReaders: HandleLru;
  /** When `bounds` last peeked through a writer (see storedBytes). */
  #peekedAt = new WeakMap<PartitionWriter, number>();
  /** What {@link #scan} saw of each partition folder. */
  #scans = new PartitionScans();
  /** The store's summary (`_summary.ts`): read by the first listing of the topics (a view's first pass). */
  #summary: StoreSummary;
  #state: StateFiles;
  /** The journal code, loaded on the first transaction or the first journal seen. */
  #tx: Promise<FsTransactions> | undefined;
  #watchers = new Map<string, { watcher: Deno.FsWatcher; waiters: Set<() => void> }>();
  #closed = false;
  /** Told of corrupt bytes skipped by readers and damage cut off by writers. */
  onCorrupt: ((report: CorruptionReport) => void) | undefined;

  private constructor(root: string, options: FsOptions) {
    this.root = root;
    this.#options = options;
    this.onCorrupt = options.onCorrupt;
    this.#openWriters = new HandleLru(options.maxOpenPartitions ?? MAX_OPEN_PARTITIONS);
    this.#openReaders = new HandleLru(options.maxOpenReaders ?? MAX_OPEN_READERS);
    this.#summary = new StoreSummary(this.root);
    this.#state = new StateFiles(
      root,
      options.fsync ?? "batch",
      (key) => this.#guard([], [key]),
    );
  }

  /** The transactions of this folder (`_transactions.ts` is imported on the first call). */
  #transactions(): Promise<FsTransactions> {
    return this.#tx ??= lazy<typeof Transactions>(import.meta.url, "./_transactions.ts").then(
      ({ FsTransactions }) =>
        new FsTransactions(
          this.root,
          this.#options.fsync ?? "batch",
          (t, p) => this.#writer(t, p),
          () => this.#state,
          (r) => this.onCorrupt?.(r),
        ),
    );
  }

  /**
   * Throws {@link TX_PENDING} when a committed journal touches one of `parts`
   * or `keys` (see `FsTransactions.guard`); with no journal in the folder,
   * without loading the journal code.
   */
  async #guard(parts: string[], keys: string[][]): Promise<void> {
    if (this.#tx === undefined && !hasJournals(`${this.root}/tx`)) return;
    await (await this.#transactions()).guard(parts, keys);
  }

  /** Finishes the transactions a crashed writer committed (none: nothing is loaded). */
  async #recover(): Promise<void> {
    if (this.#tx === undefined && !hasJournals(`${this.root}/tx`)) return;
    await (await this.#transactions()).recover();
  }

  /** A damage listener for one partition that adds its topic and partition. */
  #damage(topic: string, partition: number): DamageListener {
    return (r) => this.onCorrupt?.({ topic, partition, ...r });
  }

  /** The file of a state document. */
  stateLocation(key: string[]): string {
    return this.#state.fileOf(key);
  }

  /**
   * Checks every segment, index and state folder (see `_doctor.ts`);
   * with `repair`, fixes what can be fixed without losing a message.
   */
  checkStorage(options: StorageCheckOptions): Promise<StorageFinding[]> {
    this.#check();
    // The doctor is loaded on its first use (by a computed specifier, which
    // Deno does not read at start), not with the adapter.
    return io(async () => {
      const { checkFsStore } = await lazy<typeof Doctor>(import.meta.url, "./_doctor.ts");
      return checkFsStore(this.root, options, (topic, partition) => this.#writer(topic, partition));
    });
  }

  /**
   * Opens a backend folder (created by the first write).
   *
   * @throws {MqError} `IO` when the folder cannot be created or written
   */
  static async open(root: string, options: FsOptions = {}): Promise<FsAdapter> {
    checkDataFolder(root);
    const adapter = new FsAdapter(root.replace(/\/+$/, "") || "/", options);
    // Transactions a crashed writer committed but did not finish: finish them.
    await io(() => adapter.#recover());
    return adapter;
  }

  #check(): void {
    if (this.#closed) throw new MqError("CLOSED", "the fs backend is closed");
  }

  /** The partition's writer; `opens`: the caller is about to write (or lock) (it counts as a use of its files, see {@link HandleLru}). */
  #writer(topic: string, partition: number, opens = true): PartitionWriter {
    this.#check();
    const k = `${topic}/${partition}`;
    let w = this.#writers.get(k);
    if (!w) {
      w = new PartitionWriter(
        partitionDir(this.root, topic, partition),
        this.#options.fsync ?? "batch",
        this.#damage(topic, partition),
        () => this.#guard([k], []),
      );
      this.#writers.set(k, w);
    }
    if (opens) this.#openWriters.touch(w);
    return w;
  }

  async append(topic: string, partition: number, batch: RecordBatch): Promise<number> {
    const first = await this.#afterRecovery(() => this.#writer(topic, partition).append(batch));
    this.#wake(partitionDir(this.root, topic, partition));
    return first;
  }

  /**
   * Appends the records of `batch` whose id the partition did not store
   * within `windowMs` as of `now`, deciding under the partition's append lock
   * from the ids the log holds (see `partition_writer.ts`): a kill at any
   * point leaves no id counted that was not stored.
   */
  async appendDeduplicated(
    topic: string,
    partition: number,
    batch: RecordBatch,
    windowMs: number,
    now: number,
  ): Promise<DeduplicatedAppend> {
    const r = await this.#afterRecovery(() =>
      this.#writer(topic, partition).appendDeduplicated(batch, windowMs, now)
    );
    if (r.kept.length > 0) this.#wake(partitionDir(this.root, topic, partition));
    return r;
  }

  /** One transaction, all or nothing (see `_transactions.ts`). */
  async commitTransaction(commit: TransactionCommit): Promise<TransactionCommitted | "conflict"> {
    this.#check();
    const done = await io(async () => (await this.#transactions()).commit(commit));
    if (done === "conflict") return done;
    for (
      const w of new Set(commit.writes.map((w) => partitionDir(this.root, w.topic, w.partition)))
    ) {
      this.#wake(w);
    }
    return done;
  }

  /** Runs `fn`; when a crashed writer's transaction must be finished first, does that and runs it again. */
  async #afterRecovery<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0;; attempt++) {
      try {
        return await io(fn);
      } catch (e) {
        if (e !== TX_PENDING || attempt > 100) throw e;
        await io(() => this.#recover());
      }
    }
  }

  openReader(topic: string, partition: number, from: number): Promise<LogReader> {
    this.#check();
    // Loaded on the first read: a process that only writes does without it.
    return io(async () =>
      (await import("./_segment_reader.ts")).SegmentReader.open(
        partitionDir(this.root, topic, partition),
        from,
        this.#damage(topic, partition),
        this.#openReaders,
      )
    );
  }

  async bounds(topic: string, partition: number): Promise<PartitionBounds> {
    const dir = partitionDir(this.root, topic, partition);
    // A view's first look: the summary's row, where the files did not change.
    const row = this.#summary.takePartition(`${topic}/${partition}`, dir);
    if (row) {
      this.#scans.adopt(dir, row.scan);
      this.#peekedAt.set(this.#writer(topic, partition, false).adoptPeek(row.peek), Date.now());
      return row.bounds;
    }
    const { bases, start: kept, hasHighWater } = await ioNow(() => this.#scans.scan(dir));
    if (bases.length === 0) return { start: kept, end: kept };
    // Unchanged since the last look: one stat of the last segment.
    const w = this.#writer(topic, partition, false);
    const end = await io(() => w.peekEnd(bases, hasHighWater));
    const start = Math.min(end, Math.max(bases[0], kept));
    this.#peekedAt.set(w, Date.now());
    return { start, end };
  }

  /**
   * Bytes the partition's records take on disk, from its start to its end:
   * the segments' sizes less what lies before the start in the first one
   * (trimming removes whole segments only).
   */
  async storedBytes(topic: string, partition: number): Promise<number> {
    const dir = partitionDir(this.root, topic, partition);
    // The listing `bounds` took a moment ago (unless this process wrote or
    // trimmed since), and the last segment's size as it saw it.
    const { bases, start } = await ioNow(() => this.#scans.recent(dir, PEEKED_MS));
    // The last segment's size as `bounds` saw it a moment ago (the views ask
    // for bounds, then bytes): one stat less per partition.
    const w = this.#writers.get(`${topic}/${partition}`);
    const peeked = w && Date.now() - (this.#peekedAt.get(w) ?? 0) < PEEKED_MS
      ? w.peeked
      : undefined;
    let total = 0;
    for (const base of bases) {
      const path = `${dir}/${segmentName(base)}`;
      if (peeked?.path === path) {
        total += peeked.size;
        continue;
      }
      try {
        total += Deno.statSync(path).size;
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e; // else removed meanwhile
      }
    }
    if (bases.length === 0) return 0;
    if (start <= bases[0]) return total;
    return Math.max(0, total - await io(() => bytesBefore(dir, bases[0], start)));
  }

  async waitFor(
    topic: string,
    partition: number,
    offset: number,
    signal: AbortSignal,
    timeoutMs: number,
  ): Promise<void> {
    const dir = partitionDir(this.root, topic, partition);
    if (signal.aborted || (await this.bounds(topic, partition)).end > offset) return;
    await Deno.mkdir(dir, { recursive: true });
    let w = this.#watchers.get(dir);
    if (!w) {
      const watcher = Deno.watchFs(dir, { recursive: false });
      const entry = { watcher, waiters: new Set<() => void>() };
      this.#watchers.set(dir, entry);
      (async () => {
        try {
          for await (const _ of watcher) this.#wake(dir);
        } catch { /* closed */ }
      })();
      w = entry;
    }
    // Listen first, then look once more: an append between the first look and
    // the listening would otherwise wait out the whole timeout.
    const waiters = w.waiters;
    let done!: () => void;
    const woken = new Promise<void>((resolve) => {
      done = () => {
        clearTimeout(timer);
        waiters.delete(done);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      waiters.add(done);
      signal.addEventListener("abort", done, { once: true });
    });
    // Aborted while the watcher was being set up: the listener came too late.
    if (signal.aborted || (await this.bounds(topic, partition)).end > offset) done();
    await woken;
  }

  #wake(dir: string): void {
    this.#scans.touched(dir);
    const w = this.#watchers.get(dir);
    if (!w) return;
    for (const wake of [...w.waiters]) wake();
  }

  async trim(topic: string, partition: number, before: number): Promise<void> {
    const dir = partitionDir(this.root, topic, partition);
    await this.#writer(topic, partition).exclusive(async (end) => {
      // Never below the start: a trim by another client may have moved it past `before`.
      const cut = Math.max(await readStart(dir), Math.min(before, end));
      const tmp = `${dir}/start.tmp`;
      await Deno.writeTextFile(tmp, String(cut));
      await Deno.rename(tmp, `${dir}/start`);
      const bases = await listSegments(dir);
      // Whole segments below the cut go; a purge also starts a fresh segment.
      if (cut >= end && !bases.includes(end)) {
        const f = await Deno.open(`${dir}/${segmentName(end)}`, { write: true, create: true });
        f.close();
        bases.push(end);
      }
      for (let i = 0; i < bases.length - 1; i++) {
        if (bases[i + 1] <= cut) {
          await Deno.remove(`${dir}/${segmentName(bases[i])}`).catch(() => {});
          await Deno.remove(`${dir}/${segmentName(bases[i]).replace(/\.log$/, ".idx")}`).catch(
            () => {},
          );
        }
      }
      await syncDir(dir);
    });
    this.#scans.touched(dir);
  }

  async dropLog(topic: string): Promise<void> {
    for (const [k, w] of this.#writers) {
      if (k.startsWith(topic + "/")) {
        w.reset();
        this.#writers.delete(k);
        this.#openWriters.forget(w);
      }
    }
    this.#scans.forget(`${this.root}/log/${topic}/`);
    this.#summary.forgetTopic(topic);
    for (const [dir, w] of this.#watchers) {
      if (dir.startsWith(`${this.root}/log/${topic}/`)) {
        for (const wake of [...w.waiters]) wake();
        w.watcher.close();
        this.#watchers.delete(dir);
      }
    }
    await Deno.remove(`${this.root}/log/${topic}`, { recursive: true }).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
  }

  getState(key: string[]): Promise<Versioned | undefined> {
    this.#check();
    const read = () => this.#state.getSync(key);
    return ioNow(() => this.#summary.getState(key, this.stateLocation(key), read));
  }

  async compareAndSet(key: string[], expected: string | null, value: Uint8Array): Promise<boolean> {
    this.#check();
    const set = await this.#afterRecovery(() => this.#state.compareAndSet(key, expected, value));
    if (set) this.#summary.written(key, () => this.#state.getSync(key));
    return set;
  }

  deleteState(key: string[]): Promise<void> {
    this.#check();
    if (key[0] === "topics") this.#summary.forgetTopic(key[1]);
    return io(() => this.#state.delete(key));
  }

  listState(prefix: string[]): Promise<string[]> {
    this.#check();
    if (prefix.length === 1 && prefix[0] === "topics") this.#summary.load();
    return ioNow(() => this.#state.listSync(prefix));
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    saveSummary(this.#summary, this.root, this.#writers, this.#scans, this.#state);
    for (const w of this.#writers.values()) w.close();
    this.#writers.clear();
    this.#openWriters.clear();
    this.#openReaders.clear();
    this.#scans.clear();
    for (const w of this.#watchers.values()) {
      for (const wake of [...w.waiters]) wake();
      w.watcher.close();
    }
    this.#watchers.clear();
    return Promise.resolve();
  }
}

/** How long a segment's size `bounds` saw stands for it in `storedBytes`, ms. */
const PEEKED_MS = 100;
