/**
 * Topic administration: create, list, inspect, purge, remove; and groups:
 * list, reset. Reached as `mq.topics` on a client.
 *
 * @module
 */
import type { StorageAdapter } from "./adapter.ts";
import { MqError } from "./errors.ts";
import { assertName } from "./names.ts";
import { makeTopicConfig, type TopicConfig, withReplicas } from "./topic_config.ts";
import { groupKey, loadGroup, updateGroup } from "./group_store.ts";
import { inFlight, lag, newCursor, resetTo, waitingDelay, waitingRetry } from "./lease_table.ts";
import { resolveStart, type StartFrom } from "./start_position.ts";
import { ExchangeAdmin } from "./exchanges.ts";

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

  /** Made by {@link Mq}; reached as `mq.topics`. */
  constructor(
    adapter: StorageAdapter,
    config: (topic: string) => Promise<TopicConfig | undefined>,
    forget: (topic: string) => void,
    now: () => number,
  ) {
    this.#adapter = adapter;
    this.#config = config;
    this.#forget = forget;
    this.#now = now;
  }

  /**
   * Creates a topic with the given settings (defaults for the rest).
   *
   * @throws {MqError} `TOPIC_EXISTS`, `INVALID_NAME`, `INVALID_ARGUMENT`
   */
  async create(name: string, settings: Partial<TopicConfig> = {}): Promise<TopicConfig> {
    assertName("topic", name);
    const config = withReplicas(makeTopicConfig(settings, this.#now()), this.#adapter.capabilities);
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
   * Moves a group to `to` in every partition (its leases are dropped).
   *
   * @throws {MqError} `TOPIC_NOT_FOUND`
   */
  async resetGroup(name: string, group: string, to: StartFrom): Promise<void> {
    assertName("group", group);
    const config = await this.#require(name);
    const offsets: number[] = [];
    for (let p = 0; p < config.partitions; p++) {
      offsets.push(await resolveStart(this.#adapter, name, p, to, this.#now()));
    }
    await updateGroup(this.#adapter, name, group, () => ({ partitions: {} }), (state) => {
      for (let p = 0; p < config.partitions; p++) {
        const c = state.partitions[p] ??= newCursor(offsets[p]);
        resetTo(c, offsets[p]);
      }
    });
  }

  /** Deletes a group's state. */
  async removeGroup(name: string, group: string): Promise<void> {
    assertName("group", group);
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
   * Deletes a topic: its messages, settings and groups.
   *
   * @throws {MqError} `TOPIC_NOT_FOUND`
   */
  async remove(name: string): Promise<void> {
    await this.#require(name);
    await this.#adapter.deleteState(["groups", name]);
    await this.#adapter.dropLog(name);
    // What a new topic of the same name must not inherit.
    await this.#adapter.deleteState(["dedup", name]);
    await this.#adapter.deleteState(["delayed", name]);
    await this.#adapter.deleteState(["cancelled", name]);
    await this.#adapter.deleteState(["topics", name]);
    this.#forget(name);
    // Bindings to a removed topic go with it (as RabbitMQ's do with a queue).
    await new ExchangeAdmin(this.#adapter, this.#now).removeBindingsTo("topic", name);
  }

  async #require(name: string): Promise<TopicConfig> {
    assertName("topic", name);
    const config = await this.#config(name);
    if (!config) throw new MqError("TOPIC_NOT_FOUND", `topic "${name}" does not exist`);
    return config;
  }
}
