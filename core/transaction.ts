/**
 * Transactions: publishes to any topics and partitions, and settlements of
 * group deliveries, that take effect together or not at all.
 *
 * - On a backend with `capabilities.transactions === "atomic"` (memory, kv,
 *   fs) everything goes into one {@link StorageAdapter.commitTransaction}:
 *   the records, the group state documents that settle the deliveries (their
 *   leases checked in the same commit), and the dedup reservations of ids.
 * - On an `"effectively-once"` backend (nats: nats-server 2.9 has no atomic
 *   batch) the outputs are published first, each with an id derived from the
 *   first delivery the transaction settles and the output's index (deduplicated
 *   by the backend), and the settlements are written only once every publish
 *   is confirmed: a crash in between redelivers the input, whose outputs are
 *   then dropped as duplicates within the topic's dedup window.
 *
 * @module
 */
import type { PartitionWrite, StateWrite, StorageAdapter, TransactionWrite } from "./adapter.ts";
import { MqError } from "./errors.ts";
import { assertName } from "./names.ts";
import { partitionOf } from "./_partitioner.ts";
import { batchOf, pickRecords, type RecordBatch, type RecordMeta } from "./record.ts";
import { makeTopicConfig, type TopicConfig } from "./topic_config.ts";
import { type ReceivedMessage, SETTLED, TRANSFER, type Transferred } from "./message.ts";
import { groupKey, type GroupState, parseGroup, updateGroup } from "./_group_store.ts";
import { deadLetterMeta } from "./dead_letter.ts";
import { planReservations } from "./_dedup.ts";
import { checkRoom, enforceRetention, hasRetention } from "./_retention.ts";
import { recordDelayed } from "./_delayed_index.ts";

/** Options of {@link Transaction.publish}. */
export interface TransactionPublishOptions {
  /** Partitioning key: one key, one partition, kept in order. */
  key?: string;
  /**
   * Message id. Where the backend is effectively-once, a message without one
   * gets `<topic>:<partition>:<offset>:<index>` of the first delivery the
   * transaction settles and its index among the transaction's publishes.
   */
  id?: string;
  /** Headers. */
  headers?: Record<string, string>;
  /** The partition, instead of the key's. */
  partition?: number;
  /** Not delivered to groups before this many ms from now. */
  delayMs?: number;
  /** Never delivered after this many ms from now. */
  ttlMs?: number;
}

/** What a committed transaction did. */
export interface TransactionResult {
  /** Messages stored. */
  published: number;
  /** Messages dropped as duplicates of an id seen within the dedup window. */
  duplicates: number;
  /** Deliveries acked. */
  acked: number;
  /** Deliveries nacked (to be retried, or dead-lettered on their last attempt). */
  nacked: number;
  /** Per topic and partition written: the first offset and how many. */
  written: { topic: string; partition: number; first: number; count: number }[];
}

/** The client's part a transaction needs (implemented by `Mq`). */
export interface TransactionHost {
  /** The backend. */
  readonly adapter: StorageAdapter;
  /** The clock. */
  readonly now: () => number;
  /** A topic's settings; with `create`, made with defaults when missing. */
  topicConfig(topic: string, options?: { create?: boolean }): Promise<TopicConfig | undefined>;
  /** The first record of `batch` the topic or the backend refuses, and why. */
  invalidRecord(
    batch: RecordBatch,
    config: TopicConfig,
    topic: string,
  ): { index: number; code: "MESSAGE_TOO_LARGE" | "INVALID_ARGUMENT"; message: string } | undefined;
}

/** One publish, or a batch of records ({@link Transaction.publishRecords}). */
type Output =
  | { topic: string; payload: Uint8Array; options: TransactionPublishOptions }
  | { topic: string; batch: RecordBatch; partition?: number }
  | { topic: string; plain: Uint8Array[] };

interface Settlement {
  m: ReceivedMessage;
  t: Transferred;
  kind: "ack" | "nack";
  delayMs?: number;
  reason?: string;
}

const enc = new TextEncoder();

/**
 * A transaction being built: what {@link Mq.transaction}'s callback gets.
 * Nothing is written until the callback returns; then all of it at once.
 *
 * @example
 * ```ts
 * import { Mq } from "./client.ts";
 * import { MemoryAdapter } from "../adapters/memory/mod.ts";
 * const mq = new Mq(new MemoryAdapter());
 * await mq.publish("in", "hello");
 * const sub = mq.subscribe("in", { group: "g", follow: false });
 * const [m] = (await sub.take(1))!;
 * await mq.transaction((tx) => {
 *   tx.publish("out", m.text().toUpperCase());
 *   tx.ack(m);
 * });
 * await sub.close();
 * await mq.close();
 * ```
 */
export class Transaction {
  #outputs: Output[] = [];
  #settlements: Settlement[] = [];
  #open = true;

  /** Made by {@link runTransaction} only. */
  constructor() {
    built.set(this, {
      close: (abort) => {
        this.#open = false;
        if (abort) this.#restore();
        return { outputs: this.#outputs, settlements: this.#settlements };
      },
      restore: () => this.#restore(),
    });
  }

  #assertOpen(): void {
    if (!this.#open) {
      throw new MqError("INVALID_ARGUMENT", "the transaction is over (its callback returned)");
    }
  }

  /**
   * Adds a message to publish with the transaction.
   *
   * @throws {MqError} `INVALID_NAME` for a bad topic name
   */
  publish(
    topic: string,
    payload: Uint8Array | string,
    options: TransactionPublishOptions = {},
  ): void {
    this.#assertOpen();
    const bytes = typeof payload === "string" ? enc.encode(payload) : payload;
    const last = this.#outputs[this.#outputs.length - 1];
    const plain = options.key === undefined && options.id === undefined &&
      options.headers === undefined && options.partition === undefined &&
      options.delayMs === undefined && options.ttlMs === undefined;
    // Plain messages in a row to one topic: one entry (the name checked once).
    if (plain && last && "plain" in last && last.topic === topic) {
      last.plain.push(bytes);
      return;
    }
    assertName("topic", topic);
    this.#outputs.push(plain ? { topic, plain: [bytes] } : { topic, payload: bytes, options });
  }

  /**
   * Adds a prepared batch of records (the fast path for many messages; its
   * bytes must not change until the transaction is over), to `partition` or
   * split by key.
   *
   * @throws {MqError} `INVALID_NAME` for a bad topic name
   */
  publishRecords(topic: string, batch: RecordBatch, options: { partition?: number } = {}): void {
    this.#assertOpen();
    assertName("topic", topic);
    if (batch.count > 0) this.#outputs.push({ topic, batch, partition: options.partition });
  }

  /**
   * Acks a group delivery with the transaction.
   *
   * @throws {MqError} `INVALID_ARGUMENT` when `m` is not an unsettled group delivery
   */
  ack(m: ReceivedMessage): void {
    this.#settle(m, "ack");
  }

  /**
   * Nacks a group delivery with the transaction: delivered again after
   * `delayMs` (default: the subscription's backoff), or, on its last attempt,
   * moved to the dead-letter topic in the same commit.
   *
   * @throws {MqError} `INVALID_ARGUMENT` when `m` is not an unsettled group delivery
   */
  nack(m: ReceivedMessage, options: { delayMs?: number; reason?: string } = {}): void {
    this.#settle(m, "nack", options.delayMs, options.reason);
  }

  #settle(m: ReceivedMessage, kind: "ack" | "nack", delayMs?: number, reason?: string): void {
    this.#assertOpen();
    const t = m[TRANSFER]();
    if (!t) {
      throw new MqError(
        "INVALID_ARGUMENT",
        `message ${m.topic}/${m.partition}/${m.offset} is not an unsettled delivery of a group subscription of this client`,
      );
    }
    this.#settlements.push({ m, t, kind, delayMs, reason });
  }

  /** Gives every delivery back to its consumer, unsettled. */
  #restore(): void {
    for (const s of this.#settlements) s.t.restore();
  }
}

/** What {@link runTransaction} does with a transaction it made: end it, or give its deliveries back. */
const built = new WeakMap<Transaction, {
  close(abort: boolean): { outputs: Output[]; settlements: Settlement[] };
  restore(): void;
}>();

/**
 * Runs `fn` with a new transaction and commits what it added; when `fn`
 * throws, or the commit fails, nothing is written and the deliveries it
 * settled are unsettled again (their consumers may nack or release them).
 *
 * @throws {MqError} `MESSAGE_TOO_LARGE` / `INVALID_ARGUMENT` (a refused message,
 * `details.index` its index among the publishes), `TRANSACTION_TOO_LARGE`,
 * `LEASE_EXPIRED` (a delivery's lease went to another consumer), `TOPIC_FULL`
 *
 * @example
 * ```ts
 * import { runTransaction } from "./transaction.ts";
 * import { Mq } from "./client.ts";
 * import { MemoryAdapter } from "../adapters/memory/mod.ts";
 * const mq = new Mq(new MemoryAdapter());
 * // What `mq.transaction(fn)` does:
 * const r = await mq.transaction((tx) => tx.publish("t", "x"));
 * console.log(r.published); // 1
 * void runTransaction;
 * ```
 */
export async function runTransaction(
  host: TransactionHost,
  fn: (tx: Transaction) => unknown | Promise<unknown>,
): Promise<TransactionResult> {
  const tx = new Transaction();
  const own = built.get(tx)!;
  try {
    await fn(tx);
  } catch (e) {
    own.close(true);
    throw e;
  }
  const { outputs, settlements } = own.close(false);
  try {
    const atomic = (host.adapter.capabilities.transactions ??
      (host.adapter.commitTransaction ? "atomic" : "effectively-once")) === "atomic";
    return atomic && host.adapter.commitTransaction
      ? await commitAtomic(host, outputs, settlements)
      : await commitEffectivelyOnce(host, outputs, settlements);
  } catch (e) {
    own.restore();
    throw e;
  }
}

/** Publishes of one topic, as a batch, and which output each record is. */
interface TopicPart {
  topic: string;
  config: TopicConfig;
  batch: RecordBatch;
  /** Per record: the partition asked for (else undefined). */
  partitions: (number | undefined)[];
  deduplicate: boolean;
}

/** Groups outputs (and dead letters) by topic and checks every record before anything is written. */
async function prepareParts(
  host: TransactionHost,
  outputs: Output[],
  deadLetters: { topic: string; payload: Uint8Array; meta: RecordMeta }[],
  idOf?: (index: number) => string,
): Promise<TopicPart[]> {
  const now = host.now();
  /** The topic's settings, once every record of `batch` passed its checks. */
  const checked = async (topic: string, batch: RecordBatch, at: (i: number) => number) => {
    const config = (await host.topicConfig(topic)) ?? makeTopicConfig({}, now);
    const bad = host.invalidRecord(batch, config, topic);
    if (bad) {
      throw new MqError(
        bad.code,
        `${bad.message} (message ${at(bad.index) + 1} of the transaction)`,
        {
          details: { index: at(bad.index), published: 0 },
        },
      );
    }
    return config;
  };
  const byTopic = new Map<
    string,
    {
      payloads: Uint8Array[];
      meta: (RecordMeta | undefined)[];
      parts: (number | undefined)[];
      at: number[];
    }
  >();
  const entry = (topic: string) => {
    let e = byTopic.get(topic);
    if (!e) byTopic.set(topic, e = { payloads: [], meta: [], parts: [], at: [] });
    return e;
  };
  let index = 0;
  const single = new Map<string, number>();
  for (const o of outputs) single.set(o.topic, (single.get(o.topic) ?? 0) + 1);
  const direct: TopicPart[] = [];
  for (const o of outputs) {
    if ("batch" in o && single.get(o.topic) === 1 && !idOf) {
      // A topic's only publish is a batch: as it is, no copy.
      const at = index;
      index += o.batch.count;
      const config = await checked(o.topic, o.batch, (i) => at + i);
      const p = o.partition;
      if (p !== undefined && (!Number.isInteger(p) || p < 0 || p >= config.partitions)) {
        throw new MqError(
          "INVALID_ARGUMENT",
          `partition ${p} does not exist: topic "${o.topic}" has ${config.partitions} (0 to ${
            config.partitions - 1
          })`,
        );
      }
      direct.push({
        topic: o.topic,
        config,
        batch: o.batch,
        partitions: new Array(o.batch.count).fill(o.partition),
        deduplicate: true,
      });
      continue;
    }
    const e = entry(o.topic);
    if ("plain" in o) {
      // No meta, no partition: holes in those arrays (read as undefined).
      for (const bytes of o.plain) {
        if (idOf) e.meta[e.payloads.length] = { id: idOf(index) };
        e.payloads.push(bytes);
        e.at.push(index++);
      }
      continue;
    }
    if ("batch" in o) {
      const b = o.batch;
      for (let j = 0; j < b.count; j++) {
        const m = b.meta?.[j];
        e.payloads.push(b.data.subarray(b.starts[j], b.ends[j]));
        let own: RecordMeta | undefined = m;
        if (b.timestamp !== now || (idOf && m?.id === undefined)) {
          own = { ...m, timestamp: m?.timestamp ?? b.timestamp };
          if (own.id === undefined && idOf) own.id = idOf(index);
        }
        const at = e.payloads.length - 1;
        if (own) e.meta[at] = own;
        if (o.partition !== undefined) e.parts[at] = o.partition;
        e.at.push(index++);
      }
      continue;
    }
    const opt = o.options;
    e.payloads.push(o.payload);
    const at = e.payloads.length - 1;
    e.meta[at] = {
      key: opt.key,
      id: opt.id ?? idOf?.(index),
      headers: opt.headers,
      deliverAt: opt.delayMs !== undefined ? now + opt.delayMs : undefined,
      expiresAt: opt.ttlMs !== undefined ? now + opt.ttlMs : undefined,
    };
    if (opt.partition !== undefined) e.parts[at] = opt.partition;
    e.at.push(index++);
  }
  const out: TopicPart[] = direct;
  for (const [topic, e] of byTopic) {
    const batch = batchOf(e.payloads, e.meta.some((m) => m) ? e.meta : undefined, now);
    const config = await checked(topic, batch, (i) => e.at[i]);
    for (const p of e.parts) {
      if (p !== undefined && (!Number.isInteger(p) || p < 0 || p >= config.partitions)) {
        throw new MqError(
          "INVALID_ARGUMENT",
          `partition ${p} does not exist: topic "${topic}" has ${config.partitions} (0 to ${
            config.partitions - 1
          })`,
        );
      }
    }
    out.push({ topic, config, batch, partitions: e.parts, deduplicate: true });
  }
  const dl = new Map<string, { payload: Uint8Array; meta: RecordMeta }[]>();
  for (const d of deadLetters) {
    let xs = dl.get(d.topic);
    if (!xs) dl.set(d.topic, xs = []);
    xs.push(d);
  }
  for (const [topic, xs] of dl) {
    const config = (await host.topicConfig(topic)) ?? makeTopicConfig({}, now);
    out.push({
      topic,
      config,
      batch: batchOf(xs.map((x) => x.payload), xs.map((x) => x.meta), now),
      partitions: xs.map(() => undefined),
      deduplicate: false,
    });
  }
  // Every record is fine: the topics may be made now.
  for (const p of out) p.config = (await host.topicConfig(p.topic, { create: true }))!;
  return out;
}

let sticky = 0;

/**
 * The records of a part per partition: the one asked for, else the key's,
 * else (effectively-once, so that a repeat lands where the first did) the
 * id's, else one partition for all.
 */
function splitPart(part: TopicPart, byId: boolean): PartitionWrite[] {
  const n = part.config.partitions;
  const { batch } = part;
  if (!batch.meta && !part.partitions.some((p) => p !== undefined)) {
    // Nothing picks a partition: all to one.
    return [{ topic: part.topic, partition: n > 1 ? sticky++ % n : 0, batch }];
  }
  const groups = new Map<number, number[]>();
  const unkeyed = n > 1 ? sticky++ % n : 0;
  for (let i = 0; i < batch.count; i++) {
    const m = batch.meta?.[i];
    const p = part.partitions[i] ??
      (m?.key !== undefined
        ? partitionOf(m.key, n)
        : byId && m?.id !== undefined
        ? partitionOf(m.id, n)
        : unkeyed);
    let xs = groups.get(p);
    if (!xs) groups.set(p, xs = []);
    xs.push(i);
  }
  return [...groups].sort((a, b) => a[0] - b[0]).map(([partition, xs]) => ({
    topic: part.topic,
    partition,
    batch: xs.length === batch.count ? batch : pickRecords(batch, xs),
  }));
}

/** Dead letters of the nacks made on a delivery's last attempt. */
function deadLettersOf(
  settlements: Settlement[],
  now: number,
): { topic: string; payload: Uint8Array; meta: RecordMeta }[] {
  const out: { topic: string; payload: Uint8Array; meta: RecordMeta }[] = [];
  for (const s of settlements) {
    if (s.kind !== "nack" || s.m.attempt < s.t.maxAttempts) continue;
    out.push({
      topic: s.t.deadTopic,
      payload: s.m.payload,
      meta: deadLetterMeta(s.m.topic, s.m.partition, s.m.record, {
        reason: s.reason ?? "nacked",
        attempts: s.m.attempt,
        firstFailure: s.t.firstFailure ?? now,
        lastFailure: now,
      }),
    });
  }
  return out;
}

/** How a settlement changes the group state. */
function changeOf(s: Settlement, now: number) {
  if (s.kind === "ack") return { kind: "ack" as const };
  if (s.m.attempt >= s.t.maxAttempts) return { kind: "dead" as const };
  return {
    kind: "retry" as const,
    notBefore: now + (s.delayMs ?? s.t.retryDelay()),
    failedAt: now,
  };
}

function leaseLost(s: Settlement): MqError {
  return new MqError(
    "LEASE_EXPIRED",
    `the lease of message ${s.m.topic}/${s.m.partition}/${s.m.offset} (group "${s.t.group}") expired and it went to another consumer: the transaction was not committed`,
  );
}

/** The group state documents that apply `settlements`, checked against the leases. */
async function settlementStates(
  adapter: StorageAdapter,
  settlements: Settlement[],
  now: number,
): Promise<StateWrite[]> {
  const byGroup = new Map<string, Settlement[]>();
  for (const s of settlements) {
    const k = JSON.stringify(groupKey(s.m.topic, s.t.group));
    let xs = byGroup.get(k);
    if (!xs) byGroup.set(k, xs = []);
    xs.push(s);
  }
  const states: StateWrite[] = [];
  for (const [k, xs] of byGroup) {
    const key = JSON.parse(k) as string[];
    const doc = await adapter.getState(key);
    const state = doc
      ? parseGroup(adapter, key, xs[0].m.topic, xs[0].t.group, doc.value)
      : xs[0].t.init() as GroupState;
    for (const s of xs) {
      if (s.t.apply(state, changeOf(s, now)) > 0) throw leaseLost(s);
    }
    states.push({
      key,
      expected: doc?.version ?? null,
      value: enc.encode(JSON.stringify(state)),
    });
  }
  return states;
}

async function commitAtomic(
  host: TransactionHost,
  outputs: Output[],
  settlements: Settlement[],
): Promise<TransactionResult> {
  const { adapter } = host;
  const parts = await prepareParts(host, outputs, deadLettersOf(settlements, host.now()));
  for (let attempt = 0;; attempt++) {
    const now = host.now();
    const states = await settlementStates(adapter, settlements, now);
    const writes: TransactionWrite[] = [];
    let duplicates = 0;
    for (const part of parts) {
      let p = part;
      let native: { windowMs: number; now: number } | undefined;
      const window = part.config.dedupWindowMs;
      if (part.deduplicate && window > 0 && part.batch.meta?.some((m) => m?.id !== undefined)) {
        if (adapter.appendDeduplicated && part.config.partitions === 1) {
          native = { windowMs: window, now };
        } else {
          const plan = await planReservations(adapter, part.topic, part.batch, window, now);
          states.push(...plan.states);
          duplicates += part.batch.count - plan.keep.length;
          p = {
            ...part,
            batch: pickRecords(part.batch, plan.keep),
            partitions: plan.keep.map((i) => part.partitions[i]),
          };
        }
      }
      if (p.batch.count === 0) continue;
      for (const w of splitPart(p, false)) {
        await checkRoom(adapter, w.topic, p.config, w.partition, w.batch);
        writes.push(native ? { ...w, dedup: native } : w);
      }
    }
    if (writes.length === 0 && states.length === 0) {
      return resultOf([], duplicates, settlements, parts); // nothing to write (all duplicates)
    }
    const done = await adapter.commitTransaction!({ writes, states });
    if (done === "conflict") {
      if (attempt >= 1000) {
        throw new MqError("CONFLICT", "the transaction's group state is too busy to commit");
      }
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(20, attempt + 1)));
      continue;
    }
    for (const s of settlements) s.m[SETTLED] = true;
    // What was stored: with native dedup, the records kept.
    const stored: PartitionWrite[] = writes.map((w, i) => {
      const kept = done.kept[i];
      if (!kept) return w;
      duplicates += w.batch.count - kept.length;
      return { topic: w.topic, partition: w.partition, batch: pickRecords(w.batch, kept) };
    });
    const firsts = done.firsts;
    const written = stored.flatMap((w, i) =>
      w.batch.count === 0 ? [] : [{
        topic: w.topic,
        partition: w.partition,
        first: firsts[i],
        count: w.batch.count,
      }]
    );
    await afterCommit(host, parts, stored, firsts);
    return resultOf(written, duplicates, settlements, parts);
  }
}

async function commitEffectivelyOnce(
  host: TransactionHost,
  outputs: Output[],
  settlements: Settlement[],
): Promise<TransactionResult> {
  const { adapter } = host;
  const origin = settlements[0]?.m;
  const idOf = origin
    ? (i: number) => `${origin.topic}:${origin.partition}:${origin.offset}:${i}`
    : undefined;
  const parts = await prepareParts(host, outputs, deadLettersOf(settlements, host.now()), idOf);
  const written: TransactionResult["written"] = [];
  let duplicates = 0;
  const writes: PartitionWrite[] = [];
  const firsts: number[] = [];
  // Every check before the first write.
  const planned = parts.map((part) => ({ part, writes: splitPart(part, true) }));
  for (const { part, writes } of planned) {
    for (const w of writes) await checkRoom(adapter, w.topic, part.config, w.partition, w.batch);
  }
  for (const { part, writes: ws } of planned) {
    for (const w of ws) {
      const window = part.config.dedupWindowMs;
      if (part.deduplicate && adapter.appendDeduplicated && window > 0) {
        const r = await adapter.appendDeduplicated(
          w.topic,
          w.partition,
          w.batch,
          window,
          host.now(),
        );
        duplicates += w.batch.count - r.kept.length;
        if (r.kept.length > 0) {
          const kept = pickRecords(w.batch, r.kept);
          writes.push({ ...w, batch: kept });
          firsts.push(r.first);
          written.push({
            topic: w.topic,
            partition: w.partition,
            first: r.first,
            count: kept.count,
          });
        }
      } else {
        const first = await adapter.append(w.topic, w.partition, w.batch);
        writes.push(w);
        firsts.push(first);
        written.push({ topic: w.topic, partition: w.partition, first, count: w.batch.count });
      }
    }
  }
  // Every publish is confirmed: now the settlements, by group.
  const byGroup = new Map<string, Settlement[]>();
  for (const s of settlements) {
    const k = JSON.stringify([s.m.topic, s.t.group]);
    let xs = byGroup.get(k);
    if (!xs) byGroup.set(k, xs = []);
    xs.push(s);
  }
  for (const xs of byGroup.values()) {
    const now = host.now();
    const init = () => xs[0].t.init() as GroupState;
    const lost = await updateGroup(adapter, xs[0].m.topic, xs[0].t.group, init, (state) => {
      // All of them or none: a lost lease leaves the state as it was.
      const before = structuredClone(state);
      for (const s of xs) {
        if (s.t.apply(state, changeOf(s, now)) > 0) {
          for (const k of Object.keys(state)) {
            delete (state as unknown as Record<string, unknown>)[k];
          }
          Object.assign(state, before);
          return s;
        }
      }
      return undefined;
    });
    if (lost) throw leaseLost(lost);
  }
  for (const s of settlements) s.m[SETTLED] = true;
  await afterCommit(host, parts, writes, firsts);
  return resultOf(written, duplicates, settlements, parts);
}

/** Notes delayed messages (for cancel) and trims to the topics' limits. */
async function afterCommit(
  host: TransactionHost,
  parts: TopicPart[],
  writes: PartitionWrite[],
  firsts: number[],
): Promise<void> {
  const { adapter } = host;
  const delayed = new Map<string, [string, number][]>();
  writes.forEach((w, i) => {
    if (!w.batch.meta) return;
    for (let j = 0; j < w.batch.count; j++) {
      const m = w.batch.meta[j];
      if (m?.deliverAt === undefined) continue;
      let xs = delayed.get(w.topic);
      if (!xs) delayed.set(w.topic, xs = []);
      xs.push([m.id ?? `${w.partition}-${firsts[i] + j}`, m.deliverAt]);
    }
  });
  for (const [topic, entries] of delayed) await recordDelayed(adapter, topic, entries, host.now());
  for (const part of parts) {
    if (!hasRetention(part.config)) continue;
    const ps = new Set(writes.filter((w) => w.topic === part.topic).map((w) => w.partition));
    for (const p of ps) await enforceRetention(adapter, part.topic, part.config, p, host.now());
  }
}

function resultOf(
  written: TransactionResult["written"],
  duplicates: number,
  settlements: Settlement[],
  parts: TopicPart[],
): TransactionResult {
  const deadTopics = new Set(parts.filter((p) => !p.deduplicate).map((p) => p.topic));
  let published = 0;
  for (const w of written) if (!deadTopics.has(w.topic)) published += w.count;
  const acked = settlements.filter((s) => s.kind === "ack").length;
  return { published, duplicates, acked, nacked: settlements.length - acked, written };
}
