/**
 * A plain read (no group) of one or more topics and topic patterns: from a
 * position or the last N messages, until a point, of some partitions,
 * filtered, skipping cancelled and expired messages unless told otherwise,
 * and picking up topics that match a pattern as they are created.
 *
 * Records travel as {@link TopicBlock}s (columns, no object per record);
 * {@link LogSource.next} turns them into messages for the batch API.
 *
 * @module
 */
import type { LogReader, StorageAdapter } from "./adapter.ts";
import { MqError } from "./errors.ts";
import type { Clock } from "./clock.ts";
import type { ReceivedMessage } from "./message.ts";
import type { StoredRecord } from "./record.ts";
import {
  blockOf,
  compactBlock,
  messagesOf,
  type RecordBlock,
  sliceBlock,
  type TopicBlock,
} from "./record_block.ts";
import { blockMatcher, filters, type MessageFilter } from "./read_filter.ts";
import { resolveStart, type StartFrom } from "./start_position.ts";
import { retainedSince, type TopicConfig } from "./topic_config.ts";
import { isTopicPattern, topicMatches } from "./topic_pattern.ts";
import { loadCancelled } from "./_delayed_index.ts";

/** How a plain read goes (the plain-read part of `SubscribeOptions`). */
export interface LogReadOptions {
  from?: StartFrom;
  follow?: boolean;
  last?: number;
  until?: StartFrom;
  partitions?: number[];
  filter?: MessageFilter;
  idleMs?: number;
  all?: boolean;
}

/** What a plain read needs from the client. */
export interface LogSourceContext {
  adapter: StorageAdapter;
  /** Topic names and patterns to read. */
  topics: readonly string[];
  /** A topic's settings (undefined when it does not exist). */
  configOf: (topic: string) => Promise<TopicConfig | undefined>;
  /** The names of the topics there are. */
  listTopics: () => Promise<string[]>;
  now: () => number;
  /** The client's timers: a wait for new records ends at the clock's timeout. */
  clock: Clock;
}

interface PartitionCursor {
  topic: TopicCursor;
  partition: number;
  reader: LogReader;
  next: number;
  /** The offset to stop before (`--until OFFSET`, or the end for `until: "end"`). */
  stop: number;
  done: boolean;
}

interface TopicCursor {
  name: string;
  config: TopicConfig;
  cancelled?: Set<string>;
  cancelledAt: number;
}

/** How often topics are listed again, for patterns and topics not created yet (ms). */
const RELIST_MS = 1000;

/** A plain read of topics and patterns. */
export class LogSource {
  #ctx: LogSourceContext;
  #options: LogReadOptions;
  #opened = false;
  #cursors: PartitionCursor[] = [];
  #topics = new Map<string, TopicCursor>();
  /** Blocks read ahead (the last N, in time order), handed out first. */
  #pending: TopicBlock[] = [];
  #turn = 0;
  #untilTime: number | undefined;
  #listedAt = -Infinity;
  #lastDelivery = 0;
  #match: ((block: RecordBlock) => (i: number) => boolean) | undefined;

  constructor(ctx: LogSourceContext, options: LogReadOptions) {
    this.#ctx = ctx;
    this.#options = options;
    if (filters(options.filter)) this.#match = blockMatcher(options.filter);
  }

  /** True when topics may still appear (patterns, or named topics not created yet). */
  get #mayGrow(): boolean {
    return this.#ctx.topics.some((t) => isTopicPattern(t) || !this.#topics.has(t));
  }

  async #open(): Promise<void> {
    this.#opened = true;
    const now = this.#ctx.now();
    const until = this.#options.until;
    if (until instanceof Date) this.#untilTime = until.getTime();
    else if (until !== undefined && typeof until === "object") this.#untilTime = now - until.agoMs;
    this.#lastDelivery = now;
    await this.#discover(true);
  }

  /** Opens the topics that exist now and are not open yet. */
  async #discover(first: boolean): Promise<void> {
    this.#listedAt = this.#ctx.now();
    const wanted: string[] = [];
    const patterns = this.#ctx.topics.filter(isTopicPattern);
    for (const t of this.#ctx.topics) if (!isTopicPattern(t)) wanted.push(t);
    if (patterns.length > 0) {
      for (const name of (await this.#ctx.listTopics()).sort()) {
        if (patterns.some((p) => topicMatches(p, name))) wanted.push(name);
      }
    }
    for (const name of wanted) {
      if (this.#topics.has(name)) continue;
      const config = await this.#ctx.configOf(name);
      if (!config) continue;
      await this.#openTopic(name, config, first);
    }
  }

  async #openTopic(name: string, config: TopicConfig, first: boolean): Promise<void> {
    const { adapter } = this.#ctx;
    const now = this.#ctx.now();
    const n = config.partitions;
    const chosen = this.#options.partitions ?? Array.from({ length: n }, (_, p) => p);
    for (const p of chosen) {
      if (!Number.isInteger(p) || p < 0 || p >= n) {
        throw new MqError(
          "INVALID_ARGUMENT",
          `partition ${p} does not exist: topic "${name}" has ${n} (0 to ${n - 1})`,
        );
      }
    }
    const topic: TopicCursor = { name, config, cancelledAt: -Infinity };
    this.#topics.set(name, topic);
    const last = this.#options.last;
    // A topic created after the read began is read from its beginning (all of it is new).
    const from = first ? this.#options.from ?? "beginning" : "beginning";
    const tail: { partition: number; record: StoredRecord }[] = [];
    for (const p of chosen) {
      const bounds = await adapter.bounds(name, p);
      let at: number;
      if (last !== undefined && first) {
        at = bounds.end;
        const begin = Math.max(bounds.start, bounds.end - last);
        if (begin < bounds.end) {
          const r = await adapter.openReader(name, p, begin);
          try {
            let next = begin;
            while (next < bounds.end) {
              const records = await r.read(bounds.end - next);
              if (records.length === 0) break;
              for (const record of records) {
                if (record.offset < bounds.end) tail.push({ partition: p, record });
              }
              next = records[records.length - 1].offset + 1;
            }
          } finally {
            r.close();
          }
        }
      } else at = await resolveStart(adapter, name, p, from, now);
      const until = this.#options.until;
      let stop = Infinity;
      if (typeof until === "number") stop = until;
      else if (until === "end") stop = bounds.end;
      else if (until === "beginning") stop = bounds.start;
      this.#cursors.push({
        topic,
        partition: p,
        reader: await adapter.openReader(name, p, at),
        next: at,
        stop,
        done: false,
      });
    }
    if (tail.length > 0) {
      // The last N over all partitions, by time (then partition and offset).
      tail.sort((a, b) =>
        a.record.timestamp - b.record.timestamp || a.partition - b.partition ||
        a.record.offset - b.record.offset
      );
      const kept = tail.slice(Math.max(0, tail.length - last!));
      for (let i = 0; i < kept.length;) {
        let j = i;
        while (j < kept.length && kept[j].partition === kept[i].partition) j++;
        const block = blockOf(kept.slice(i, j).map((e) => e.record));
        this.#pending.push({ ...block, topic: name, partition: kept[i].partition });
        i = j;
      }
    }
  }

  /** The next batch of messages, or null at the end (without follow) or when stopped. */
  async next(max: number, signal: AbortSignal): Promise<ReceivedMessage[] | null> {
    const block = await this.nextBlock(max, signal);
    return block === null ? null : messagesOf(block);
  }

  /** The next block of records, or null at the end (without follow) or when stopped. */
  async nextBlock(max: number, signal: AbortSignal): Promise<TopicBlock | null> {
    if (!this.#opened) await this.#open();
    while (!signal.aborted) {
      while (this.#pending.length > 0) {
        let block = this.#pending.shift()!;
        if (block.count > max) {
          this.#pending.unshift(sliceBlock(block, max, block.count));
          block = sliceBlock(block, 0, max);
        }
        const cursor = this.#cursors.find((c) =>
          c.topic.name === block.topic && c.partition === block.partition
        )!;
        if (await this.#select(block, cursor) > 0) return this.#delivered(block);
      }
      let read = false;
      const n = this.#cursors.length;
      for (let k = 0; k < n; k++) {
        const i = (this.#turn + k) % n;
        const c = this.#cursors[i];
        if (c.done) continue;
        const block = c.reader.readBlock
          ? await c.reader.readBlock(max)
          : blockOf(await c.reader.read(max));
        if (block.count === 0) {
          if (c.next >= c.stop || this.#timeIsUp()) c.done = true;
          continue;
        }
        read = true;
        c.next = block.offsets[block.count - 1] + 1;
        this.#turn = i + 1;
        const tb = block as TopicBlock;
        tb.topic = c.topic.name;
        tb.partition = c.partition;
        if (await this.#select(tb, c) > 0) return this.#delivered(tb);
      }
      if (read) continue;
      if (this.#options.until !== undefined && this.#cursors.every((c) => c.done)) {
        if (!this.#mayGrow || this.#timeIsUp()) return null;
      }
      if (this.#options.follow === false) return null;
      const now = this.#ctx.now();
      const idle = this.#options.idleMs;
      if (idle !== undefined && now - this.#lastDelivery >= idle) return null;
      let wait = RELIST_MS;
      if (idle !== undefined) wait = Math.min(wait, this.#lastDelivery + idle - now);
      if (this.#untilTime !== undefined && this.#untilTime > now) {
        wait = Math.min(wait, this.#untilTime - now);
      }
      await this.#wait(signal, Math.max(1, wait));
      if (this.#mayGrow && this.#ctx.now() - this.#listedAt >= RELIST_MS) {
        await this.#discover(false);
      }
    }
    return null;
  }

  #delivered(block: TopicBlock): TopicBlock {
    this.#lastDelivery = this.#ctx.now();
    return block;
  }

  #timeIsUp(): boolean {
    return this.#untilTime !== undefined && this.#ctx.now() >= this.#untilTime;
  }

  /**
   * Drops from `block` what the read does not show: records at or past
   * `--until` (which ends the partition), records past the retention age,
   * expired and cancelled ones (unless `all`), and what the filter refuses.
   * Resolves to the records left.
   */
  async #select(block: TopicBlock, c: PartitionCursor): Promise<number> {
    const { offsets, timestamps } = block;
    const untilTime = this.#untilTime;
    if (c.stop !== Infinity || untilTime !== undefined) {
      for (let i = 0; i < block.count; i++) {
        if (offsets[i] >= c.stop || (untilTime !== undefined && timestamps[i] >= untilTime)) {
          block.count = i;
          c.done = true;
          break;
        }
      }
    }
    const now = this.#ctx.now();
    const since = retainedSince(c.topic.config, now);
    const meta = this.#options.all ? undefined : block.meta;
    const match = this.#match?.(block);
    if (since === undefined && meta === undefined && match === undefined) return block.count;
    let cancelled: Set<string> | undefined;
    if (meta?.some((m) => m?.deliverAt !== undefined)) cancelled = await this.#cancelled(c.topic);
    const p = block.partition;
    return compactBlock(block, (i) => {
      if (since !== undefined && timestamps[i] < since) return false;
      const m = meta?.[i];
      if (m) {
        if (m.expiresAt !== undefined && m.expiresAt <= now) return false;
        if (m.deliverAt !== undefined && cancelled!.has(m.id ?? `${p}-${offsets[i]}`)) {
          return false;
        }
      }
      return match === undefined || match(i);
    });
  }

  /** The cancelled ids of a topic, looked up again at most every second. */
  async #cancelled(topic: TopicCursor): Promise<Set<string>> {
    const now = this.#ctx.now();
    if (!topic.cancelled || now - topic.cancelledAt >= RELIST_MS) {
      topic.cancelled = await loadCancelled(this.#ctx.adapter, topic.name);
      topic.cancelledAt = now;
    }
    return topic.cancelled;
  }

  /** Waits for new records in any partition still read, or `timeoutMs`. */
  async #wait(signal: AbortSignal, timeoutMs: number): Promise<void> {
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      const waits = this.#cursors.filter((c) => !c.done).map((c) =>
        this.#ctx.adapter.waitFor(c.topic.name, c.partition, c.next, stop.signal, timeoutMs)
      );
      waits.push(this.#ctx.clock.sleep(timeoutMs, stop.signal));
      await Promise.race(waits);
    } finally {
      stop.abort();
      signal.removeEventListener("abort", onAbort);
    }
  }

  /** Nothing to commit: a plain read keeps no position. */
  commit(): Promise<void> {
    return Promise.resolve();
  }

  /** Closes every reader. */
  close(_release: boolean): Promise<void> {
    for (const c of this.#cursors) c.reader.close();
    this.#cursors = [];
    return Promise.resolve();
  }
}
