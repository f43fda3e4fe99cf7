/**
 * Group state documents: one per (topic, group), holding a cursor per
 * partition, updated by compare-and-set so that consumers in several processes
 * share a group safely.
 *
 * @module
 */
import type { StorageAdapter } from "./adapter.ts";
import { type Clock, systemClock } from "./clock.ts";
import { MqError } from "./errors.ts";
import type { PartitionCursor } from "./_lease_table.ts";
import { describe, isObject, isOffset, parseStateDoc, rangesProblem } from "./_state_docs.ts";

/** A group's state in a topic. */
export interface GroupState {
  /** Cursor per partition number. */
  partitions: Record<string, PartitionCursor>;
  /** Messages moved to the dead-letter topic. */
  deadLettered?: number;
  /** Messages that expired (TTL) before delivery. */
  expired?: number;
  /** Offsets found unreadable (corrupt in storage) and settled so the group moves on. */
  corrupt?: number;
  /**
   * For ordered consumption: per `partition:key`, the offset that holds the
   * key until it is settled.
   */
  keyLocks?: Record<string, number>;
}

const enc = new TextEncoder();

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
  const key = groupKey(topic, group);
  const doc = await adapter.getState(key);
  return doc ? parseGroup(adapter, key, topic, group, doc.value) : undefined;
}

/** How {@link updateGroup} treats a missing topic or a damaged document. */
export interface UpdateGroupOptions {
  /**
   * A consumer's update: the topic must exist. A missing document of a
   * topic that is gone (removed while this consumer ran) fails with
   * `TOPIC_NOT_FOUND` instead of being made again, and a document this
   * update made is taken back when the topic went meanwhile.
   */
  requireTopic?: boolean;
  /** A damaged document is replaced (from `init`) instead of failing (`groups reset`). */
  replaceDamaged?: boolean;
  /** The clock the short random wait after a conflicting writer is slept on. @default systemClock */
  clock?: Clock;
}

/**
 * Applies `change` to a group's state and writes it back, retrying on
 * conflicting writers (after a random wait of up to `min(50, 1 + attempt)` ms
 * on `options.clock`). `change` must be a pure function of the state.
 *
 * @throws {MqError} `CORRUPT` for a damaged document, `TOPIC_NOT_FOUND` (with `requireTopic`)
 */
export async function updateGroup<R>(
  adapter: StorageAdapter,
  topic: string,
  group: string,
  init: () => GroupState,
  change: (state: GroupState) => R,
  options: UpdateGroupOptions = {},
): Promise<R> {
  const key = groupKey(topic, group);
  const clock = options.clock ?? systemClock;
  for (let attempt = 0; attempt < 10_000; attempt++) {
    const doc = await adapter.getState(key);
    if (!doc && options.requireTopic) await assertTopic(adapter, topic);
    let state: GroupState;
    try {
      state = doc ? parseGroup(adapter, key, topic, group, doc.value) : init();
    } catch (e) {
      if (!options.replaceDamaged) throw e;
      state = init();
    }
    const result = change(state);
    if (await adapter.compareAndSet(key, doc?.version ?? null, enc.encode(JSON.stringify(state)))) {
      if (!doc && options.requireTopic && !(await adapter.getState(["topics", topic]))) {
        // The topic was removed between the look and the write: take it back.
        await adapter.deleteState(key);
        await assertTopic(adapter, topic);
      }
      return result;
    }
    await clock.sleep(Math.random() * Math.min(50, 1 + attempt));
  }
  throw new MqError("CONFLICT", `group "${group}" of topic "${topic}" is too busy to update`);
}

async function assertTopic(adapter: StorageAdapter, topic: string): Promise<void> {
  if (!(await adapter.getState(["topics", topic]))) {
    throw new MqError("TOPIC_NOT_FOUND", `topic "${topic}" was removed`);
  }
}

/**
 * Parses and checks a group document.
 *
 * @throws {MqError} `CORRUPT` naming the group, the document and what is wrong
 */
export function parseGroup(
  adapter: StorageAdapter,
  key: string[],
  topic: string,
  group: string,
  bytes: Uint8Array,
): GroupState {
  return parseStateDoc<GroupState>(
    adapter,
    key,
    `group "${group}" of topic "${topic}"`,
    bytes,
    groupProblem,
  );
}

/** What is wrong with a group document's shape, if anything. */
export function groupProblem(v: unknown): string | undefined {
  if (!isObject(v)) return `it holds ${describe(v)}, not an object`;
  if (!isObject(v.partitions)) return `"partitions" is ${describe(v.partitions)}, not an object`;
  for (const [p, c] of Object.entries(v.partitions)) {
    const at = `partitions.${p}`;
    if (!/^\d+$/.test(p)) return `${at}: ${JSON.stringify(p)} is not a partition number`;
    if (!isObject(c)) return `${at} is ${describe(c)}, not a cursor`;
    for (const f of ["floor", "next"]) {
      if (!isOffset(c[f])) return `${at}.${f} is ${describe(c[f])}, not a whole number`;
    }
    const problem = rangesProblem(c.settled, `${at}.settled`) ??
      rangesProblem(c.leases, `${at}.leases`, ["until", "attempt"]) ??
      rangesProblem(c.retries, `${at}.retries`, ["notBefore", "attempt"]);
    if (problem) return problem;
    for (const l of c.leases as Record<string, unknown>[]) {
      if (typeof l.token !== "string") return `${at}.leases has a lease without a token`;
    }
  }
  for (const f of ["deadLettered", "expired", "corrupt"]) {
    if (v[f] !== undefined && !isOffset(v[f])) {
      return `"${f}" is ${describe(v[f])}, not a whole number`;
    }
  }
  if (v.keyLocks !== undefined && !isObject(v.keyLocks)) {
    return `"keyLocks" is ${describe(v.keyLocks)}, not an object`;
  }
  return undefined;
}
