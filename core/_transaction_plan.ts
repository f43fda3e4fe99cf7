/**
 * A transaction's plan: its outputs (and the dead letters of its last-attempt
 * nacks) grouped by topic, every record checked before anything is written,
 * then split per partition.
 *
 * @module
 */
import type { PartitionWrite } from "./adapter.ts";
import { deadLetterMeta } from "./dead_letter.ts";
import { MqError } from "./errors.ts";
import { partitionOf } from "./_partitioner.ts";
import { batchOf, pickRecords, type RecordBatch, type RecordMeta } from "./record.ts";
import { makeTopicConfig, type TopicConfig } from "./topic_config.ts";
import type { Output, Settlement, TransactionHost } from "./_transaction_types.ts";

/** Publishes of one topic, as a batch, and which output each record is. */
export interface TopicPart {
  topic: string;
  config: TopicConfig;
  batch: RecordBatch;
  /** Per record: the partition asked for (else undefined). */
  partitions: (number | undefined)[];
  deduplicate: boolean;
}

/** Groups outputs (and dead letters) by topic and checks every record before anything is written. */
export async function prepareParts(
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
export function splitPart(part: TopicPart, byId: boolean): PartitionWrite[] {
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
export function deadLettersOf(
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
