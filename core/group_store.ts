/**
 * Group state documents: one per (topic, group), holding a cursor per
 * partition, updated by compare-and-set so that consumers in several processes
 * share a group safely.
 *
 * @module
 */
import type { StorageAdapter } from "./adapter.ts";
import { MqError } from "./errors.ts";
import type { PartitionCursor } from "./lease_table.ts";

/** A group's state in a topic. */
export interface GroupState {
  /** Cursor per partition number. */
  partitions: Record<string, PartitionCursor>;
  /** Messages moved to the dead-letter topic. */
  deadLettered?: number;
  /** Messages that expired (TTL) before delivery. */
  expired?: number;
  /**
   * For ordered consumption: per `partition:key`, the offset that holds the
   * key until it is settled.
   */
  keyLocks?: Record<string, number>;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** The state key of a group. */
export function groupKey(topic: string, group: string): string[] {
  return ["groups", topic, group];
}

/** Reads a group's state, or undefined when the group has none yet. */
export async function loadGroup(
  adapter: StorageAdapter,
  topic: string,
  group: string,
): Promise<GroupState | undefined> {
  const doc = await adapter.getState(groupKey(topic, group));
  return doc ? parseGroup(doc.value) : undefined;
}

/**
 * Applies `change` to a group's state and writes it back, retrying on
 * conflicting writers. `change` must be a pure function of the state.
 */
export async function updateGroup<R>(
  adapter: StorageAdapter,
  topic: string,
  group: string,
  init: () => GroupState,
  change: (state: GroupState) => R,
): Promise<R> {
  const key = groupKey(topic, group);
  for (let attempt = 0; attempt < 10_000; attempt++) {
    const doc = await adapter.getState(key);
    const state = doc ? parseGroup(doc.value) : init();
    const result = change(state);
    if (await adapter.compareAndSet(key, doc?.version ?? null, enc.encode(JSON.stringify(state)))) {
      return result;
    }
    await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 1 + attempt)));
  }
  throw new MqError("CONFLICT", `group "${group}" of topic "${topic}" is too busy to update`);
}

/**
 * Parses a group state document.
 *
 * @example
 * ```ts
 * import { parseGroup } from "./group_store.ts";
 * const state = parseGroup(new TextEncoder().encode('{"partitions":{}}'));
 * console.log(state.partitions); // {}
 * ```
 * @throws {MqError} `CORRUPT` when it is not one
 */
export function parseGroup(bytes: Uint8Array): GroupState {
  try {
    const s = JSON.parse(dec.decode(bytes));
    if (s && typeof s === "object" && s.partitions) return s as GroupState;
  } catch (cause) {
    throw new MqError("CORRUPT", "a group state document is not valid JSON", { cause });
  }
  throw new MqError("CORRUPT", "a group state document has no partitions");
}
