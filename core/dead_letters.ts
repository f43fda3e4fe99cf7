/**
 * The dead letters of a topic as a library API: list them with why they
 * failed, replay all, the first N or chosen ones back to the topic, purge.
 * A dead-letter topic is a log, so a letter replayed from its middle cannot
 * be cut out: it is marked replayed (a state document) and no longer listed
 * or replayed; the log is trimmed up to the first letter still waiting.
 *
 * @module
 */
import type { Mq } from "./client.ts";
import { adapterOf } from "./_access.ts";
import { deadLetterTopic, DLQ_HEADERS, withoutDeadLetterHeaders } from "./dead_letter.ts";
import { MqError } from "./errors.ts";
import type { ReceivedMessage } from "./message.ts";
import { assertName } from "./names.ts";
import { batchOf, type RecordMeta } from "./record.ts";

/** A dead letter: the message as it failed and why. */
export interface DeadLetter {
  /** The message in the dead-letter topic (its partition and offset there). */
  message: ReceivedMessage;
  /** Why it was dead-lettered. */
  reason: string | undefined;
  /** How many times it was delivered. */
  attempts: number | undefined;
  /** When its first delivery failed (ms since the epoch). */
  firstFailure: number | undefined;
  /** When its last delivery failed (ms since the epoch). */
  lastFailure: number | undefined;
  /** Its partition in the origin topic. */
  originPartition: number | undefined;
  /** Its offset in the origin topic. */
  originOffset: number | undefined;
}

/** A dead letter's place in the dead-letter topic. */
export interface DeadLetterRef {
  /** Partition in the dead-letter topic. */
  partition: number;
  /** Offset in the dead-letter topic. */
  offset: number;
}

/** Options of {@link listDeadLetters}. */
export interface ListDeadLettersOptions {
  /** At most this many (the oldest first). @default all */
  count?: number;
}

/** Options of {@link replayDeadLetters}. */
export interface ReplayDeadLettersOptions {
  /** Only the first N waiting. @default all */
  count?: number;
  /** Only these letters (those already replayed or gone are skipped). */
  only?: readonly DeadLetterRef[];
}

const enc = new TextEncoder();
const dec = new TextDecoder();

type Replayed = Record<string, number[]>;

/**
 * The dead-letter topic of `topic` and whether it exists.
 *
 * @throws {MqError} `TOPIC_NOT_FOUND` when `topic` does not exist
 */
async function dlqOf(mq: Mq, topic: string): Promise<{ name: string; exists: boolean }> {
  assertName("topic", topic);
  const config = await mq.topicConfig(topic);
  if (!config) throw new MqError("TOPIC_NOT_FOUND", `topic "${topic}" does not exist`);
  const name = deadLetterTopic(topic, config.dlq);
  return { name, exists: (await mq.topicConfig(name)) !== undefined };
}

async function loadReplayed(
  mq: Mq,
  dlq: string,
): Promise<{ set: Replayed; version: string | null }> {
  const doc = await adapterOf(mq).getState(["dlq-replayed", dlq]);
  return doc
    ? { set: JSON.parse(dec.decode(doc.value)) as Replayed, version: doc.version }
    : { set: {}, version: null };
}

function isReplayed(set: Replayed, partition: number, offset: number): boolean {
  return set[partition]?.includes(offset) ?? false;
}

function toDeadLetter(m: ReceivedMessage): DeadLetter {
  const h = m.headers;
  const num = (v: string | undefined) => (v === undefined || v === "" ? undefined : Number(v));
  const time = (v: string | undefined) => (v === undefined ? undefined : Date.parse(v));
  return {
    message: m,
    reason: h[DLQ_HEADERS.reason],
    attempts: num(h[DLQ_HEADERS.attempts]),
    firstFailure: time(h[DLQ_HEADERS.firstFailure]),
    lastFailure: time(h[DLQ_HEADERS.lastFailure]),
    originPartition: num(h[DLQ_HEADERS.partition]),
    originOffset: num(h[DLQ_HEADERS.offset]),
  };
}

/**
 * The dead letters of `topic` still waiting (not replayed), oldest first per
 * partition.
 *
 * @example
 * ```ts
 * import { Mq } from "./client.ts";
 * import { listDeadLetters } from "./dead_letters.ts";
 * import { MemoryAdapter } from "../adapters/memory/mod.ts";
 * const mq = new Mq(new MemoryAdapter());
 * await mq.topics.create("jobs", { maxAttempts: 1 });
 * await mq.publish("jobs", "boom");
 * await mq.consume("jobs", { group: "w", follow: false }, () => { throw new Error("no"); });
 * const [letter] = await listDeadLetters(mq, "jobs");
 * console.log(letter.message.text(), letter.reason); // boom no
 * await mq.close();
 * ```
 * @throws {MqError} `TOPIC_NOT_FOUND`, `INVALID_NAME`
 */
export async function listDeadLetters(
  mq: Mq,
  topic: string,
  options: ListDeadLettersOptions = {},
): Promise<DeadLetter[]> {
  const { name, exists } = await dlqOf(mq, topic);
  if (!exists) return [];
  const { set } = await loadReplayed(mq, name);
  const out: DeadLetter[] = [];
  const max = options.count ?? Infinity;
  if (max <= 0) return out;
  const sub = mq.subscribe(name, { follow: false });
  try {
    for await (const batch of sub.batches()) {
      for (const m of batch) {
        if (isReplayed(set, m.partition, m.offset)) continue;
        out.push(toDeadLetter(m));
        if (out.length >= max) return out;
      }
    }
  } finally {
    await sub.close();
  }
  return out;
}

/**
 * Publishes dead letters back to `topic` with their ids, keys and headers
 * (without mq's dead-letter headers; attempts start again) and removes them
 * from the dead letters. Resolves to how many were replayed.
 *
 * @example
 * ```ts
 * import { Mq } from "./client.ts";
 * import { listDeadLetters, replayDeadLetters } from "./dead_letters.ts";
 * import { MemoryAdapter } from "../adapters/memory/mod.ts";
 * const mq = new Mq(new MemoryAdapter());
 * await mq.topics.create("jobs", { maxAttempts: 1 });
 * await mq.publishBatch("jobs", ["a", "b"]);
 * await mq.consume("jobs", { group: "w", follow: false }, () => { throw new Error("no"); });
 * const letters = await listDeadLetters(mq, "jobs");
 * const { partition, offset } = letters[1].message;
 * console.log(await replayDeadLetters(mq, "jobs", { only: [{ partition, offset }] })); // 1
 * console.log((await listDeadLetters(mq, "jobs")).length); // 1
 * await mq.close();
 * ```
 * @throws {MqError} `TOPIC_NOT_FOUND`, `INVALID_NAME`
 */
export async function replayDeadLetters(
  mq: Mq,
  topic: string,
  options: ReplayDeadLettersOptions = {},
): Promise<number> {
  const { name, exists } = await dlqOf(mq, topic);
  if (!exists) return 0;
  const only = options.only ? new Set(options.only.map((r) => `${r.partition}:${r.offset}`)) : null;
  const letters = (await listDeadLetters(mq, topic)).filter((l) =>
    !only || only.has(`${l.message.partition}:${l.message.offset}`)
  ).slice(0, options.count ?? Infinity);
  if (letters.length === 0) return 0;
  // Mark first (compare-and-set), so that two replays of one letter publish it once.
  let marked: DeadLetter[] = [];
  for (let attempt = 0; attempt < 1000; attempt++) {
    const { set, version } = await loadReplayed(mq, name);
    marked = letters.filter((l) => !isReplayed(set, l.message.partition, l.message.offset));
    if (marked.length === 0) return 0;
    for (const l of marked) (set[l.message.partition] ??= []).push(l.message.offset);
    if (
      await adapterOf(mq).compareAndSet(
        ["dlq-replayed", name],
        version,
        enc.encode(JSON.stringify(set)),
      )
    ) break;
    if (attempt === 999) throw new MqError("CONFLICT", `dead letters of "${topic}" kept changing`);
  }
  const payloads = marked.map((l) => l.message.payload.slice());
  const meta: RecordMeta[] = marked.map((l) => ({
    id: l.message.id,
    key: l.message.key,
    headers: withoutDeadLetterHeaders(l.message.record.headers),
  }));
  // Not deduplicated: a replay is not a duplicate of the message it replays.
  await mq.publishRecords(topic, batchOf(payloads, meta, mq.now()), { deduplicate: false });
  await compact(mq, name);
  await mq.topics.countDeadLetters(topic);
  return marked.length;
}

/** Trims each partition of a dead-letter topic up to its first letter not replayed. */
async function compact(mq: Mq, dlq: string): Promise<void> {
  const config = await mq.topicConfig(dlq);
  if (!config) return;
  for (let attempt = 0; attempt < 1000; attempt++) {
    const { set, version } = await loadReplayed(mq, dlq);
    const next: Replayed = {};
    for (let p = 0; p < config.partitions; p++) {
      const offsets = new Set(set[p] ?? []);
      const { start, end } = await adapterOf(mq).bounds(dlq, p);
      let cut = start;
      while (cut < end && offsets.has(cut)) cut++;
      if (cut > start) await adapterOf(mq).trim(dlq, p, cut);
      const left = [...offsets].filter((o) => o >= cut).sort((a, b) => a - b);
      if (left.length > 0) next[p] = left;
    }
    if (version === null) return;
    if (
      await adapterOf(mq).compareAndSet(
        ["dlq-replayed", dlq],
        version,
        enc.encode(JSON.stringify(next)),
      )
    ) return;
  }
}

/**
 * Removes every dead letter of `topic`; resolves to how many were waiting.
 *
 * @example
 * ```ts
 * import { Mq } from "./client.ts";
 * import { purgeDeadLetters } from "./dead_letters.ts";
 * import { MemoryAdapter } from "../adapters/memory/mod.ts";
 * const mq = new Mq(new MemoryAdapter());
 * await mq.publish("jobs", "x");
 * console.log(await purgeDeadLetters(mq, "jobs")); // 0
 * await mq.close();
 * ```
 * @throws {MqError} `TOPIC_NOT_FOUND`, `INVALID_NAME`
 */
export async function purgeDeadLetters(mq: Mq, topic: string): Promise<number> {
  const { name, exists } = await dlqOf(mq, topic);
  if (!exists) return 0;
  const waiting = (await listDeadLetters(mq, topic)).length;
  // Purges and brings the groups' dead-lettered counts down with it.
  await mq.topics.purgeDeadLetters(topic);
  await adapterOf(mq).deleteState(["dlq-replayed", name]);
  return waiting;
}
