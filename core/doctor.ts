/**
 * Checking a store as `PRAGMA integrity_check` and `kafka-dump-log` do, and
 * repairing what can be repaired without losing an acknowledged message:
 * the core checks every state document (topic settings, group state) and
 * state left by topics that are gone; the backend checks its own storage
 * (`StorageAdapter.checkStorage`: frames, offsets, indexes, leftover files).
 *
 * @module
 */
import type { StorageAdapter, StorageFinding } from "./adapter.ts";
import { systemClock } from "./clock.ts";
import { MqError } from "./errors.ts";
import { groupKey, type GroupState, parseGroup } from "./_group_store.ts";
import { newCursor, type PartitionCursor } from "./_lease_table.ts";
import { stateLocation } from "./_state_docs.ts";
import { parseTopicConfig, type TopicConfig } from "./topic_config.ts";

/** What to check. */
export interface DoctorOptions {
  /** Only these topics (their logs and state); all, with leftovers of removed topics, when empty. */
  topics?: string[];
  /** Fix what can be fixed without losing an acknowledged message. @default false */
  repair?: boolean;
  /** The current time, for the names of kept copies. @default systemClock.now */
  now?: () => number;
}

/** What {@link checkStore} found. */
export interface DoctorReport {
  /** Every problem, in the order found; `repaired` says what a repair did. */
  findings: StorageFinding[];
  /** Topics checked. */
  topics: number;
  /** Group documents checked. */
  groups: number;
  /** True when the backend checked its stored logs too (it has `checkStorage`). */
  storageChecked: boolean;
}

const enc = new TextEncoder();

/**
 * Checks (and with `repair`, fixes) the store behind `adapter`. Reached as
 * `mq.doctor()` on a client.
 *
 * @example
 * ```ts
 * import { checkStore } from "./doctor.ts";
 * import { MemoryAdapter } from "../adapters/memory/mod.ts";
 * const report = await checkStore(new MemoryAdapter());
 * console.log(report.findings.length === 0 ? "clean" : report.findings);
 * ```
 */
export async function checkStore(
  adapter: StorageAdapter,
  options: DoctorOptions = {},
): Promise<DoctorReport> {
  const repair = options.repair ?? false;
  const now = options.now ?? systemClock.now;
  const all = (await adapter.listState(["topics"])).sort();
  const wholeStore = !options.topics || options.topics.length === 0;
  const names = wholeStore ? all : options.topics!;
  for (const t of names) {
    if (!all.includes(t)) throw new MqError("TOPIC_NOT_FOUND", `topic "${t}" does not exist`);
  }
  const findings: StorageFinding[] = [];
  const checked: { name: string; partitions: number }[] = [];
  let groups = 0;
  for (const name of names) {
    const key = ["topics", name];
    const doc = await adapter.getState(key);
    if (!doc) continue;
    let config: TopicConfig;
    try {
      config = parseTopicConfig(adapter, name, doc.value);
    } catch (e) {
      if (!MqError.is(e, "CORRUPT")) throw e;
      findings.push({
        topic: name,
        location: stateLocation(adapter, key),
        problem: e.message,
      });
      continue;
    }
    checked.push({ name, partitions: config.partitions });
    for (const group of (await adapter.listState(["groups", name])).sort()) {
      groups++;
      await checkGroup(adapter, name, group, config, repair, now, findings);
    }
  }
  if (wholeStore) {
    // State a removed topic left behind (a new topic of its name must not inherit it).
    for (const family of ["delayed", "cancelled", "dedup"]) {
      for (const name of (await adapter.listState([family])).sort()) {
        if (all.includes(name)) continue;
        const key = [family, name];
        const location = stateLocation(adapter, key);
        if (repair) await adapter.deleteState(key);
        findings.push({
          topic: name,
          location,
          problem: `${family} state of topic "${name}", which does not exist`,
          ...(repair ? { repaired: "removed it" } : {}),
        });
      }
    }
  }
  const storage = await adapter.checkStorage?.({ topics: checked, wholeStore, repair });
  if (storage) findings.push(...storage);
  return { findings, topics: checked.length, groups, storageChecked: storage !== undefined };
}

async function checkGroup(
  adapter: StorageAdapter,
  topic: string,
  group: string,
  config: TopicConfig,
  repair: boolean,
  now: () => number,
  findings: StorageFinding[],
): Promise<void> {
  const key = groupKey(topic, group);
  const location = stateLocation(adapter, key);
  const doc = await adapter.getState(key);
  if (!doc) return;
  let state: GroupState;
  try {
    state = parseGroup(adapter, key, topic, group, doc.value);
  } catch (e) {
    if (!MqError.is(e, "CORRUPT")) throw e;
    let repaired: string | undefined;
    if (repair) {
      // Keep a copy, then start again where the group surely was: the
      // lowest settled floor that can still be read from the document, else
      // the beginning (messages may come again; none is lost).
      const copy = ["damaged", "groups", topic, `${group}-${now()}`];
      await adapter.compareAndSet(copy, null, doc.value);
      const floors = salvageFloors(doc.value);
      const fresh: GroupState = { partitions: {} };
      for (let p = 0; p < config.partitions; p++) {
        const b = await adapter.bounds(topic, p);
        fresh.partitions[p] = newCursor(Math.min(b.end, Math.max(b.start, floors[p] ?? b.start)));
      }
      if (await adapter.compareAndSet(key, doc.version, enc.encode(JSON.stringify(fresh)))) {
        const at = Object.values(fresh.partitions).map((c) => c.floor).join(",");
        repaired = `reset to offset${config.partitions === 1 ? "" : "s"} ${at}; the damaged ` +
          `document is kept as ${stateLocation(adapter, copy)}`;
      }
    }
    findings.push({ topic, location, problem: e.message, ...(repaired ? { repaired } : {}) });
    return;
  }
  let changed = false;
  const problems: string[] = [];
  for (const [p, c] of Object.entries(state.partitions)) {
    const partition = Number(p);
    if (partition >= config.partitions) {
      problems.push(`partition ${p} does not exist (the topic has ${config.partitions})`);
      delete state.partitions[p];
      changed = true;
      continue;
    }
    const b = await adapter.bounds(topic, partition);
    if (c.next > b.end || c.floor > b.end) {
      problems.push(
        `group "${group}" points past the end of partition ${p} (next ${c.next}, end ${b.end})`,
      );
      clampTo(c, b.end);
      changed = true;
    }
  }
  if (problems.length === 0) return;
  let repaired: string | undefined;
  if (repair && changed) {
    if (await adapter.compareAndSet(key, doc.version, enc.encode(JSON.stringify(state)))) {
      repaired = "moved back to the end of what is stored";
    }
  }
  for (const problem of problems) {
    findings.push({ topic, location, problem, ...(repaired ? { repaired } : {}) });
  }
}

/** A cursor with nothing at or past `end`. */
function clampTo(c: PartitionCursor, end: number): void {
  const clip = <T extends { from: number; to: number }>(xs: T[]) =>
    xs.filter((x) => x.from < end).map((x) => (x.to > end ? { ...x, to: end } : x));
  c.floor = Math.min(c.floor, end);
  c.next = Math.min(c.next, end);
  c.settled = clip(c.settled);
  c.leases = clip(c.leases);
  c.retries = clip(c.retries);
}

/** The `floor` of each partition that a damaged group document still shows, where it does. */
function salvageFloors(bytes: Uint8Array): Record<number, number> {
  const text = new TextDecoder().decode(bytes);
  const out: Record<number, number> = {};
  try {
    const v = JSON.parse(text);
    for (const [p, c] of Object.entries(v?.partitions ?? {})) {
      const floor = (c as { floor?: unknown })?.floor;
      if (typeof floor === "number" && Number.isSafeInteger(floor) && floor >= 0) {
        out[Number(p)] = floor;
      }
    }
  } catch {
    // Not JSON: look for `"0":{"floor":N` as written (the bytes after a flip may still show it).
    for (const m of text.matchAll(/"(\d+)":\{"floor":(\d+)/g)) out[Number(m[1])] = Number(m[2]);
  }
  return out;
}
