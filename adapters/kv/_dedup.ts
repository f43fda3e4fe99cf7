/**
 * Native deduplication of the kv backend: `["dedup", topic, partition, id]`
 * holds until when an id counts and the offset of its record (and, when
 * written under a partition lock, the lock's owner: an append interrupted by
 * a crash is marked `["aborted", topic, partition, owner]` by the next writer,
 * which voids its entries). {@link planDedup} decides which records of a
 * batch to keep; the entries are written with the frames (see `_append.ts`).
 *
 * @module
 */
import type { RecordBatch } from "../../core/record.ts";
import type { Head } from "./_heads.ts";
import type { KvCalls } from "./_kv_calls.ts";
import { KV_GET_MANY } from "./_limits.ts";

/** ids read per step when deduplicating (in `getMany` calls of ten, at once). */
const DEDUP_READ_STEP = 500;

/** A dedup entry to write with an append. */
export interface DedupEntry {
  id: string;
  /** Index of the record within the records kept. */
  index: number;
}

/** Which records of a batch to keep, and the ids to write entries for. */
export interface DedupPlan {
  kept: number[];
  ids: string[];
  /** Index, within the records kept, of the record of each of `ids`. */
  idIndex: number[];
}

const enc = new TextEncoder(), dec = new TextDecoder();

/** A dedup entry: until when the id counts, the offset of its record, the lock owner (if any). */
export function dedupValue(until: number, offset: number, owner?: string): Uint8Array {
  const o = owner ? enc.encode(owner) : undefined;
  const v = new Uint8Array(16 + (o?.length ?? 0));
  const dv = new DataView(v.buffer);
  dv.setFloat64(0, until, true);
  dv.setFloat64(8, offset, true);
  if (o) v.set(o, 16);
  return v;
}

/** The fields of a {@link dedupValue}. */
export function readDedupValue(v: Uint8Array): { until: number; offset: number; owner?: string } {
  const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
  return {
    until: dv.getFloat64(0, true),
    offset: dv.getFloat64(8, true),
    owner: v.length > 16 ? dec.decode(v.subarray(16)) : undefined,
  };
}

/** The entries of a {@link DedupPlan}, to write with its records. */
export function entriesOf(plan: DedupPlan): DedupEntry[] {
  return plan.ids.map((id, j) => ({ id, index: plan.idIndex[j] }));
}

/**
 * Which records of `batch` to keep: those without an id, and the first of
 * each id that no live entry of this partition names.
 */
export async function planDedup(
  kv: Deno.Kv,
  calls: KvCalls,
  at: { topic: string; partition: number; head: Head },
  batch: RecordBatch,
  window: { now: number; windowMs: number },
): Promise<DedupPlan> {
  const { topic, partition, head } = at;
  const { now, windowMs } = window;

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
        reads.push(calls.run("read dedup entries", () => kv.getMany(keys)));
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
      const got = await calls.run("read dedup entries", () => kv.getMany(keys));
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
