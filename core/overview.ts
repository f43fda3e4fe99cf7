/**
 * A snapshot of every topic with its groups and dead letters, as the views
 * (`mq ui`, `mq top`, metrics) show them; {@link RateTracker} turns a series
 * of snapshots into publish and consume rates. Built only on the storage
 * contract, so it works alike on every backend.
 *
 * @module
 */
import type { Mq } from "./client.ts";
import { adapterOf } from "./_access.ts";
import { loadGroup } from "./_group_store.ts";
import { inFlight, lag, newCursor, waitingDelay, waitingRetry } from "./_lease_table.ts";
import { deadLetterTopic } from "./dead_letter.ts";
import { Router } from "./routing.ts";
import type { PartitionBounds } from "./adapter.ts";

/** A group in a {@link TopicStats}: the fields of `mq groups --json` and two counters. */
export interface GroupStats {
  /** The group's name. */
  name: string;
  /** Messages not yet settled. */
  lag: number;
  /** Messages leased right now. */
  inFlight: number;
  /** Messages waiting to be delivered again after a failed attempt. */
  retrying: number;
  /** Messages whose delivery time has not come yet. */
  delayed: number;
  /** Messages moved to the dead-letter topic (a counter). */
  deadLettered: number;
  /** Messages that expired before delivery (a counter). */
  expired: number;
  /** Offsets handed out so far: the sum over partitions of the next never-delivered offset (a counter, back on a reset). */
  delivered: number;
  /** Offsets settled so far (acked or dead-lettered; a counter, back on a reset). */
  settled: number;
}

/** A topic in an {@link Overview}: the fields of `mq topics --json` and more. */
export interface TopicStats {
  /** Its name. */
  name: string;
  /** Its partitions. */
  partitions: number;
  /** Messages stored, over all partitions. */
  messages: number;
  /** Bytes stored, where the backend can tell (else null). */
  bytes: number | null;
  /** Messages ever published: the sum of the partitions' next offsets (a counter). */
  published: number;
  /** Its groups, by name. */
  groups: GroupStats[];
  /** The largest lag of its groups (0 without groups). */
  maxLag: number;
  /** Messages waiting for their delivery time (the most any group has waiting). */
  delayed: number;
  /** Its dead-letter topic. */
  dlq: string;
  /** Messages in its dead-letter topic (0 when there is none). */
  deadLetters: number;
  /** Set on a dead-letter topic: the topic whose dead letters it holds. */
  deadLetterOf?: string;
}

/** What {@link overview} returns. */
export interface Overview {
  /** When it was taken (ms since the epoch, the client's clock). */
  at: number;
  /** The topics, by name. */
  topics: TopicStats[];
}

/** Options of {@link overview}. */
export interface OverviewOptions {
  /**
   * Only topics matching one of these names or patterns (`*` one word, `#`
   * any words, words split by `.`). @default every topic
   */
  topics?: readonly string[];
  /** Ask the backend for stored bytes (one more call per partition). @default true */
  bytes?: boolean;
  /** Topics read at once. @default 32 */
  concurrency?: number;
  /**
   * The previous snapshot: a topic whose partitions did not move since keeps
   * its bytes from it, without asking the backend again; not a topic made
   * (or removed and made again) after it was taken, even with the same
   * counts.
   */
  previous?: Overview;
  /**
   * False: a topic of `previous` keeps its list of groups (their state is
   * read again, a group removed since drops out; a group made since shows
   * on the next pass that lists), one call less per topic. True, with
   * `previous`: the topics' settings are read again too (another client
   * may have removed a topic and made it again since). @default true
   */
  listGroups?: boolean;
}

/**
 * A matcher for topic names: names and patterns (`*` one word, `#` any
 * words), as `mq sub 'orders.*'` and `mq top --topics` take them.
 *
 * @example
 * ```ts
 * import { topicMatcher } from "./overview.ts";
 * const match = topicMatcher(["orders.*", "logs.#"]);
 * match("orders.eu"); // true
 * match("orders"); // false
 * ```
 */
export function topicMatcher(patterns: readonly string[]): (name: string) => boolean {
  if (patterns.length === 0) return () => true;
  const router = new Router(
    "topic",
    patterns.map((p) => ({ destination: p, destinationKind: "topic" as const, key: p })),
  );
  return (name) => router.route(name).length > 0;
}

/**
 * Takes a snapshot of every topic (or those `options.topics` names): counts,
 * bytes, groups with lag, dead letters. Topics are read `concurrency` at a
 * time, so 10,000 topics take one pass, not 10,000 round trips in a row.
 *
 * @example
 * ```ts
 * import { Mq } from "./client.ts";
 * import { overview } from "./overview.ts";
 * import { MemoryAdapter } from "../adapters/memory/mod.ts";
 * const mq = new Mq(new MemoryAdapter());
 * await mq.publish("orders", "hello");
 * const { topics } = await overview(mq);
 * console.log(topics[0].name, topics[0].messages); // orders 1
 * await mq.close();
 * ```
 */
export async function overview(mq: Mq, options: OverviewOptions = {}): Promise<Overview> {
  const adapter = adapterOf(mq);
  const at = mq.now();
  const match = topicMatcher(options.topics ?? []);
  const names = (await adapter.listState(["topics"])).sort();
  const all = new Map<string, TopicStats>();
  const wantBytes = options.bytes ?? true;
  const previous = options.previous
    ? new Map(options.previous.topics.map((t) => [t.name, t]))
    : undefined;
  // A pass that lists groups also reads the settings again: this client's
  // copies of them may be older than a topic another one made again.
  const reread = previous !== undefined && options.listGroups !== false;
  const since = options.previous?.at ?? Infinity;
  const one = async (name: string): Promise<void> => {
    if (reread) mq.forgetTopic(name);
    const config = await mq.topicConfig(name);
    if (!config) return;
    // A topic made after the previous snapshot began is not the one it saw.
    const before = config.createdAt > since ? undefined : previous?.get(name);
    const bounds: PartitionBounds[] = [];
    let messages = 0, published = 0;
    for (let p = 0; p < config.partitions; p++) {
      const b = await adapter.bounds(name, p);
      bounds.push(b);
      messages += b.end - b.start;
      published += b.end;
    }
    let bytes: number | null = null;
    if (wantBytes && adapter.storedBytes) {
      if (
        before && before.bytes !== null && before.published === published &&
        before.messages === messages
      ) bytes = before.bytes;
      else {
        bytes = 0;
        for (let p = 0; p < config.partitions; p++) bytes += await adapter.storedBytes(name, p);
      }
    }
    const groups: GroupStats[] = [];
    const groupNames = before && options.listGroups === false
      ? before.groups.map((g) => g.name)
      : (await adapter.listState(["groups", name])).sort();
    for (const group of groupNames) {
      const state = await loadGroup(adapter, name, group);
      if (!state) continue;
      const g: GroupStats = {
        name: group,
        lag: 0,
        inFlight: 0,
        retrying: 0,
        delayed: 0,
        deadLettered: state.deadLettered ?? 0,
        expired: state.expired ?? 0,
        delivered: 0,
        settled: 0,
      };
      for (let p = 0; p < config.partitions; p++) {
        const b = bounds[p];
        const c = state.partitions[p] ?? newCursor(b.start);
        const floor = Math.max(c.floor, b.start);
        const l = lag({ ...c, floor }, b.end);
        g.lag += l;
        g.inFlight += inFlight(c);
        g.retrying += waitingRetry(c);
        g.delayed += waitingDelay(c, at);
        g.delivered += c.next;
        g.settled += b.end - l;
      }
      groups.push(g);
    }
    all.set(name, {
      name,
      partitions: config.partitions,
      messages,
      bytes,
      published,
      groups,
      maxLag: groups.reduce((m, g) => Math.max(m, g.lag), 0),
      delayed: groups.reduce((m, g) => Math.max(m, g.delayed), 0),
      dlq: deadLetterTopic(name, config.dlq),
      deadLetters: 0,
    });
  };
  const limit = Math.max(1, options.concurrency ?? 32);
  let next = 0;
  const worker = async () => {
    while (next < names.length) await one(names[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, names.length) }, worker));
  for (const t of all.values()) {
    const dlq = all.get(t.dlq);
    if (dlq && dlq !== t) {
      t.deadLetters = dlq.messages;
      dlq.deadLetterOf ??= t.name;
    }
  }
  const topics: TopicStats[] = [];
  for (const name of names) {
    const t = all.get(name);
    if (t && match(name)) topics.push(t);
  }
  return { at, topics };
}

/** A topic of a {@link RatedOverview}: its stats with rates and their recent history. */
export interface RatedTopic extends TopicStats {
  /** Messages published per second since the previous snapshot. */
  publishRate: number;
  /** Messages settled per second since the previous snapshot, over all groups. */
  consumeRate: number;
  /** Recent publish rates, oldest first (one per snapshot). */
  publishHistory: number[];
  /** Recent consume rates, oldest first (one per snapshot). */
  consumeHistory: number[];
}

/** An {@link Overview} with rates. */
export interface RatedOverview {
  /** When it was taken. */
  at: number;
  /** The topics, by name. */
  topics: RatedTopic[];
}

/** Options of {@link RateTracker}. */
export interface RateTrackerOptions {
  /** How many rates each topic keeps for its history. @default 120 */
  samples?: number;
}

interface Track {
  at: number;
  published: number;
  settled: number;
  publish: number[];
  consume: number[];
}

/**
 * Rates from a series of snapshots: each {@link RateTracker.add} compares a
 * snapshot with the previous one of the same topic. A counter that went back
 * (a purge, a group reset) counts as no traffic rather than a negative rate.
 *
 * @example
 * ```ts
 * import { Mq } from "./client.ts";
 * import { overview, RateTracker } from "./overview.ts";
 * import { MemoryAdapter } from "../adapters/memory/mod.ts";
 * let now = 0;
 * const mq = new Mq(new MemoryAdapter(), { now: () => now });
 * const rates = new RateTracker();
 * await mq.publish("t", "first");
 * rates.add(await overview(mq));
 * await mq.publishBatch("t", ["a", "b"]);
 * now += 1000;
 * console.log(rates.add(await overview(mq)).topics[0].publishRate); // 2
 * ```
 */
export class RateTracker {
  #tracks = new Map<string, Track>();
  #samples: number;

  /** A tracker keeping `options.samples` rates per topic. */
  constructor(options: RateTrackerOptions = {}) {
    this.#samples = Math.max(1, options.samples ?? 120);
  }

  /** Adds a snapshot; returns it with rates. Topics gone since are forgotten. */
  add(o: Overview): RatedOverview {
    const seen = new Set<string>();
    const topics = o.topics.map((t): RatedTopic => {
      seen.add(t.name);
      const settled = t.groups.reduce((n, g) => n + g.settled, 0);
      let track = this.#tracks.get(t.name);
      let publishRate = 0, consumeRate = 0;
      if (!track) {
        track = { at: o.at, published: t.published, settled, publish: [], consume: [] };
        this.#tracks.set(t.name, track);
      } else {
        const s = (o.at - track.at) / 1000;
        if (s > 0) {
          publishRate = Math.max(0, t.published - track.published) / s;
          consumeRate = Math.max(0, settled - track.settled) / s;
          push(track.publish, publishRate, this.#samples);
          push(track.consume, consumeRate, this.#samples);
          track.at = o.at;
          track.published = t.published;
          track.settled = settled;
        }
      }
      return {
        ...t,
        publishRate,
        consumeRate,
        publishHistory: track.publish.slice(),
        consumeHistory: track.consume.slice(),
      };
    });
    if (seen.size < this.#tracks.size) {
      for (const name of this.#tracks.keys()) if (!seen.has(name)) this.#tracks.delete(name);
    }
    return { at: o.at, topics };
  }
}

function push(xs: number[], x: number, max: number): void {
  xs.push(x);
  if (xs.length > max) xs.splice(0, xs.length - max);
}
