/**
 * A member of a group: claims leased batches, and settles them (ack, retry
 * with backoff, dead letter, expiry, delay) in the same compare-and-set that
 * claims the next batch, so a batch costs one state write.
 *
 * @module
 */
import type { LogReader, PartitionBounds, StorageAdapter } from "./adapter.ts";
import { ReceivedMessage, SETTLED, type Settler, type Transferred } from "./message.ts";
import {
  type Claim,
  claim,
  extend as extendLease,
  hasPendingWork,
  newCursor,
  nextDue,
  type PartitionCursor,
  type Range,
  release,
  settle,
  toRanges,
} from "./_lease_table.ts";
import { type GroupState, loadGroup, updateGroup } from "./_group_store.ts";
import { resolveStart } from "./start_position.ts";
import type { RecordMeta, StoredRecord } from "./record.ts";
import { backoffDelay, DEFAULT_BACKOFF } from "./retry.ts";
import { deadLetterMeta, deadLetterTopic } from "./dead_letter.ts";
import { loadCancelled } from "./_delayed_index.ts";
import type { BatchSource, SubscribeOptions, SubscriptionContext } from "./types.ts";
import type { TopicConfig } from "./topic_config.ts";
import { retainedSince } from "./_retention.ts";
import { readOne } from "./_receipts.ts";
import { waitAny } from "./_wait.ts";
import { MqError } from "./errors.ts";

/** A settlement to apply at the next state update. */
interface Op {
  partition: number;
  offset: number;
  /** End (exclusive) of a run of offsets settled alike; default `offset + 1`. */
  to?: number;
  token: string;
  /** `expiredDead`: expired and moved to the dead-letter topic (counted as both). */
  kind: "ack" | "retry" | "release" | "dead" | "expired" | "expiredDead" | "corrupt";
  notBefore?: number;
  failedAt?: number;
}

/** A message to move to the dead-letter topic before it is settled. */
interface DeadLetter {
  partition: number;
  record: StoredRecord;
  token: string;
  reason: string;
  attempts: number;
  firstFailure?: number;
  /** When the last attempt failed (or the message was found expired). */
  lastFailure: number;
  kind: "dead" | "expiredDead";
  stderr?: string;
}

let consumerSeq = 0;

/** Marks an offset the log could not give in a preread (ordered consumption). */
const UNREADABLE = { offset: -1 } as unknown as StoredRecord;

/** A consumer's state updates: the topic must still exist (see `updateGroup`). */
const REQUIRE_TOPIC = { requireTopic: true } as const;

/** How long closing waits for a claim in flight (ms). */
const CLOSE_WAIT_MS = 10_000;

/** The group side of a subscription. */
export class GroupSource implements BatchSource, Settler {
  #ctx: SubscriptionContext;
  #group: string;
  #options: SubscribeOptions;
  #visibility: number;
  #consumer = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}${consumerSeq++}`;
  #claims = 0;
  #ops: Op[] = [];
  #dead: DeadLetter[] = [];
  /**
   * The batches delivered, in order, while any of their messages is not
   * settled (a message's own flag says which): one push per batch, none per
   * message.
   */
  #outstanding: ReceivedMessage[][] = [];
  /** When a delivery of a message first failed (ms), where one did. */
  #firstFailures = new WeakMap<ReceivedMessage, number>();
  /** Ends the wait of a claim in progress (set while it waits). */
  #wakeWaiting: (() => void) | undefined;
  #readers: ({ reader: LogReader; pos: number } | undefined)[] = [];
  #turn = 0;
  #blocked = 0;
  #init: (() => GroupState) | undefined;
  /** Unreadable offsets the last ordered claim settled (then it claims again). */
  #passedUnreadable = 0;
  /** Set once the topic was found removed: nothing more is written. */
  #gone = false;

  #noteGone(e: unknown): void {
    if (MqError.is(e, "TOPIC_NOT_FOUND")) {
      this.#gone = true;
      this.#ops = [];
      this.#dead = [];
    }
  }

  constructor(ctx: SubscriptionContext, group: string, options: SubscribeOptions) {
    this.#ctx = ctx;
    this.#group = group;
    this.#options = options;
    this.#visibility = options.visibilityMs ?? 30_000;
  }

  /**
   * Marks a delivery of this consumer settled; false when it was already (or
   * is not ours). A claim waiting meanwhile is woken to apply it.
   */
  #take(m: ReceivedMessage): boolean {
    if (m[SETTLED] || m.token === undefined || !m.token.startsWith(`${this.#consumer}.`)) {
      return false;
    }
    m[SETTLED] = true;
    this.#wakeWaiting?.();
    return true;
  }

  /** The deliveries not settled yet. */
  *#allHeld(): Generator<ReceivedMessage> {
    for (const batch of this.#outstanding) for (const m of batch) if (!m[SETTLED]) yield m;
  }

  /** Forgets the batches whose messages are all settled. */
  #compact(): void {
    if (this.#outstanding.length > 0) {
      this.#outstanding = this.#outstanding.filter((b) => b.some((m) => !m[SETTLED]));
    }
  }

  /** Acks a batch: runs of consecutive offsets become one settlement each. */
  ackAll(messages: ReceivedMessage[]): void {
    let run: Op | undefined;
    for (const m of messages) {
      if (!this.#take(m)) continue;
      const offset = m.record.offset;
      if (run && run.partition === m.partition && run.token === m.token && run.to === offset) {
        run.to++;
        continue;
      }
      run = {
        partition: m.partition,
        offset,
        to: offset + 1,
        token: m.token!,
        kind: "ack",
      };
      this.#ops.push(run);
    }
  }

  ack(m: ReceivedMessage): void {
    if (this.#take(m)) {
      this.#ops.push({ partition: m.partition, offset: m.offset, token: m.token!, kind: "ack" });
    }
  }

  /** Takes a delivery over for a transaction (see {@link Settler.transfer}). */
  transfer(m: ReceivedMessage): Transferred | undefined {
    if (!this.#init || !this.#take(m)) return undefined;
    const init = this.#init;
    return {
      group: this.#group,
      maxAttempts: this.#maxAttempts ?? 5,
      deadTopic: this.#deadTopic,
      firstFailure: this.#firstFailures.get(m),
      retryDelay: () => backoffDelay(m.attempt, this.#options.backoff ?? DEFAULT_BACKOFF),
      init,
      apply: (state, s) =>
        this.#apply(state as GroupState, [{
          partition: m.partition,
          offset: m.offset,
          token: m.token!,
          kind: s.kind,
          notBefore: s.notBefore,
          failedAt: s.failedAt,
        }]),
      restore: () => {
        m[SETTLED] = false;
      },
    };
  }

  nack(m: ReceivedMessage, delayMs: number | undefined, reason?: string, stderr?: string): void {
    if (!this.#take(m)) return;
    const now = this.#ctx.now();
    const max = this.#maxAttempts;
    if (max !== undefined && m.attempt >= max) {
      this.#dead.push({
        partition: m.partition,
        record: m.record,
        token: m.token!,
        reason: reason ?? "nacked",
        attempts: m.attempt,
        firstFailure: this.#firstFailures.get(m) ?? now,
        lastFailure: now,
        kind: "dead",
        stderr,
      });
      return;
    }
    const delay = delayMs ?? backoffDelay(m.attempt, this.#options.backoff ?? DEFAULT_BACKOFF);
    this.#ops.push({
      partition: m.partition,
      offset: m.offset,
      token: m.token!,
      kind: "retry",
      notBefore: now + delay,
      failedAt: now,
    });
  }

  #maxAttempts: number | undefined;
  #deadTopic = "";
  #deadLetterExpired = false;
  #retentionAgeMs: number | undefined;

  async #prepare(): Promise<() => GroupState> {
    if (this.#init) return this.#init;
    const { adapter, topic, now } = this.#ctx;
    const config = await this.#ctx.config();
    this.#maxAttempts = this.#options.maxAttempts ?? config?.maxAttempts ?? 5;
    this.#deadTopic = deadLetterTopic(topic, config?.dlq);
    this.#deadLetterExpired = config?.deadLetterExpired ?? false;
    this.#retentionAgeMs = config?.retentionAgeMs;
    const partitions = await this.#ctx.partitions();
    const state: GroupState = { partitions: {} };
    for (let p = 0; p < partitions; p++) {
      const at = await resolveStart(adapter, topic, p, this.#options.from ?? "beginning", now());
      state.partitions[p] = newCursor(at);
    }
    this.#init = () => structuredClone(state);
    return this.#init;
  }

  /** Publishes pending dead letters, then queues their settlement. */
  async #flushDeadLetters(): Promise<void> {
    if (this.#dead.length === 0) return;
    const dead = this.#dead;
    this.#dead = [];
    await this.#ctx.publishDeadLetters(
      this.#deadTopic,
      dead.map((d) => ({
        payload: d.record.payload,
        meta: deadLetterMeta(this.#ctx.topic, d.partition, d.record, {
          reason: d.reason,
          attempts: d.attempts,
          firstFailure: d.firstFailure,
          lastFailure: d.lastFailure,
          stderr: d.stderr,
        }),
      })),
    );
    for (const d of dead) {
      this.#ops.push({
        partition: d.partition,
        offset: d.record.offset,
        token: d.token,
        kind: d.kind,
      });
    }
  }

  /** Applies settlements to a state; returns how many offsets were not held (stale). */
  #apply(state: GroupState, ops: Op[]): number {
    let stale = 0;
    // Group ops of equal partition, token, kind and time (runs are the rule).
    const groups: Op[][] = [];
    let cur: Op[] | undefined;
    for (const op of ops) {
      const p = cur?.[0];
      if (
        !p || p.partition !== op.partition || p.token !== op.token || p.kind !== op.kind ||
        p.notBefore !== op.notBefore
      ) {
        groups.push(cur = []);
      }
      cur!.push(op);
    }
    for (const xs of groups) {
      const { partition, token, kind, notBefore, failedAt } = xs[0];
      const cursor: PartitionCursor = state.partitions[partition] ??= newCursor(0);
      const ranges = toRangesOf(xs);
      const n = ranges.reduce((sum, r) => sum + r.to - r.from, 0);
      if (kind === "retry") stale += release(cursor, token, ranges, notBefore!, failedAt);
      else if (kind === "release") stale += release(cursor, token, ranges, notBefore ?? 0);
      else {
        stale += settle(cursor, token, ranges);
        if (state.keyLocks) {
          releaseKeyLocks(
            state.keyLocks,
            partition,
            ranges.flatMap((r) => Array.from({ length: r.to - r.from }, (_, i) => r.from + i)),
          );
        }
        if (kind === "dead" || kind === "expiredDead") {
          state.deadLettered = (state.deadLettered ?? 0) + n;
        }
        if (kind === "expired" || kind === "expiredDead") state.expired = (state.expired ?? 0) + n;
        if (kind === "corrupt") state.corrupt = (state.corrupt ?? 0) + n;
      }
    }
    return stale;
  }

  /**
   * Until the topic exists: a drain (`follow: false`) ends at once and a
   * follower waits, both writing no group state (a consumer of a topic that
   * does not exist leaves nothing behind).
   */
  async #awaitTopic(signal: AbortSignal): Promise<boolean> {
    if (this.#init) return true;
    const { adapter, topic } = this.#ctx;
    while (!signal.aborted) {
      if (await adapter.getState(["topics", topic])) return true;
      if (this.#options.follow === false) return false;
      await waitAny(adapter, topic, [0], signal, 500);
    }
    return false;
  }

  /**
   * The batch being claimed: it carries the settlements queued before it
   * (they go with its state update), so closing waits for it.
   */
  #claiming: Promise<unknown> | undefined;

  next(max: number, signal: AbortSignal): Promise<ReceivedMessage[] | null> {
    const p = this.#nextBatch(max, signal);
    this.#claiming = p;
    return p.finally(() => {
      if (this.#claiming === p) this.#claiming = undefined;
    });
  }

  async #nextBatch(max: number, signal: AbortSignal): Promise<ReceivedMessage[] | null> {
    const { adapter, topic, now } = this.#ctx;
    this.#compact();
    if (this.#gone || !(await this.#awaitTopic(signal))) return null;
    const init = await this.#prepare();
    const partitions = await this.#ctx.partitions();
    while (!signal.aborted) {
      await this.#flushDeadLetters();
      const bounds = await Promise.all(
        Array.from({ length: partitions }, (_, p) => adapter.bounds(topic, p)),
      );
      const ops = this.#ops;
      this.#ops = [];
      const token = `${this.#consumer}.${this.#claims++}`;
      const t = now();
      let due = Infinity;
      let pendingRetries = false;
      // Ordered: read what a claim would take first, so that claiming and
      // locking keys happen in one compare-and-set.
      let preread: Map<string, StoredRecord> | undefined;
      let claimed: { partition: number; claims: Claim[] }[];
      try {
        preread = this.#options.ordered ? await this.#preread(init, bounds, max, t) : undefined;
        claimed = await this.#claimAndApply(ops, init, bounds, max, t, token, preread, (d, p) => {
          due = d;
          pendingRetries = p;
        });
      } catch (e) {
        // Not written: the settlements wait for the next write.
        this.#ops = ops.concat(this.#ops);
        this.#noteGone(e);
        throw e;
      }
      this.#turn++;
      if (claimed.length === 0 && this.#passedUnreadable > 0) {
        // Everything claimed was unreadable and is settled now: claim on.
        this.#passedUnreadable = 0;
        continue;
      }
      if (claimed.length === 0 && this.#blocked > 0 && this.#ops.length > 0) {
        // Held back behind keys whose settlement is queued here: apply it soon.
        this.#blocked = 0;
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      if (claimed.length > 0) {
        const messages = await this.#deliverable(claimed, token, t, preread);
        if (messages.length > 0) return messages;
        continue; // everything claimed was settled otherwise: apply that, claim again
      }
      if (
        this.#options.follow === false &&
        (!pendingRetries || this.#options.awaitInFlight === false)
      ) return null;
      // Messages held back behind their key: give their holders time to settle.
      const floor = this.#blocked > 0 ? 25 : 5;
      this.#blocked = 0;
      // Draining (-e) while others hold leases: look again soon, their acks append nothing.
      const cap = this.#options.follow === false ? 200 : 1000;
      const waitMs = Math.max(floor, Math.min(cap, due - now()));
      // Settled here meanwhile: apply that first, it may end a drain.
      if (this.#ops.length > 0 || this.#dead.length > 0) continue;
      // Also wake when this consumer settles something: its own acks and
      // nacks may end a drain or free a key at once.
      const wait = new AbortController();
      const onStop = () => wait.abort();
      signal.addEventListener("abort", onStop, { once: true });
      this.#wakeWaiting = () => wait.abort();
      try {
        await waitAny(adapter, topic, bounds.map((b) => b.end), wait.signal, waitMs);
      } finally {
        this.#wakeWaiting = undefined;
        signal.removeEventListener("abort", onStop);
      }
    }
    return null;
  }

  /**
   * In one state update: applies the queued settlements `ops` and claims up to
   * `max` offsets (ordered: at most one per key in flight). Reports when
   * something next falls due and whether work is pending anywhere.
   */
  #claimAndApply(
    ops: Op[],
    init: () => GroupState,
    bounds: PartitionBounds[],
    max: number,
    t: number,
    token: string,
    preread: Map<string, StoredRecord> | undefined,
    report: (due: number, pendingRetries: boolean) => void,
  ): Promise<{ partition: number; claims: Claim[] }[]> {
    const { adapter, topic } = this.#ctx;
    const partitions = bounds.length;
    return updateGroup(adapter, topic, this.#group, init, (state) => {
      // The update may run again (a concurrent write won): start afresh.
      this.#blocked = 0;
      this.#passedUnreadable = 0;
      this.#apply(state, ops);
      if (preread) return this.#claimOrdered(state, bounds, max, t, token, preread, report);
      const out: { partition: number; claims: Claim[] }[] = [];
      let left = max;
      let due = Infinity;
      let pendingRetries = false;
      for (let i = 0; i < partitions; i++) {
        const p = (this.#turn + i) % partitions;
        const cursor = state.partitions[p] ??= newCursor(bounds[p].start);
        if (left > 0) {
          const claims = claim(cursor, bounds[p], left, t, t + this.#visibility, token);
          for (const c of claims) left -= c.to - c.from;
          if (claims.length > 0) out.push({ partition: p, claims });
        }
        due = Math.min(due, nextDue(cursor));
        // A draining consumer (-e) waits for failed attempts still to retry
        // and for deliveries in flight anywhere (they may come back); not for
        // delayed messages that were never delivered.
        if (hasPendingWork(cursor) || cursor.leases.length > 0) pendingRetries = true;
      }
      report(due, pendingRetries);
      return out;
    }, REQUIRE_TOPIC);
  }

  /** Reads claimed records and sorts out those not to deliver now. */
  async #deliverable(
    claimed: { partition: number; claims: Claim[] }[],
    token: string,
    now: number,
    preread?: Map<string, StoredRecord>,
  ): Promise<ReceivedMessage[]> {
    const { topic } = this.#ctx;
    const messages: ReceivedMessage[] = [];
    let cancelled: Set<string> | undefined;
    const since = this.#retentionAgeMs === undefined ? undefined : now - this.#retentionAgeMs;
    for (const { partition, claims } of claimed) {
      for (const c of claims) {
        const records = preread
          ? collect(preread, partition, c.from, c.to)
          : await this.#readRange(partition, c.from, c.to);
        if (!preread) await this.#settleUnreadable(partition, c.from, records, token);
        // A settlement of record `r` (made only for the few not delivered).
        const op = (r: StoredRecord, kind: Op["kind"], notBefore?: number): Op => ({
          partition,
          offset: r.offset,
          token,
          kind,
          notBefore,
        });
        for (const r of records) {
          if (since !== undefined && r.timestamp < since) {
            // Older than the topic's retention age: gone, as if trimmed.
            this.#ops.push(op(r, "ack"));
            continue;
          }
          if (r.expiresAt !== undefined && r.expiresAt <= now) {
            if (this.#deadLetterExpired) {
              this.#dead.push({
                partition,
                record: r,
                token,
                reason: "expired (ttl)",
                attempts: c.attempt - 1,
                firstFailure: c.firstFailure,
                lastFailure: now,
                kind: "expiredDead",
              });
            } else this.#ops.push(op(r, "expired"));
            continue;
          }
          if (r.deliverAt !== undefined) {
            if (r.deliverAt > now) {
              this.#ops.push(op(r, "release", r.deliverAt));
              continue;
            }
            cancelled ??= await loadCancelled(this.#ctx.adapter, topic);
            if (cancelled.has(r.id ?? `${partition}-${r.offset}`)) {
              this.#ops.push(op(r, "ack"));
              continue;
            }
          }
          if (this.#maxAttempts !== undefined && c.attempt > this.#maxAttempts) {
            this.#dead.push({
              partition,
              record: r,
              token,
              reason: "lease expired (visibility timeout) on the last attempt",
              attempts: c.attempt - 1,
              firstFailure: c.firstFailure,
              lastFailure: now,
              kind: "dead",
            });
            continue;
          }
          const m = new ReceivedMessage(topic, partition, r, c.attempt, token, this, this.#group);
          if (c.firstFailure !== undefined) this.#firstFailures.set(m, c.firstFailure);
          messages.push(m);
        }
      }
    }
    if (messages.length > 0) this.#outstanding.push(messages);
    return messages;
  }

  /** The records a claim on the current state would take (for ordered consumption). */
  async #preread(
    init: () => GroupState,
    bounds: PartitionBounds[],
    max: number,
    now: number,
  ): Promise<Map<string, StoredRecord>> {
    const { adapter, topic } = this.#ctx;
    const state = (await loadGroup(adapter, topic, this.#group)) ?? init();
    const out = new Map<string, StoredRecord>();
    for (let p = 0; p < bounds.length; p++) {
      const cursor = structuredClone(state.partitions[p] ?? newCursor(bounds[p].start));
      for (const c of claim(cursor, bounds[p], max, now, now + 1, "preread")) {
        const records = await this.#readRange(p, c.from, c.to);
        for (const r of records) out.set(`${p}:${r.offset}`, r);
        // Offsets the log cannot give: settled by the claim (see #claimOrdered).
        let i = 0;
        for (let o = c.from; o < this.#reach; o++) {
          if (i < records.length && records[i].offset === o) i++;
          else out.set(`${p}:${o}`, UNREADABLE);
        }
      }
    }
    return out;
  }

  /**
   * Claims as {@link claim} does, then keeps at most one message per key in
   * flight: a message whose key is held by an earlier one goes back (without
   * counting an attempt), and the key is locked for the one delivered.
   */
  #claimOrdered(
    state: GroupState,
    bounds: PartitionBounds[],
    max: number,
    now: number,
    token: string,
    preread: Map<string, StoredRecord>,
    report: (due: number, pendingRetries: boolean) => void,
  ): { partition: number; claims: Claim[] }[] {
    const locks = state.keyLocks ??= {};
    const out: { partition: number; claims: Claim[] }[] = [];
    let due = Infinity, pendingRetries = false;
    let left = max;
    for (let p = 0; p < bounds.length; p++) {
      const cursor = state.partitions[p] ??= newCursor(bounds[p].start);
      dropSettledLocks(locks, p, cursor);
      const claims = left > 0
        ? claim(cursor, bounds[p], left, now, now + this.#visibility, token)
        : [];
      const kept: Claim[] = [];
      const back: number[] = [];
      for (const c of claims) {
        for (let o = c.from; o < c.to; o++) {
          const r = preread.get(`${p}:${o}`);
          if (r === UNREADABLE) {
            // Corrupt in storage: settled now, so that the group moves on.
            settle(cursor, token, [{ from: o, to: o + 1 }]);
            state.corrupt = (state.corrupt ?? 0) + 1;
            this.#passedUnreadable++;
            continue;
          }
          const lockKey = r?.key === undefined ? undefined : `${p}:${r.key}`;
          const holder = lockKey === undefined ? undefined : locks[lockKey];
          if (!r || (holder !== undefined && holder !== o)) {
            back.push(o); // not read ahead, or its key is busy: later
            continue;
          }
          if (lockKey !== undefined && (r.deliverAt ?? 0) <= now) locks[lockKey] = o;
          kept.push({ from: o, to: o + 1, attempt: c.attempt, firstFailure: c.firstFailure });
          left--;
        }
      }
      // Held-back messages are due at once, so that they come before newer
      // ones of their key (claims take due retries first, in offset order).
      if (back.length > 0) release(cursor, token, toRanges(back), now, undefined, true);
      this.#blocked += back.length;
      if (kept.length > 0) out.push({ partition: p, claims: kept });
      due = Math.min(due, nextDue(cursor));
      if (hasPendingWork(cursor) || cursor.leases.length > 0) pendingRetries = true;
    }
    report(due, pendingRetries);
    return out;
  }

  /**
   * The records of `[from, to)` the log holds. Also sets {@link #reach}: how
   * far the reader got, past offsets it skipped as unreadable.
   */
  async #readRange(partition: number, from: number, to: number): Promise<StoredRecord[]> {
    try {
      return await this.#readRangeOf(partition, from, to);
    } catch (e) {
      // A log that went under the reader (its file or keys deleted) is a
      // removed topic when the settings went first, as `topics rm` does.
      if (MqError.is(e) || (await this.#ctx.adapter.getState(["topics", this.#ctx.topic]))) throw e;
      const gone = new MqError("TOPIC_NOT_FOUND", `topic "${this.#ctx.topic}" was removed`, {
        cause: e,
      });
      this.#readers[partition] = undefined;
      this.#noteGone(gone);
      throw gone;
    }
  }

  async #readRangeOf(partition: number, from: number, to: number): Promise<StoredRecord[]> {
    const { adapter, topic } = this.#ctx;
    let r = this.#readers[partition];
    if (!r || r.pos !== from) {
      r?.reader.close();
      r = { reader: await adapter.openReader(topic, partition, from), pos: from };
      this.#readers[partition] = r;
    }
    const out: StoredRecord[] = [];
    this.#reach = from;
    while (r.pos < to) {
      const got = await r.reader.read(to - r.pos);
      if (got.length === 0) {
        // Nothing more: the reader may have passed offsets it cannot read.
        this.#reach = Math.max(this.#reach, Math.min(to, r.reader.position?.() ?? from));
        break;
      }
      for (const rec of got) {
        if (rec.offset >= from && rec.offset < to) out.push(rec);
      }
      const last = got[got.length - 1].offset + 1;
      this.#reach = Math.min(to, Math.max(this.#reach, last));
      if (last > to) {
        r.reader.close();
        this.#readers[partition] = undefined;
        break;
      }
      r.pos = last;
    }
    return out;
  }

  /** How far the last {@link #readRange} got (see there). */
  #reach = 0;

  /**
   * Settles the offsets of `[from, #reach)` that `records` lack: the log
   * cannot give them (corrupt, or trimmed meanwhile), and a group that waited
   * for them would wait for ever. Reported through the corruption listener.
   */
  async #settleUnreadable(
    partition: number,
    from: number,
    records: StoredRecord[],
    token: string,
  ): Promise<void> {
    const reach = this.#reach;
    if (reach - from <= records.length) return;
    const { adapter, topic } = this.#ctx;
    const start = (await adapter.bounds(topic, partition)).start;
    let o = from, i = 0;
    const gaps: Range[] = [];
    while (o < reach) {
      if (i < records.length && records[i].offset === o) (o++, i++);
      else {
        const to = i < records.length ? Math.min(reach, records[i].offset) : reach;
        gaps.push({ from: o, to });
        o = to;
      }
    }
    for (const g of gaps) {
      // Below the start: trimmed meanwhile, not corrupt.
      const kind = g.to <= start ? "ack" : "corrupt";
      this.#ops.push({ partition, offset: g.from, to: g.to, token, kind });
      if (kind === "corrupt") {
        adapter.onCorrupt?.({
          topic,
          partition,
          location: `group "${this.#group}"`,
          offsets: g,
          group: this.#group,
        });
      }
    }
  }

  async commit(): Promise<void> {
    if (this.#gone || !this.#init) return;
    await this.#flushDeadLetters();
    if (this.#ops.length === 0) return;
    const ops = this.#ops;
    this.#ops = [];
    try {
      const init = await this.#prepare();
      await updateGroup(this.#ctx.adapter, this.#ctx.topic, this.#group, init, (state) => {
        this.#apply(state, ops);
      }, REQUIRE_TOPIC);
    } catch (e) {
      // Not written: the settlements wait for the next write.
      this.#ops = ops.concat(this.#ops);
      this.#noteGone(e);
      throw e;
    }
  }

  async extend(): Promise<void> {
    const tokens = new Map<number, Set<string>>();
    for (const m of this.#allHeld()) {
      let xs = tokens.get(m.partition);
      if (!xs) tokens.set(m.partition, xs = new Set());
      xs.add(m.token!);
    }
    if (tokens.size === 0 || this.#gone) return;
    const until = this.#ctx.now() + this.#visibility;
    const init = await this.#prepare();
    await updateGroup(this.#ctx.adapter, this.#ctx.topic, this.#group, init, (state) => {
      for (const [p, set] of tokens) {
        const cursor = state.partitions[p];
        if (cursor) { for (const t of set) extendLease(cursor, t, until); }
      }
    }, REQUIRE_TOPIC);
  }

  async close(releaseHeld: boolean): Promise<void> {
    // A claim in flight holds the acks queued before it: let it land (its
    // batch is then released below) rather than lose them with the backend.
    if (this.#claiming) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.#claiming.catch(() => {}),
        new Promise((r) => timer = setTimeout(r, CLOSE_WAIT_MS)),
      ]);
      clearTimeout(timer);
    }
    for (const r of this.#readers) r?.reader.close();
    this.#readers = [];
    if (releaseHeld) {
      // Unsettled deliveries go back at once, without counting an attempt.
      for (const m of this.#allHeld()) {
        m[SETTLED] = true;
        this.#ops.push({
          partition: m.partition,
          offset: m.offset,
          token: m.token!,
          kind: "release",
        });
      }
    }
    this.#outstanding = [];
    await this.commit();
  }
}

export type { RecordMeta };

function collect(
  records: Map<string, StoredRecord>,
  partition: number,
  from: number,
  to: number,
): StoredRecord[] {
  const out: StoredRecord[] = [];
  for (let o = from; o < to; o++) {
    const r = records.get(`${partition}:${o}`);
    if (r) out.push(r);
  }
  return out;
}

function releaseKeyLocks(
  locks: Record<string, number>,
  partition: number,
  offsets: number[],
): void {
  const settled = new Set(offsets);
  const prefix = `${partition}:`;
  for (const [k, o] of Object.entries(locks)) {
    if (k.startsWith(prefix) && settled.has(o)) delete locks[k];
  }
}

/** Drops locks whose offset is settled already (below the floor or in a settled range). */
function dropSettledLocks(
  locks: Record<string, number>,
  partition: number,
  c: PartitionCursor,
): void {
  const prefix = `${partition}:`;
  for (const [k, o] of Object.entries(locks)) {
    if (!k.startsWith(prefix)) continue;
    if (o < c.floor || c.settled.some((s) => s.from <= o && o < s.to)) delete locks[k];
  }
}

/** The offsets of ops as sorted, merged ranges. */
function toRangesOf(ops: Op[]): Range[] {
  const rs = ops.map((o) => ({ from: o.offset, to: o.to ?? o.offset + 1 })).sort((a, b) =>
    a.from - b.from
  );
  const out: Range[] = [];
  for (const r of rs) {
    const last = out[out.length - 1];
    if (last && r.from <= last.to) last.to = Math.max(last.to, r.to);
    else out.push(r);
  }
  return out;
}

/**
 * The next `count` messages group `group` of `topic` would get, without
 * taking them (what `Mq.peek` answers): the claim a consumer would make, on
 * a copy of the group's state that is never written back, less what a
 * consumer skips (expired, before retention, not yet due, cancelled).
 */
export async function peekGroup(
  adapter: StorageAdapter,
  topic: string,
  config: TopicConfig,
  group: string,
  count: number,
  now: number,
): Promise<ReceivedMessage[]> {
  const state = (await loadGroup(adapter, topic, group)) ?? { partitions: {} };
  const since = retainedSince(config, now);
  let cancelled: Set<string> | undefined;
  const out: ReceivedMessage[] = [];
  let left = count;
  for (let p = 0; p < config.partitions && left > 0; p++) {
    const bounds = await adapter.bounds(topic, p);
    // Claims on a copy of the state (never written back), again after
    // skipping what a consumer would not get: the next `count` it would.
    const cursor = state.partitions[p] ?? newCursor(bounds.start);
    let claims = claim(cursor, bounds, left, now, Infinity, "peek");
    while (claims.length > 0 && left > 0) {
      for (const c of claims) {
        for (let o = c.from; o < c.to && left > 0; o++) {
          const r = await readOne(adapter, topic, p, o);
          if (
            !r || (since !== undefined && r.timestamp < since) ||
            (r.expiresAt !== undefined && r.expiresAt <= now) || (r.deliverAt ?? 0) > now
          ) continue;
          if (r.deliverAt !== undefined) {
            cancelled ??= await loadCancelled(adapter, topic);
            if (cancelled.has(r.id ?? `${p}-${r.offset}`)) continue;
          }
          out.push(new ReceivedMessage(topic, p, r, c.attempt));
          left--;
        }
      }
      claims = left > 0 ? claim(cursor, bounds, left, now, Infinity, "peek") : [];
    }
  }
  return out;
}
