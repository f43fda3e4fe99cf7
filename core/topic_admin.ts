/**
 * Topic administration: create, list, inspect, purge, remove; and groups:
 * list, reset. Reached as `mq.topics` on a client.
 *
 * @module
 */
import type { StorageAdapter } from "./adapter.ts";
import type { Clock } from "./clock.ts";
import { MqError } from "./errors.ts";
import { assertName } from "./names.ts";
import { makeTopicConfig, type TopicConfig, withReplicas } from "./topic_config.ts";
import { resolveStart, type StartFrom } from "./start_position.ts";
import { deadLetterTopic } from "./dead_letter.ts";

/** Group state and leases (group commands), exchanges (removing a topic): loaded when used. */
const load = {
  groups: () => import("./_group_store.ts"),
  leases: () => import("./_lease_table.ts"),
  exchanges: () => import("./exchanges.ts"),
};

/** A topic in a listing. */
export interface TopicSummary {
  /** Its name. */
  name: string;
  /** Its partitions. */
  partitions: number;
  /** Messages stored, over all partitions. */
  messages: number;
}

/** A group's standing in a topic. */
export interface GroupInfo {
  /** The group's name. */
  name: string;
  /** Messages not yet settled. */
  lag: number;
  /** Messages leased right now. */
  inFlight: number;
  /** Messages waiting to be delivered again after a failed attempt. */
  retrying: number;
  /** Messages whose delivery time has not come yet (published with a delay). */
  delayed: number;
  /** Messages moved to the dead-letter topic. */
  deadLettered: number;
  /** Messages that expired (TTL) before delivery. */
  expired: number;
  /** Per partition: the settled floor and the next never-delivered offset. */
  partitions: { partition: number; floor: number; next: number }[];
}

/** What `mq topics info` shows. */
export interface TopicInfo {
  /** The topic's name. */
  name: string;
  /** Its settings. */
  config: TopicConfig;
  /** Per partition: first stored offset, next offset, stored bytes where known. */
  partitions: { partition: number; start: number; end: number; bytes?: number }[];
  /** Messages stored. */
  messages: number;
  /** Its groups. */
  groups: GroupInfo[];
}

const enc = new TextEncoder();

/**
 * Topic and group administration.
 *
 * @example
 * ```ts ignore
 * await mq.topics.create("orders", { partitions: 4 });
 * console.log(await mq.topics.list());
 * ```
 */
export class TopicAdmin {
  #adapter: StorageAdapter;
  #config: (topic: string) => Promise<TopicConfig | undefined>;
  #forget: (topic: string) => void;
  #now: () => number;
  #clock?: Clock;

  /**
   * Made by {@link Mq}; reached as `mq.topics`. `clock` has the timers (the
   * wait after a conflicting writer of a group's state). @default systemClock
   */
  constructor(
    adapter: StorageAdapter,
    config: (topic: string) => Promise<TopicConfig | undefined>,
    forget: (topic: string) => void,
    now: () => number,
    clock?: Clock,
  ) {
    this.#adapter = adapter;
    this.#config = config;
    this.#forget = forget;
    this.#now = now;
    this.#clock = clock;
  }

  /**
   * Creates a topic with the given settings (defaults for the rest).
   *
   * @throws {MqError} `TOPIC_EXISTS`, `INVALID_NAME`, `INVALID_ARGUMENT`
   */
  async create(name: string, settings: Partial<TopicConfig> = {}): Promise<TopicConfig> {
    assertName("topic", name);
    const config = withReplicas(makeTopicConfig(settings, this.#now()), this.#adapter.capabilities);
    await this.#refuseDeadLetterCycle(name, config.dlq);
    if (await this.#config(name)) {
      throw new MqError("TOPIC_EXISTS", `topic "${name}" exists already`);
    }
    await this.#adapter.prepareTopic?.(name, config);
    const ok = await this.#adapter.compareAndSet(
      ["topics", name],
      null,
      enc.encode(JSON.stringify(config)),
    );
    if (!ok) throw new MqError("TOPIC_EXISTS", `topic "${name}" exists already`);
    this.#forget(name);
    return config;
  }

  /** The topics, by name, with message counts. */
  async list(): Promise<TopicSummary[]> {
    const names = (await this.#adapter.listState(["topics"])).sort();
    const out: TopicSummary[] = [];
    for (const name of names) {
      const config = await this.#config(name);
      if (!config) continue;
      let messages = 0;
      for (let p = 0; p < config.partitions; p++) {
        const b = await this.#adapter.bounds(name, p);
        messages += b.end - b.start;
      }
      out.push({ name, partitions: config.partitions, messages });
    }
    return out;
  }

  /**
   * A topic's settings, partitions and groups.
   *
   * @throws {MqError} `TOPIC_NOT_FOUND`
   */
  async info(name: string): Promise<TopicInfo> {
    const config = await this.#require(name);
    const partitions: TopicInfo["partitions"] = [];
    let messages = 0;
    for (let p = 0; p < config.partitions; p++) {
      const b = await this.#adapter.bounds(name, p);
      const bytes = await this.#adapter.storedBytes?.(name, p);
      partitions.push({ partition: p, ...b, ...(bytes === undefined ? {} : { bytes }) });
      messages += b.end - b.start;
    }
    return { name, config, partitions, messages, groups: await this.groups(name) };
  }

  /** The groups of a topic with lag and in-flight counts. */
  async groups(name: string): Promise<GroupInfo[]> {
    const { loadGroup } = await load.groups();
    const { inFlight, lag, newCursor, waitingDelay, waitingRetry } = await load.leases();
    const config = await this.#require(name);
    const out: GroupInfo[] = [];
    const now = this.#now();
    for (const group of (await this.#adapter.listState(["groups", name])).sort()) {
      const state = await loadGroup(this.#adapter, name, group);
      if (!state) continue;
      const info: GroupInfo = {
        name: group,
        lag: 0,
        inFlight: 0,
        retrying: 0,
        delayed: 0,
        deadLettered: state.deadLettered ?? 0,
        expired: state.expired ?? 0,
        partitions: [],
      };
      for (let p = 0; p < config.partitions; p++) {
        const b = await this.#adapter.bounds(name, p);
        const c = state.partitions[p] ?? newCursor(b.start);
        info.lag += lag({ ...c, floor: Math.max(c.floor, b.start) }, b.end);
        info.inFlight += inFlight(c);
        info.retrying += waitingRetry(c);
        info.delayed += waitingDelay(c, now);
        info.partitions.push({ partition: p, floor: c.floor, next: c.next });
      }
      out.push(info);
    }
    return out;
  }

  /**
   * Moves a group to `to` in every partition (its leases are dropped). A
   * damaged group document is replaced. A group that does not exist is
   * created there, or refused with `create: false` (as `mq groups reset`
   * does without `--create`).
   *
   * @example
   * ```ts ignore
   * await mq.topics.resetGroup("orders", "billing", "beginning");
   * await mq.topics.resetGroup("orders", "audit", { agoMs: 3_600_000 }, { create: false });
   * ```
   * @throws {MqError} `TOPIC_NOT_FOUND`; `INVALID_ARGUMENT` for an unknown group with `create: false`
   */
  async resetGroup(
    name: string,
    group: string,
    to: StartFrom,
    options: {
      /** Create the group when it does not exist. @default true */
      create?: boolean;
    } = {},
  ): Promise<void> {
    const { updateGroup } = await load.groups();
    const { newCursor, resetTo } = await load.leases();
    assertName("group", group);
    const config = await this.#require(name);
    if (
      options.create === false &&
      !(await this.#adapter.listState(["groups", name])).includes(group)
    ) {
      throw new MqError("INVALID_ARGUMENT", `group "${group}" of topic "${name}" does not exist`);
    }
    const offsets: number[] = [];
    for (let p = 0; p < config.partitions; p++) {
      offsets.push(await resolveStart(this.#adapter, name, p, to, this.#now()));
    }
    await updateGroup(this.#adapter, name, group, () => ({ partitions: {} }), (state) => {
      for (let p = 0; p < config.partitions; p++) {
        const c = state.partitions[p] ??= newCursor(offsets[p]);
        resetTo(c, offsets[p]);
      }
    }, { replaceDamaged: true, clock: this.#clock });
  }

  /**
   * Deletes a group's state (also a damaged one), with its leases: a
   * consumer of it that still runs starts it afresh.
   *
   * @example
   * ```ts ignore
   * await mq.topics.removeGroup("orders", "billing");
   * ```
   * @throws {MqError} `INVALID_ARGUMENT` when the topic has no such group
   */
  async removeGroup(name: string, group: string): Promise<void> {
    const { groupKey } = await load.groups();
    assertName("topic", name);
    assertName("group", group);
    if (!(await this.#adapter.listState(["groups", name])).includes(group)) {
      throw new MqError("INVALID_ARGUMENT", `topic "${name}" has no group "${group}"`);
    }
    await this.#adapter.deleteState(groupKey(name, group));
  }

  /**
   * Removes every stored message; offsets go on from where they were.
   * Resolves to how many were removed.
   *
   * @throws {MqError} `TOPIC_NOT_FOUND`
   */
  async purge(name: string): Promise<number> {
    const config = await this.#require(name);
    let removed = 0;
    for (let p = 0; p < config.partitions; p++) {
      const b = await this.#adapter.bounds(name, p);
      await this.#adapter.trim(name, p, b.end);
      removed += b.end - b.start;
    }
    return removed;
  }

  /**
   * Removes every dead letter of a topic (its dead-letter topic's messages)
   * and sets its groups' dead-lettered counts to what is left (none);
   * resolves to how many were removed.
   *
   * @example
   * ```ts ignore
   * const removed = await mq.topics.purgeDeadLetters("jobs");
   * ```
   * @throws {MqError} `TOPIC_NOT_FOUND`
   */
  async purgeDeadLetters(name: string): Promise<number> {
    const config = await this.#require(name);
    const dlq = deadLetterTopic(name, config.dlq);
    const removed = (await this.#config(dlq)) ? await this.purge(dlq) : 0;
    await this.countDeadLetters(name);
    return removed;
  }

  /**
   * Makes the dead-lettered count of each group of a topic at most the dead
   * letters its dead-letter topic still holds (after a purge or a replay);
   * resolves to that number.
   *
   * @throws {MqError} `TOPIC_NOT_FOUND`
   */
  async countDeadLetters(name: string): Promise<number> {
    const { loadGroup, updateGroup } = await load.groups();
    const config = await this.#require(name);
    const dlq = deadLetterTopic(name, config.dlq);
    const dlqConfig = await this.#config(dlq);
    let left = 0;
    for (let p = 0; p < (dlqConfig?.partitions ?? 0); p++) {
      const b = await this.#adapter.bounds(dlq, p);
      left += b.end - b.start;
    }
    for (const group of await this.#adapter.listState(["groups", name])) {
      const state = await loadGroup(this.#adapter, name, group);
      if ((state?.deadLettered ?? 0) <= left) continue;
      await updateGroup(this.#adapter, name, group, () => ({ partitions: {} }), (s) => {
        if ((s.deadLettered ?? 0) > left) s.deadLettered = left;
      }, { clock: this.#clock });
    }
    return left;
  }

  /**
   * Deletes a topic: its messages, settings and groups.
   *
   * @throws {MqError} `TOPIC_NOT_FOUND`
   */
  async remove(name: string): Promise<void> {
    assertName("topic", name);
    // Settings first (even damaged ones): consumers that still run find the
    // topic gone and stop, instead of writing its groups again.
    if (!(await this.#adapter.getState(["topics", name]))) {
      throw new MqError("TOPIC_NOT_FOUND", `topic "${name}" does not exist`);
    }
    await this.#adapter.deleteState(["topics", name]);
    this.#forget(name);
    await this.#adapter.deleteState(["groups", name]);
    await this.#adapter.dropLog(name);
    // What a new topic of the same name must not inherit.
    await this.#adapter.deleteState(["dedup", name]);
    await this.#adapter.deleteState(["delayed", name]);
    await this.#adapter.deleteState(["cancelled", name]);
    // Bindings to a removed topic go with it (as RabbitMQ's do with a queue).
    const { ExchangeAdmin } = await load.exchanges();
    await new ExchangeAdmin(this.#adapter, this.#now).removeBindingsTo("topic", name);
    // A consumer's write that raced the first sweep (it looked before the
    // settings went): the second one takes it.
    await this.#adapter.deleteState(["groups", name]);
  }

  /**
   * Refuses a dead-letter topic that leads back to `name` (itself, or a
   * chain of dead-letter topics): its dead letters would loop for ever.
   */
  async #refuseDeadLetterCycle(name: string, dlq: string | undefined): Promise<void> {
    const chain = [name];
    let at = deadLetterTopic(name, dlq);
    while (!chain.includes(at)) {
      chain.push(at);
      const next = await this.#config(at).catch(() => undefined);
      if (!next) return;
      at = deadLetterTopic(at, next.dlq);
    }
    if (at !== name) return; // a loop among other topics, not through this one
    const path = [...chain, at].map((t) => `"${t}"`).join(" -> ");
    throw new MqError(
      "INVALID_ARGUMENT",
      at === name && chain.length === 1
        ? `--dlq "${at}" is the topic itself: its dead letters would loop for ever`
        : `--dlq "${dlq}" makes a cycle of dead-letter topics (${path}): dead letters would loop for ever`,
    );
  }

  async #require(name: string): Promise<TopicConfig> {
    assertName("topic", name);
    const config = await this.#config(name);
    if (!config) throw new MqError("TOPIC_NOT_FOUND", `topic "${name}" does not exist`);
    return config;
  }
}
