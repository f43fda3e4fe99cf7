/**
 * A client's cache of topic settings: read once per topic from the backend's
 * state documents, made (with defaults) when a publish creates the topic,
 * and looked at again after writes so that a topic another client removed is
 * made again with the settings its writer used.
 *
 * @module
 */
import type { StorageAdapter } from "./adapter.ts";
import { assertName } from "./names.ts";
import {
  makeTopicConfig,
  parseTopicConfig,
  type TopicConfig,
  withReplicas,
} from "./topic_config.ts";

const enc = new TextEncoder();

/** The topic settings one client has seen, by topic. */
export class TopicConfigs {
  #adapter: StorageAdapter;
  #now: () => number;
  #configs = new Map<string, TopicConfig>();
  /** When each cached topic's settings were last seen stored (ms). */
  #seen = new Map<string, number>();

  constructor(adapter: StorageAdapter, now: () => number) {
    this.#adapter = adapter;
    this.#now = now;
  }

  /**
   * A topic's settings; with `create`, a missing topic is created with
   * `settings` (defaults for the rest).
   *
   * @throws {MqError} `INVALID_NAME`
   */
  async get(
    topic: string,
    options: { create?: boolean; settings?: Partial<TopicConfig> } = {},
  ): Promise<TopicConfig | undefined> {
    const cached = this.#configs.get(topic);
    if (cached) return cached;
    assertName("topic", topic);
    const key = ["topics", topic];
    let doc = await this.#adapter.getState(key);
    if (!doc && options.create) {
      const config = withReplicas(
        makeTopicConfig(options.settings ?? {}, this.#now()),
        this.#adapter.capabilities,
      );
      await this.#adapter.prepareTopic?.(topic, config);
      await this.#adapter.compareAndSet(key, null, enc.encode(JSON.stringify(config)));
      doc = await this.#adapter.getState(key);
    }
    if (!doc) return undefined;
    const config = parseTopicConfig(this.#adapter, topic, doc.value);
    this.#configs.set(topic, config);
    this.#seen.set(topic, this.#now());
    return config;
  }

  /**
   * A long-running publisher's topic may be removed by another client: after
   * a write (at most four times a second), look that its settings are still
   * stored, and make the topic again with them where they are not
   * (publishing makes a topic), so that what it wrote belongs to a topic,
   * not to a removed one.
   */
  async stillThere(topic: string, config: TopicConfig): Promise<void> {
    const now = this.#now();
    if (now - (this.#seen.get(topic) ?? 0) < 250) return;
    this.#seen.set(topic, now);
    const key = ["topics", topic];
    if (await this.#adapter.getState(key)) return;
    await this.#adapter.compareAndSet(key, null, enc.encode(JSON.stringify(config)));
  }

  /** Forgets one topic's cached settings (after another client changed them). */
  forget(topic: string): void {
    this.#configs.delete(topic);
  }

  /** Forgets every cached setting. */
  clear(): void {
    this.#configs.clear();
  }
}
