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

/** The state documents under one folder. */
export class StateFiles {
  #root: string;
  #sync: SyncPolicy;

  constructor(root: string, sync: SyncPolicy) {
    this.#root = `${root}/state`;
    this.#sync = sync;
  }

  #path(key: string[]): string {
    return `${this.#root}/${key.join("/")}`;
  }

  /** The file of the document `key`. */
  fileOf(key: string[]): string {
    return this.#path(key) + ".doc";
  }

  async get(key: string[]): Promise<Versioned | undefined> {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(this.#path(key) + ".doc");
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
    const path = this.#path(key);
    const dir = path.slice(0, path.lastIndexOf("/"));
    await Deno.mkdir(dir, { recursive: true });
    const lock = await Deno.open(path + ".lock", { read: true, write: true, create: true });
    try {
      await lock.lock(true);
      const cur = await this.get(key);
      if ((cur?.version ?? null) !== expected) return false;
      const previous = cur ? Number(cur.version) : 0;
      const version = String(Number.isSafeInteger(previous) ? previous + 1 : Date.now());
      const head = enc.encode(version + "\n");
      const bytes = new Uint8Array(head.length + value.length);
      bytes.set(head);
      bytes.set(value, head.length);
      // One temporary name per document, written only under its lock: a
      // file a crashed or failed writer left is overwritten by the next one.
      const tmp = `${path}.tmp`;
      try {
        const f = await Deno.open(tmp, { write: true, create: true, truncate: true });
        try {
          let n = 0;
          while (n < bytes.length) n += await f.write(bytes.subarray(n));
          if (this.#sync !== "never") await f.syncData();
        } finally {
          f.close();
        }
        await Deno.rename(tmp, path + ".doc");
      } catch (e) {
        // A full disk: nothing of the new version stays behind.
        await Deno.remove(tmp).catch(() => {});
        throw e;
      }
      if (this.#sync === "always" || (this.#sync === "batch" && !cur)) await syncDir(dir);
      return true;
    } finally {
      await lock.unlock().catch(() => {});
      lock.close();
    }
  }

  async delete(key: string[]): Promise<void> {
    const path = this.#path(key);
    for (const p of [path + ".doc", path + ".tmp", path + ".lock", path]) {
      await Deno.remove(p, { recursive: true }).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      });
    }
  }

  async list(prefix: string[]): Promise<string[]> {
    const out: string[] = [];
    try {
      for await (const e of Deno.readDir(this.#path(prefix))) {
        if (e.isFile && e.name.endsWith(".doc")) out.push(e.name.slice(0, -4));
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    return out;
  }
}
