/**
 * State documents of the kv backend, versioned for compare-and-set by the
 * versionstamp of their head value `["state", ...key]`. A document of up to
 * 64 KiB is that value itself; a larger one is split into chunks of 64 KiB
 * under `["chunk", ...key, i]`, written in the same atomic commit as a head
 * value `{chunks, bytes}` (so every chunk carries the head's versionstamp, and
 * a reader can tell a consistent set), up to what one commit holds:
 * {@link MAX_STATE_BYTES}.
 *
 * @module
 */
import type { Versioned } from "../../core/adapter.ts";
import { MqError } from "../../core/errors.ts";
import type { KvCalls } from "./_kv_calls.ts";
import { KV_COMMIT_BYTES, KV_GET_MANY, KV_VALUE_BYTES } from "./_limits.ts";

/** Chunks of a large document (12 x 64 KiB and their keys fit one commit of 800 KiB). */
const MAX_CHUNKS: number = Math.floor((KV_COMMIT_BYTES - 16 * 1024) / KV_VALUE_BYTES);
/** The largest state document: 786,432 bytes. */
export const MAX_STATE_BYTES = MAX_CHUNKS * KV_VALUE_BYTES;

/** The head value of a document split into chunks. */
interface ChunkedHead {
  chunks: number;
  bytes: number;
}

function isChunked(v: unknown): v is ChunkedHead {
  return typeof v === "object" && v !== null && !(v instanceof Uint8Array) &&
    typeof (v as ChunkedHead).chunks === "number";
}

/** Reads and writes state documents; see the module doc. */
export class KvStateDocs {
  readonly #kv: Deno.Kv;
  readonly #calls: KvCalls;
  /** Chunks of the versions this client read or wrote, by `key\0versionstamp`. */
  #chunkCounts = new Map<string, number>();

  constructor(kv: Deno.Kv, calls: KvCalls) {
    this.#kv = kv;
    this.#calls = calls;
  }

  async get(key: string[]): Promise<Versioned | undefined> {
    const headKey = ["state", ...key];
    for (let attempt = 0;; attempt++) {
      const head = await this.#calls.run("read a state document", () => this.#kv.get(headKey));
      if (head.versionstamp === null || head.value === null) return undefined;
      if (head.value instanceof Uint8Array) {
        this.#remember(key, head.versionstamp, 0);
        return { value: head.value, version: head.versionstamp };
      }
      if (!isChunked(head.value)) {
        throw new MqError("CORRUPT", `state document ${key.join("/")} is not one mq wrote`);
      }
      const { chunks, bytes } = head.value;
      const keys = Array.from({ length: chunks }, (_, i) => ["chunk", ...key, i]);
      const parts: Deno.KvEntryMaybe<unknown>[] = [];
      for (let i = 0; i < keys.length; i += KV_GET_MANY) {
        const got = await this.#calls.run(
          "read a state document",
          () => this.#kv.getMany(keys.slice(i, i + KV_GET_MANY)),
        );
        parts.push(...got);
      }
      // Written with the head in one commit, every chunk carries its versionstamp.
      if (parts.every((p) => p.versionstamp === head.versionstamp)) {
        const value = new Uint8Array(bytes);
        let at = 0;
        for (const p of parts) {
          const c = p.value as Uint8Array;
          value.set(c, at);
          at += c.length;
        }
        if (at === bytes) {
          this.#remember(key, head.versionstamp, chunks);
          return { value, version: head.versionstamp };
        }
      }
      // A writer replaced it between the two reads: read again.
      if (attempt >= 20) {
        throw new MqError("CONFLICT", `state document ${key.join("/")} changes too fast to read`);
      }
    }
  }

  async compareAndSet(key: string[], expected: string | null, value: Uint8Array): Promise<boolean> {
    if (value.length > MAX_STATE_BYTES) {
      throw new MqError(
        "IO",
        `state document ${
          key.join("/")
        } is ${value.length} bytes; the kv backend stores state documents of up to ${MAX_STATE_BYTES} bytes (${MAX_CHUNKS} Deno KV values of 64 KiB written in one atomic commit)`,
      );
    }
    const headKey = ["state", ...key];
    // The chunks of the version replaced, to delete those the new one does not overwrite.
    let before = 0;
    if (expected !== null) {
      const known = this.#chunkCounts.get(`${key.join("\0")}\0${expected}`);
      if (known !== undefined) before = known;
      else {
        const head = await this.#calls.run("read a state document", () => this.#kv.get(headKey));
        if (head.versionstamp !== expected) return false;
        before = isChunked(head.value) ? head.value.chunks : 0;
      }
    }
    const chunks = value.length > KV_VALUE_BYTES ? Math.ceil(value.length / KV_VALUE_BYTES) : 0;
    const commit = () => {
      const op = this.#kv.atomic().check({ key: headKey, versionstamp: expected });
      if (chunks === 0) op.set(headKey, value);
      else {
        op.set(headKey, { chunks, bytes: value.length } satisfies ChunkedHead);
        for (let i = 0; i < chunks; i++) {
          const end = Math.min(value.length, (i + 1) * KV_VALUE_BYTES);
          op.set(["chunk", ...key, i], value.subarray(i * KV_VALUE_BYTES, end));
        }
      }
      for (let i = chunks; i < before; i++) op.delete(["chunk", ...key, i]);
      return op.commit();
    };
    const res = await this.#calls.run("write a state document", commit);
    if (res.ok) this.#remember(key, res.versionstamp, chunks);
    return res.ok;
  }

  #remember(key: string[], version: string, chunks: number): void {
    if (this.#chunkCounts.size > 4096) this.#chunkCounts.clear();
    this.#chunkCounts.set(`${key.join("\0")}\0${version}`, chunks);
  }
}
