/**
 * A partition's head in the kv backend: `["head", topic, partition]` holds its
 * end (the next offset) as a bigint, or, while a multi-commit append holds
 * it, a {@link PartitionLock} that keeps the end where it was. Also the keys
 * of this client's cache of heads, by partition.
 *
 * @module
 */
import { MqError } from "../../core/errors.ts";

/**
 * A partition's head while a multi-commit append holds it: its end stays
 * where it was until the last commit sets the new end.
 */
export interface PartitionLock {
  end: number;
  owner: string;
  until: number;
  /** The dedup window (ms) of the append, when it wrote dedup entries. */
  dedupWindowMs: number;
}

/** A partition's head as read: its end and the version to check. */
export interface Head {
  end: number;
  versionstamp: string | null;
  lock?: PartitionLock;
}

/** The key of a partition in this client's maps. */
export function partKey(topic: string, partition: number): string {
  return `${topic}\0${partition}`;
}

/** The topic and partition of a {@link partKey}. */
export function splitPartKey(k: string): [string, number] {
  const at = k.lastIndexOf("\0");
  return [k.slice(0, at), Number(k.slice(at + 1))];
}

/** The head stored in `e` (none: end 0). */
export function headOf(e: Deno.KvEntryMaybe<unknown>): Head {
  const v = e.value;
  if (v === null || v === undefined) return { end: 0, versionstamp: e.versionstamp };
  if (typeof v === "bigint") return { end: Number(v), versionstamp: e.versionstamp };
  if (typeof v === "object" && typeof (v as PartitionLock).end === "number") {
    const lock = v as PartitionLock;
    return { end: lock.end, versionstamp: e.versionstamp, lock };
  }
  throw new MqError("CORRUPT", `partition head ${e.key.join("/")} is not one mq wrote`);
}
