/**
 * The append protocol of the kv backend. An append that fits one commit
 * (KV: 1,000 mutations, 800 KiB) writes its frames, the partition's new end
 * and its byte count in one commit checked on the head's versionstamp. A
 * larger one locks the head for its few commits (the end unchanged, so no
 * reader sees part of it) and sets the end with the last one; a lock left by
 * a crashed process expires after 10 s, when the next writer removes what it
 * wrote and voids its dedup entries. The heads this client last read or
 * wrote are cached in {@link KvAppender.heads}; atomic multi-partition
 * commits (`_commit.ts`) plan on the same frames and mutations.
 *
 * @module
 */
import type { DeduplicatedAppend } from "../../core/adapter.ts";
import { MqError } from "../../core/errors.ts";
import { pickRecords, type RecordBatch } from "../../core/record.ts";
import { ByteSink, encodeFrames, FRAME_PREFIX, frameBase } from "../_frame_codec.ts";
import { type DedupEntry, dedupValue, entriesOf, planDedup } from "./_dedup.ts";
import { type Head, headOf, type PartitionLock, partKey } from "./_heads.ts";
import { type KvCalls, sleep } from "./_kv_calls.ts";
import { CommitBudget, KV_VALUE_BYTES } from "./_limits.ts";
import { TRIM_STEP } from "./_trim.ts";

/** The largest frame body: a frame with its 8-byte prefix fills one KV value. */
const FRAME_BODY_MAX = KV_VALUE_BYTES - FRAME_PREFIX;
/** How long a partition lock of a multi-commit append lasts without renewal. */
const LOCK_MS = 10_000;
/** How long appends wait on a topic being removed (the removal deletes the heads when done). */
const DROP_LOCK_MS = 600_000;

/** One write to a KV key, planned before a commit. */
export interface Mutation {
  key: Deno.KvKey;
  value: unknown;
  bytes: number;
  options?: { expireIn: number };
}

/** One partition's share of a commit being planned. */
export interface PartitionPlan {
  topic: string;
  partition: number;
  head: Head;
  batch: RecordBatch;
  /** Frames in the sink: start and end of each, and its first offset. */
  frames: { from: number; to: number; offset: number }[];
  bytes: number;
}

/** Appends to partitions of one store; see the module doc. Calls are made one at a time by the adapter. */
export class KvAppender {
  readonly #kv: Deno.Kv;
  readonly #calls: KvCalls;
  #sink = new ByteSink(1 << 20);
  /** Heads as this client last read or wrote them. */
  readonly heads = new Map<string, Head>();

  constructor(kv: Deno.Kv, calls: KvCalls) {
    this.#kv = kv;
    this.#calls = calls;
  }

  /**
   * Appends to one partition (dropping ids seen within `dedup.windowMs`):
   * one commit checked on the head when it fits, else several under a lock.
   */
  async appendOne(
    topic: string,
    partition: number,
    batch: RecordBatch,
    dedup?: { windowMs: number; now: number },
  ): Promise<DeduplicatedAppend> {
    const headKey = ["head", topic, partition];
    for (let attempt = 0;; attempt++) {
      const head = await this.#head(topic, partition);
      if (head.lock) {
        await this.waitForLock(topic, partition, head);
        continue;
      }
      let kept: number[] | undefined;
      let records = batch;
      let entries: DedupEntry[] = [];
      const now = dedup?.now ?? Date.now();
      if (dedup) {
        const plan = await planDedup(this.#kv, this.#calls, { topic, partition, head }, batch, {
          now,
          windowMs: dedup.windowMs,
        });
        kept = plan.kept;
        if (kept.length === 0) return { first: -1, kept };
        if (kept.length < batch.count) records = pickRecords(batch, kept);
        entries = entriesOf(plan);
      }
      const plan = this.encode([{ topic, partition, head, batch: records }])[0];
      const windowMs = dedup?.windowMs ?? 0;
      const mutations = this.mutations(plan, entries, now, windowMs);
      const budget = new CommitBudget();
      let fits = true;
      for (const m of mutations) {
        if (!budget.fits(m.key, m.bytes)) {
          fits = false;
          break;
        }
        budget.add(m.key, m.bytes);
      }
      const keptOf = () => kept ?? Array.from({ length: batch.count }, (_, i) => i);
      if (fits) {
        const end = head.end + records.count;
        const res = await this.#calls.run("append", () => {
          const op = this.#kv.atomic().check({ key: headKey, versionstamp: head.versionstamp });
          for (const m of mutations) op.set(m.key, m.value, m.options);
          op.set(headKey, BigInt(end));
          op.sum(["bytes", topic, partition], BigInt(plan.bytes));
          return op.commit();
        });
        if (res.ok) {
          this.heads.set(partKey(topic, partition), { end, versionstamp: res.versionstamp });
          return { first: head.end, kept: keptOf() };
        }
      } else {
        const first = await this.#appendLocked(plan, mutations, windowMs);
        if (first !== undefined) return { first, kept: keptOf() };
      }
      // Another writer moved the head: read it again.
      this.heads.delete(partKey(topic, partition));
      if (attempt > 0) await sleep(Math.random() * Math.min(20, attempt));
      if (attempt > 100_000) {
        throw new MqError("CONFLICT", `too many concurrent publishers on "${topic}"`);
      }
    }
  }

  /** The mutations of a partition's frames (and dedup entries), in order. */
  mutations(
    plan: PartitionPlan,
    entries: DedupEntry[],
    now: number,
    windowMs: number,
    token?: string,
  ): Mutation[] {
    const { topic, partition } = plan;
    const out: Mutation[] = [];
    const bytes = this.#sink.bytes;
    for (const f of plan.frames) {
      out.push({
        key: ["log", topic, partition, f.offset],
        value: bytes.subarray(f.from, f.to),
        bytes: f.to - f.from,
      });
    }
    for (const e of entries) {
      const value = dedupValue(now + windowMs, plan.head.end + e.index, token);
      out.push({
        key: ["dedup", topic, partition, e.id],
        value,
        bytes: value.length,
        options: { expireIn: windowMs + 60_000 },
      });
    }
    return out;
  }

  /**
   * Writes a plan that needs several commits: the first locks the head (its
   * end unchanged), each renews the lock, the last sets the end. Resolves to
   * the first offset, or undefined when the head was taken meanwhile (nothing
   * of this append is then visible; the caller starts again).
   */
  async #appendLocked(
    plan: PartitionPlan,
    mutations: Mutation[],
    windowMs: number,
  ): Promise<number | undefined> {
    const { topic, partition, head } = plan;
    const headKey = ["head", topic, partition];
    const owner = crypto.randomUUID();
    const lock = (): PartitionLock => ({
      end: head.end,
      owner,
      until: Date.now() + LOCK_MS,
      dedupWindowMs: windowMs,
    });
    // Dedup entries written under a lock carry its owner, so that a crash
    // (the owner marked aborted by the next writer) voids them.
    if (windowMs > 0) {
      for (const m of mutations) {
        if (m.key[0] === "dedup") {
          const v = m.value as Uint8Array;
          m.value = dedupValue(
            new DataView(v.buffer, v.byteOffset).getFloat64(0, true),
            new DataView(v.buffer, v.byteOffset).getFloat64(8, true),
            owner,
          );
          m.bytes = (m.value as Uint8Array).length;
        }
      }
    }
    const commits: Mutation[][] = [];
    let budget = new CommitBudget();
    for (const m of mutations) {
      if (!budget.fits(m.key, m.bytes) && !budget.empty) {
        commits.push([]);
        budget = new CommitBudget();
      }
      if (commits.length === 0) commits.push([]);
      commits[commits.length - 1].push(m);
      budget.add(m.key, m.bytes);
    }
    let versionstamp = head.versionstamp;
    const end = head.end + plan.batch.count;
    let locked = false;
    try {
      for (let k = 0; k < commits.length; k++) {
        const last = k === commits.length - 1;
        const expected = versionstamp;
        const res = await this.#calls.run("append", () => {
          const op = this.#kv.atomic().check({ key: headKey, versionstamp: expected });
          for (const m of commits[k]) op.set(m.key, m.value, m.options);
          if (last) {
            op.set(headKey, BigInt(end));
            op.sum(["bytes", topic, partition], BigInt(plan.bytes));
          } else op.set(headKey, lock());
          return op.commit();
        });
        if (!res.ok) {
          // Taken over (this append was too slow) or moved before the first commit.
          this.heads.delete(partKey(topic, partition));
          return undefined;
        }
        locked = !last;
        versionstamp = res.versionstamp;
      }
      this.heads.set(partKey(topic, partition), { end, versionstamp });
      return head.end;
    } catch (e) {
      if (locked) {
        await this.#clearLock(topic, partition, { ...lock(), until: 0 }, versionstamp!)
          .catch(() => {});
      }
      throw e;
    }
  }

  /**
   * Holds every head of `topic` for its removal: a lock that appends wait on
   * (for up to {@link DROP_LOCK_MS}) instead of writing into the log being
   * deleted; once the caller deletes the heads, they start a new log at 0.
   * A head held by a multi-commit append is taken from it (its later commits
   * fail on the changed head, and what it wrote goes with the log).
   */
  async holdForDrop(topic: string): Promise<void> {
    const owner = `drop:${crypto.randomUUID()}`;
    for (let round = 0;; round++) {
      const heads = await this.#calls.run("remove a topic", async () => {
        const out: Deno.KvEntry<unknown>[] = [];
        for await (const e of this.#kv.list({ prefix: ["head", topic] })) out.push(e);
        return out;
      });
      let again = false;
      for (const e of heads) {
        const head = headOf(e);
        if (head.lock?.owner === owner) continue;
        const lock: PartitionLock = {
          end: head.end,
          owner,
          until: Date.now() + DROP_LOCK_MS,
          dedupWindowMs: head.lock?.dedupWindowMs ?? 0,
        };
        const res = await this.#calls.run(
          "remove a topic",
          () =>
            this.#kv.atomic().check({ key: e.key, versionstamp: e.versionstamp }).set(e.key, lock)
              .commit(),
        );
        if (!res.ok) again = true;
      }
      if (!again) return;
      await sleep(Math.random() * Math.min(20, round + 1));
    }
  }

  /** Waits while another writer's lock is live; takes over and clears it once expired. */
  async waitForLock(topic: string, partition: number, head: Head): Promise<void> {
    this.heads.delete(partKey(topic, partition));
    const lock = head.lock!;
    const left = lock.until - Date.now();
    if (left > 0) {
      await sleep(Math.min(left, 5 + Math.random() * 20));
      return;
    }
    const mine: PartitionLock = {
      ...lock,
      owner: crypto.randomUUID(),
      until: Date.now() + LOCK_MS,
    };
    const headKey = ["head", topic, partition];
    const res = await this.#calls.run(
      "append",
      () =>
        this.#kv.atomic().check({ key: headKey, versionstamp: head.versionstamp }).set(
          headKey,
          mine,
        )
          .commit(),
    );
    if (!res.ok) return; // someone else took it
    await this.#clearLock(topic, partition, lock, res.versionstamp);
  }

  /**
   * With the head held at `versionstamp`: voids the dedup entries of the
   * interrupted append `lock`, deletes the values it left past the end, and
   * releases the head.
   */
  async #clearLock(
    topic: string,
    partition: number,
    lock: PartitionLock,
    versionstamp: string,
  ): Promise<void> {
    const headKey = ["head", topic, partition];
    const prefix = ["log", topic, partition];
    for (;;) {
      const left = await this.#calls.run("clear a partition lock", async () => {
        const keys: Deno.KvKey[] = [];
        for await (
          const e of this.#kv.list({ start: [...prefix, lock.end], end: [...prefix, Infinity] }, {
            limit: TRIM_STEP,
            batchSize: TRIM_STEP,
          })
        ) keys.push(e.key);
        return keys;
      });
      const last = left.length < TRIM_STEP;
      const res = await this.#calls.run("clear a partition lock", () => {
        const op = this.#kv.atomic().check({ key: headKey, versionstamp });
        for (const k of left) op.delete(k);
        if (last) {
          if (lock.dedupWindowMs > 0) {
            op.set(["aborted", topic, partition, lock.owner], true, {
              expireIn: lock.dedupWindowMs + 60_000,
            });
          }
          op.set(headKey, BigInt(lock.end));
        }
        return op.commit();
      });
      if (!res.ok || last) return;
    }
  }

  /** Encodes each plan's records into the sink as frames of one value each. */
  encode(
    plans: { topic: string; partition: number; head: Head; batch: RecordBatch }[],
  ): PartitionPlan[] {
    let sink = this.#sink;
    if (sink.bytes.length > 8 << 20) sink = this.#sink = new ByteSink(1 << 20);
    sink.length = 0;
    const out: PartitionPlan[] = [];
    for (const p of plans) {
      const start = sink.length;
      const ends = encodeFrames(p.batch, p.head.end, sink, FRAME_BODY_MAX);
      const frames: PartitionPlan["frames"] = [];
      let from = start;
      for (const to of ends) {
        frames.push({ from, to, offset: frameBase(sink.view, from) });
        from = to;
      }
      out.push({ ...p, frames, bytes: sink.length - start });
    }
    return out;
  }

  /** The head of a partition: this client's own last write, else read. */
  async #head(topic: string, partition: number): Promise<Head> {
    const cached = this.heads.get(partKey(topic, partition));
    if (cached) return cached;
    const e = await this.#calls.run(
      "read a partition head",
      () => this.#kv.get(["head", topic, partition]),
    );
    return headOf(e);
  }
}
