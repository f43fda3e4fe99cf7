/**
 * A message browser over one partition: a page of messages from an offset,
 * a time or the end, paging both ways, filtered by key, headers and payload
 * text, without a group and without moving anything. Reading stops after
 * `scanLimit` records, so a filter that matches nothing in a huge topic
 * answers at once with where to go on.
 *
 * @module
 */
import type { Mq } from "./client.ts";
import { adapterOf } from "./_access.ts";
import { MqError } from "./errors.ts";
import { ReceivedMessage } from "./message.ts";
import { resolveStart, type StartFrom } from "./start_position.ts";
import type { StoredRecord } from "./record.ts";

/** What a message must match to be shown. */
export interface BrowseFilter {
  /** Its key, exactly. */
  key?: string;
  /** Every one of these headers, exactly. */
  headers?: Record<string, string>;
  /** Text its payload (as UTF-8) contains, or a regular expression it matches. */
  text?: string | RegExp;
}

/** Options of {@link browseMessages}. */
export interface BrowseOptions {
  /** The partition. @default 0 */
  partition?: number;
  /**
   * Read forward from here (`beginning`, an offset, a time, `{agoMs}`); or
   * `end` for the last page. Ignored when `before` is set. @default "end"
   */
  from?: StartFrom;
  /** Read backward: the page of messages just below this offset. */
  before?: number;
  /** Messages per page. @default 50 */
  limit?: number;
  /** Only messages that match. */
  filter?: BrowseFilter;
  /** Records read at most for one page (matching or not). @default 100000 */
  scanLimit?: number;
}

/** A page of {@link browseMessages}. */
export interface BrowsePage {
  /** The messages, in offset order. */
  messages: ReceivedMessage[];
  /** The partition's first stored offset. */
  start: number;
  /** The partition's next offset. */
  end: number;
  /** Where the next page forward starts (`from`), or null at the end. */
  next: number | null;
  /** Where the previous page ends (`before`), or null at the start. */
  prev: number | null;
}

function matcher(filter: BrowseFilter | undefined): ((r: StoredRecord) => boolean) | undefined {
  if (!filter) return undefined;
  const { key, headers, text } = filter;
  const hs = headers ? Object.entries(headers) : [];
  if (key === undefined && hs.length === 0 && (text === undefined || text === "")) return undefined;
  const dec = new TextDecoder();
  return (r) => {
    if (key !== undefined && r.key !== key) return false;
    for (const [n, v] of hs) if (r.headers?.[n] !== v) return false;
    if (text instanceof RegExp) return text.test(dec.decode(r.payload));
    if (text) return dec.decode(r.payload).includes(text);
    return true;
  };
}

/**
 * A page of messages of one partition, as `mq ui`'s browser shows them.
 * Opening a page near the end of a long topic reads only that page (the
 * backend seeks to the offset).
 *
 * @example
 * ```ts
 * import { Mq } from "./client.ts";
 * import { browseMessages } from "./browse.ts";
 * import { MemoryAdapter } from "../adapters/memory/mod.ts";
 * const mq = new Mq(new MemoryAdapter());
 * await mq.publishBatch("t", ["a", "b", "c", "d"]);
 * const last = await browseMessages(mq, "t", { limit: 2 });
 * console.log(last.messages.map((m) => m.text()), last.prev); // ["c", "d"] 2
 * const before = await browseMessages(mq, "t", { before: last.prev!, limit: 2 });
 * console.log(before.messages.map((m) => m.text()), before.prev); // ["a", "b"] null
 * await mq.close();
 * ```
 * @throws {MqError} `TOPIC_NOT_FOUND`, `INVALID_ARGUMENT` (a partition the topic lacks)
 */
export async function browseMessages(
  mq: Mq,
  topic: string,
  options: BrowseOptions = {},
): Promise<BrowsePage> {
  const config = await mq.topicConfig(topic);
  if (!config) throw new MqError("TOPIC_NOT_FOUND", `topic "${topic}" does not exist`);
  const p = options.partition ?? 0;
  if (!Number.isInteger(p) || p < 0 || p >= config.partitions) {
    throw new MqError(
      "INVALID_ARGUMENT",
      `topic "${topic}" has partitions 0 to ${config.partitions - 1}, not ${p}`,
    );
  }
  const limit = Math.max(1, options.limit ?? 50);
  const scanLimit = Math.max(limit, options.scanLimit ?? 100_000);
  const match = matcher(options.filter);
  const { start, end } = await adapterOf(mq).bounds(topic, p);
  const wrap = (r: StoredRecord) => new ReceivedMessage(topic, p, r, 0);
  const from = options.from ?? "end";
  if (options.before === undefined && from !== "end") {
    const at = await resolveStart(adapterOf(mq), topic, p, from, mq.now());
    const out: StoredRecord[] = [];
    const reader = await adapterOf(mq).openReader(topic, p, at);
    let scanned = 0, last = at - 1, first: number | undefined;
    try {
      while (out.length < limit && scanned < scanLimit) {
        const batch = await reader.read(
          Math.min(match ? 1024 : limit - out.length, scanLimit - scanned),
        );
        if (batch.length === 0) break;
        for (const r of batch) {
          scanned++;
          last = r.offset;
          first ??= r.offset;
          if (match && !match(r)) continue;
          out.push(r);
          if (out.length >= limit) break;
        }
      }
    } finally {
      reader.close();
    }
    const lo = first ?? Math.max(at, start);
    return {
      messages: out.map(wrap),
      start,
      end,
      next: last + 1 < end ? last + 1 : null,
      prev: lo > start ? lo : null,
    };
  }
  // Backward: chunks below `before`, the last `limit` matches.
  const before = Math.min(Math.max(options.before ?? end, start), end);
  let hi = before, scanned = 0;
  let found: StoredRecord[] = [];
  while (hi > start && found.length < limit && scanned < scanLimit) {
    const chunk = Math.min(match ? 1024 : limit - found.length, hi - start, scanLimit - scanned);
    const lo = hi - chunk;
    const reader = await adapterOf(mq).openReader(topic, p, lo);
    const got: StoredRecord[] = [];
    try {
      while (true) {
        const batch = await reader.read(hi - lo);
        if (batch.length === 0) break;
        let done = false;
        for (const r of batch) {
          if (r.offset >= hi) {
            done = true;
            break;
          }
          got.push(r);
        }
        if (done || got.length >= hi - lo) break;
      }
    } finally {
      reader.close();
    }
    scanned += chunk;
    const kept = match ? got.filter(match) : got;
    found = kept.slice(Math.max(0, kept.length - (limit - found.length))).concat(found);
    hi = found.length >= limit && found.length > 0 ? found[0].offset : lo;
  }
  return {
    messages: found.map(wrap),
    start,
    end,
    next: before < end ? before : null,
    prev: hi > start ? hi : null,
  };
}
