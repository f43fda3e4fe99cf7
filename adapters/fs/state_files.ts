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
import { MqError } from "../../core/errors.ts";
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
      throw new MqError("CORRUPT", `state file ${this.#path(key)}.doc has no version line`);
    }
    return {
      version: new TextDecoder().decode(bytes.subarray(0, nl)),
      value: bytes.subarray(nl + 1),
    };
  }

  async compareAndSet(key: string[], expected: string | null, value: Uint8Array): Promise<boolean> {
    const path = this.#path(key);
    const dir = path.slice(0, path.lastIndexOf("/"));
    await Deno.mkdir(dir, { recursive: true });
    const lock = await Deno.open(path + ".lock", { read: true, write: true, create: true });
    try {
      await lock.lock(true);
      const cur = await this.get(key);
      if ((cur?.version ?? null) !== expected) return false;
      const version = String(cur ? Number(cur.version) + 1 : 1);
      const head = enc.encode(version + "\n");
      const bytes = new Uint8Array(head.length + value.length);
      bytes.set(head);
      bytes.set(value, head.length);
      const tmp = `${path}.${Deno.pid}.${Math.random().toString(36).slice(2)}.tmp`;
      const f = await Deno.open(tmp, { write: true, create: true, truncate: true });
      try {
        let n = 0;
        while (n < bytes.length) n += await f.write(bytes.subarray(n));
        if (this.#sync !== "never") await f.syncData();
      } finally {
        f.close();
      }
      await Deno.rename(tmp, path + ".doc");
      if (this.#sync === "always" || (this.#sync === "batch" && !cur)) await syncDir(dir);
      return true;
    } finally {
      await lock.unlock().catch(() => {});
      lock.close();
    }
  }

  async delete(key: string[]): Promise<void> {
    const path = this.#path(key);
    for (const p of [path + ".doc", path + ".lock", path]) {
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
