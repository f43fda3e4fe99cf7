/**
 * State documents as files: `state/<k0>/.../<kn>.doc`, each `version\n` then
 * the value, replaced atomically (write a temporary file, sync, rename) under
 * an exclusive lock on `<doc>.lock`, so compare-and-set holds across processes.
 * Sync policy: `never` skips the syncs; `batch` syncs the document's bytes
 * before the rename (a crash leaves the old or the new document, never a torn
 * one); `always` also syncs the folder after the rename, so the new version
 * itself survives a power loss.
 */
import type { Versioned } from "../../core/adapter.ts";
import { syncDir, type SyncPolicy } from "./partition_writer.ts";

const enc = new TextEncoder();
/** How long after a folder's modification its time is trusted to show the next one, ms. */
const RACY_MS = 1000;

/** The state documents under one folder. */
export class StateFiles {
  #root: string;
  #sync: SyncPolicy;
  #guard: ((key: string[]) => Promise<void>) | undefined;
  /** Entries of folders {@link #missing} looked at, with the folder's time when listed. */
  #listings = new Map<
    string,
    { ino: number | null; mtime: number; listedAt: number; names: Set<string> }
  >();
  /** Folders a {@link #missing} call found missing (their parent's listing is asked first next time). */
  #gone = new Set<string>();

  /**
   * `guard`, when given, runs under a document's lock before every
   * compare-and-set and may throw to refuse it (transactions: see
   * `PartitionWriter`).
   */
  constructor(root: string, sync: SyncPolicy, guard?: (key: string[]) => Promise<void>) {
    this.#root = `${root}/state`;
    this.#sync = sync;
    this.#guard = guard;
  }

  /**
   * True when the folder of `prefix` is known not to exist: its parent's
   * entries, listed again when the parent's modification time moved (at most
   * once per {@link RACY_MS} per parent; in between, and while the time is
   * too recent to trust, nothing is known and the caller looks itself).
   */
  #missing(prefix: string[]): boolean {
    const up = prefix.slice(0, -1);
    const parent = this.#path(up);
    // A parent seen missing before (`groups/` of a store without groups,
    // asked once per topic by the views): its own parent's listing tells
    // whether it is still missing, with a stat that succeeds, not a failed
    // one (a failed call costs an error object, three times a stat).
    if (up.length > 0 && this.#gone.has(parent)) {
      if (this.#missing(up)) return true;
      this.#gone.delete(parent);
    }
    const now = Date.now();
    let st: Deno.FileInfo;
    try {
      st = Deno.statSync(parent);
    } catch (e) {
      // A folder whose parent is missing is missing too.
      if (!(e instanceof Deno.errors.NotFound)) return false;
      if (up.length > 0) this.#gone.add(parent);
      return true;
    }
    const mtime = st.mtime?.getTime() ?? NaN;
    let c = this.#listings.get(parent);
    const fresh = c !== undefined && c.ino === st.ino && c.mtime === mtime;
    if (!fresh || !(mtime < c!.listedAt - RACY_MS)) {
      if (c && now - c.listedAt < RACY_MS) return false;
      const names = new Set<string>();
      try {
        for (const e of Deno.readDirSync(parent)) names.add(e.name);
      } catch {
        return false;
      }
      c = { ino: st.ino, mtime, listedAt: now, names };
      this.#listings.set(parent, c);
      if (!(mtime < now - RACY_MS)) return false;
    }
    return !c!.names.has(prefix[prefix.length - 1]);
  }

  #path(key: string[]): string {
    return `${this.#root}/${key.join("/")}`;
  }

  /** The file of the document `key`. */
  fileOf(key: string[]): string {
    return this.#path(key) + ".doc";
  }

  // deno-lint-ignore require-await
  async get(key: string[]): Promise<Versioned | undefined> {
    return this.getSync(key);
  }

  /**
   * {@link get} without an async round trip: a document is a few bytes to a
   * few kilobytes in the page cache, cheaper to read at once than to hand to
   * the thread pool (`mq ui` reads every topic's settings on its first pass).
   */
  getSync(key: string[]): Versioned | undefined {
    let bytes: Uint8Array;
    try {
      bytes = Deno.readFileSync(this.#path(key) + ".doc");
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw e;
    }
    const nl = bytes.indexOf(10);
    if (nl < 0) {
      // Damaged (empty, or cut before its version line): handed over as it
      // is, so that the core names what is wrong and a repair can replace it.
      return { version: "damaged", value: bytes };
    }
    return {
      version: new TextDecoder().decode(bytes.subarray(0, nl)),
      value: bytes.subarray(nl + 1),
    };
  }

  async compareAndSet(key: string[], expected: string | null, value: Uint8Array): Promise<boolean> {
    try {
      return await this.#compareAndSet(key, expected, value);
    } catch (e) {
      // The folder was removed meanwhile (a topic removed in another
      // process): nothing was written; the caller reads again and sees.
      if (e instanceof Deno.errors.NotFound) return false;
      throw e;
    }
  }

  async #compareAndSet(
    key: string[],
    expected: string | null,
    value: Uint8Array,
  ): Promise<boolean> {
    const unlock = await this.lock(key);
    try {
      await this.#guard?.(key);
      const cur = await this.get(key);
      if ((cur?.version ?? null) !== expected) return false;
      await this.writeHeld(key, nextVersion(cur), value, !cur);
      return true;
    } finally {
      await unlock();
    }
  }

  /** Takes a document's exclusive lock; resolves to the function that releases it. */
  async lock(key: string[]): Promise<() => Promise<void>> {
    const path = this.#path(key);
    // Synchronous calls where nothing waits (the folder, the lock file, its
    // release): cheaper than a round trip to Deno's thread pool each. Taking
    // the lock may wait for another process, so it does not block.
    Deno.mkdirSync(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    const lock = Deno.openSync(path + ".lock", { read: true, write: true, create: true });
    try {
      await lock.lock(true);
    } catch (e) {
      lock.close();
      throw e;
    }
    return () => {
      try {
        lock.unlockSync();
      } catch { /* closing releases it too */ }
      lock.close();
      return Promise.resolve();
    };
  }

  /** Replaces a document with `version` (holding its {@link lock}); `created`: it was new. */
  async writeHeld(
    key: string[],
    version: string,
    value: Uint8Array,
    created: boolean,
  ): Promise<void> {
    const path = this.#path(key);
    const dir = path.slice(0, path.lastIndexOf("/"));
    const head = enc.encode(version + "\n");
    const bytes = new Uint8Array(head.length + value.length);
    bytes.set(head);
    bytes.set(value, head.length);
    // One temporary name per document, written only under its lock: a
    // file a crashed or failed writer left is overwritten by the next one.
    const tmp = `${path}.tmp`;
    // The writes are synchronous (a document into the page cache); the sync
    // that waits for the disk is not.
    try {
      const f = Deno.openSync(tmp, { write: true, create: true, truncate: true });
      try {
        let n = 0;
        while (n < bytes.length) n += f.writeSync(bytes.subarray(n));
        if (this.#sync !== "never") await f.syncData();
      } finally {
        f.close();
      }
      Deno.renameSync(tmp, path + ".doc");
    } catch (e) {
      // A full disk: nothing of the new version stays behind.
      try {
        Deno.removeSync(tmp);
      } catch { /* not there */ }
      throw e;
    }
    if (this.#sync === "always" || (this.#sync === "batch" && created)) await syncDir(dir);
  }

  async delete(key: string[]): Promise<void> {
    const path = this.#path(key);
    for (const p of [path + ".doc", path + ".tmp", path + ".lock", path]) {
      await Deno.remove(p, { recursive: true }).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      });
    }
  }

  // deno-lint-ignore require-await
  async list(prefix: string[]): Promise<string[]> {
    return this.listSync(prefix);
  }

  /** {@link list} without an async round trip (see {@link getSync}). */
  listSync(prefix: string[]): string[] {
    // Most listings are of a folder that does not exist (the groups of a
    // topic without any): its parent's listing tells, without a failed read.
    if (prefix.length > 0 && this.#missing(prefix)) return [];
    const out: string[] = [];
    try {
      // One synchronous read of the folder: names only, a few bytes each
      // (the topics of a store, 10,000 of them for `mq ui`, in one call
      // rather than a round trip to the thread pool per batch of entries).
      for (const e of Deno.readDirSync(this.#path(prefix))) {
        if (e.isFile && e.name.endsWith(".doc")) out.push(e.name.slice(0, -4));
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    return out;
  }
}

/**
 * The version a document gets when it replaces `cur`: the next number, or
 * (a damaged document's version is no number) the time, so it still differs.
 *
 * @example
 * ```ts
 * import { nextVersion } from "./_state_files.ts";
 * console.log(nextVersion({ version: "4", value: new Uint8Array() })); // "5"
 * ```
 */
export function nextVersion(cur: Versioned | undefined): string {
  const previous = cur ? Number(cur.version) : 0;
  return String(Number.isSafeInteger(previous) ? previous + 1 : Date.now());
}
