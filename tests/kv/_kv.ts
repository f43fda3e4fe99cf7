/** Helpers of the kv backend's own tests: a store per test, raw access to it. */
import { KvAdapter, type KvOptions } from "../../adapters/kv/kv_adapter.ts";
import { batchOf, type RecordBatch, type RecordMeta } from "../../core/record.ts";
import type { StorageAdapter } from "../../core/adapter.ts";

const enc = new TextEncoder(), dec = new TextDecoder();

/** A store in a temporary folder: `open()` gives clients of it, all closed afterwards. */
export interface KvStore {
  path: string;
  open(options?: KvOptions): Promise<KvAdapter>;
  /** The store through Deno KV itself, for looking under the adapter. */
  raw(): Promise<Deno.Kv>;
}

/** Runs `fn` with a store of its own, removed afterwards. */
export async function withKv(fn: (store: KvStore) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "mq-kv-test-" });
  const opened: { close(): unknown }[] = [];
  const store: KvStore = {
    path: `${dir}/kv.sqlite`,
    open: async (options) => {
      const a = await KvAdapter.open(`${dir}/kv.sqlite`, options);
      opened.push(a);
      return a;
    },
    raw: async () => {
      const kv = await Deno.openKv(`${dir}/kv.sqlite`);
      opened.push(kv);
      return kv;
    },
  };
  try {
    await fn(store);
  } finally {
    for (const o of opened) {
      try {
        await o.close();
      } catch { /* closed */ }
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** A batch of text payloads, with per-record meta. */
export function texts(payloads: string[], meta?: (RecordMeta | undefined)[]): RecordBatch {
  return batchOf(payloads.map((p) => enc.encode(p)), meta);
}

/** Every record of a partition, read through the adapter: `offset payload` lines. */
export async function readAll(
  a: StorageAdapter,
  topic: string,
  partition = 0,
  from = 0,
): Promise<{ offset: number; text: string; headers?: Record<string, string>; id?: string }[]> {
  const reader = await a.openReader(topic, partition, from);
  const out: { offset: number; text: string; headers?: Record<string, string>; id?: string }[] = [];
  try {
    for (;;) {
      const got = await reader.read(1000);
      if (got.length === 0) break;
      for (const r of got) {
        out.push({
          offset: r.offset,
          text: dec.decode(r.payload),
          ...(r.headers ? { headers: r.headers } : {}),
          ...(r.id ? { id: r.id } : {}),
        });
      }
    }
  } finally {
    reader.close();
  }
  return out;
}

/** Keys and value sizes under a prefix, read raw. */
export async function rawValues(
  kv: Deno.Kv,
  prefix: Deno.KvKey,
): Promise<{ key: Deno.KvKey; bytes: number }[]> {
  const out: { key: Deno.KvKey; bytes: number }[] = [];
  for await (const e of kv.list({ prefix })) {
    out.push({ key: e.key, bytes: e.value instanceof Uint8Array ? e.value.length : 0 });
  }
  return out;
}
