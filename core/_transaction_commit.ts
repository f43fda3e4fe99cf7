/**
 * A transaction's commit: in one {@link StorageAdapter.commitTransaction} on
 * an atomic backend (retried on a conflicting writer), else publishes first
 * and settlements once every publish is confirmed; then the delayed index
 * and retention.
 *
 * @module
 */
import type { PartitionWrite, StateWrite, StorageAdapter, TransactionWrite } from "./adapter.ts";
import { systemClock } from "./clock.ts";
import { MqError } from "./errors.ts";
import { pickRecords } from "./record.ts";
import { SETTLED } from "./message.ts";
import { groupKey, type GroupState, parseGroup, updateGroup } from "./_group_store.ts";
import { planReservations } from "./_dedup.ts";
import { checkRoom, enforceRetention, hasRetention } from "./_retention.ts";
import { recordDelayed } from "./_delayed_index.ts";
import { deadLettersOf, prepareParts, splitPart, type TopicPart } from "./_transaction_plan.ts";
import type {
  Output,
  Settlement,
  TransactionHost,
  TransactionResult,
} from "./_transaction_types.ts";

const enc = new TextEncoder();

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

export async function commitAtomic(
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
          const plan = await planReservations(
            adapter,
            part.topic,
            part.batch,
            window,
            now,
            part.config.partitions,
          );
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
      await (host.clock ?? systemClock).sleep(Math.random() * Math.min(20, attempt + 1));
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

export async function commitEffectivelyOnce(
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
    }, { clock: host.clock });
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
