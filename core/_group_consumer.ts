/**
 * A member of a group: claims leased batches, and settles them (ack, retry
 * with backoff, dead letter, expiry, delay) in the same compare-and-set that
 * claims the next batch, so a batch costs one state write. Its parts by job:
 * `_group_claim.ts` (claiming on the state), `_group_delivery.ts` (reading
 * what was claimed), `_group_settlement.ts` (settlements and dead letters)
 * and `_group_peek.ts` (peeking). Its waits are on the client's clock.
 *
 * @module
 */
import type { PartitionBounds } from "./adapter.ts";
import { type ReceivedMessage, SETTLED, type Settler, type Transferred } from "./message.ts";
import { extend as extendLease, newCursor } from "./_lease_table.ts";
import { type GroupState, updateGroup, type UpdateGroupOptions } from "./_group_store.ts";
import { resolveStart } from "./start_position.ts";
import type { RecordMeta, StoredRecord } from "./record.ts";
import { backoffDelay, DEFAULT_BACKOFF } from "./retry.ts";
import { deadLetterTopic } from "./dead_letter.ts";
import type { BatchSource, SubscribeOptions, SubscriptionContext } from "./types.ts";
import { waitAny } from "./_wait.ts";
import { MqError } from "./errors.ts";
import { claimBatch, claimOrdered, type ClaimOutcome, type ClaimRequest } from "./_group_claim.ts";
import { type DeliveryRules, GroupDelivery } from "./_group_delivery.ts";
import {
  applySettlements,
  deadLetterOps,
  deadLetterRecords,
  type Op,
  type Pending,
} from "./_group_settlement.ts";

let consumerSeq = 0;

/** How long closing waits for a claim in flight (ms, on the client's clock). */
export const CLOSE_WAIT_MS = 10_000;

/**
 * How long a claim held back behind keys whose settlement was queued
 * meanwhile waits before it claims again (ms, on the client's clock).
 */
export const HELD_BACK_WAIT_MS = 5;

/** The group side of a subscription. */
export class GroupSource implements BatchSource, Settler {
  #ctx: SubscriptionContext;
  #group: string;
  #options: SubscribeOptions;
  #visibility: number;
  #consumer = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}${consumerSeq++}`;
  /** What this consumer's delivery tokens start with (made once, not per message settled). */
  #tokenPrefix = `${this.#consumer}.`;
  #claims = 0;
  /** Settled and not written yet (the object stays; its lists are replaced). */
  #pending: Pending = { ops: [], dead: [] };
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
  #delivery: GroupDelivery;
  #turn = 0;
  #init: (() => GroupState) | undefined;
  #rules: DeliveryRules = {
    maxAttempts: undefined,
    deadLetterExpired: false,
    retentionAgeMs: undefined,
  };
  #deadTopic = "";
  /** Set once the topic was found removed: nothing more is written. */
  #gone = false;
  /** A consumer's state updates: the topic must still exist, waits on the clock. */
  #update: UpdateGroupOptions;

  #noteGone(e: unknown): void {
    if (MqError.is(e, "TOPIC_NOT_FOUND")) {
      this.#gone = true;
      this.#pending.ops = [];
      this.#pending.dead = [];
    }
  }

  constructor(ctx: SubscriptionContext, group: string, options: SubscribeOptions) {
    this.#ctx = ctx;
    this.#group = group;
    this.#options = options;
    this.#visibility = options.visibilityMs ?? 30_000;
    this.#update = { requireTopic: true, clock: ctx.clock };
    this.#delivery = new GroupDelivery({
      adapter: ctx.adapter,
      topic: ctx.topic,
      group,
      settler: this,
      pending: this.#pending,
      firstFailures: this.#firstFailures,
      onGone: (e) => this.#noteGone(e),
    });
  }

  /**
   * Marks a delivery of this consumer settled; false when it was already (or
   * is not ours). A claim waiting meanwhile is woken to apply it.
   */
  #take(m: ReceivedMessage): boolean {
    if (m[SETTLED] || m.token === undefined || !m.token.startsWith(this.#tokenPrefix)) {
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
      this.#pending.ops.push(run);
    }
  }

  ack(m: ReceivedMessage): void {
    if (this.#take(m)) {
      this.#pending.ops.push({
        partition: m.partition,
        offset: m.offset,
        token: m.token!,
        kind: "ack",
      });
    }
  }

  /** Takes a delivery over for a transaction (see {@link Settler.transfer}). */
  transfer(m: ReceivedMessage): Transferred | undefined {
    if (!this.#init || !this.#take(m)) return undefined;
    const init = this.#init;
    return {
      group: this.#group,
      maxAttempts: this.#rules.maxAttempts ?? 5,
      deadTopic: this.#deadTopic,
      firstFailure: this.#firstFailures.get(m),
      retryDelay: () => backoffDelay(m.attempt, this.#options.backoff ?? DEFAULT_BACKOFF),
      init,
      apply: (state, s) =>
        applySettlements(state as GroupState, [{
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
    const max = this.#rules.maxAttempts;
    if (max !== undefined && m.attempt >= max) {
      this.#pending.dead.push({
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
    this.#pending.ops.push({
      partition: m.partition,
      offset: m.offset,
      token: m.token!,
      kind: "retry",
      notBefore: now + delay,
      failedAt: now,
    });
  }

  async #prepare(): Promise<() => GroupState> {
    if (this.#init) return this.#init;
    const { adapter, topic, now } = this.#ctx;
    const config = await this.#ctx.config();
    this.#rules = {
      maxAttempts: this.#options.maxAttempts ?? config?.maxAttempts ?? 5,
      deadLetterExpired: config?.deadLetterExpired ?? false,
      retentionAgeMs: config?.retentionAgeMs,
    };
    this.#deadTopic = deadLetterTopic(topic, config?.dlq);
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
    if (this.#pending.dead.length === 0) return;
    const dead = this.#pending.dead;
    this.#pending.dead = [];
    await this.#ctx.publishDeadLetters(this.#deadTopic, deadLetterRecords(this.#ctx.topic, dead));
    this.#pending.ops.push(...deadLetterOps(dead));
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
    const { adapter, topic, now, clock } = this.#ctx;
    this.#compact();
    if (this.#gone || !(await this.#awaitTopic(signal))) return null;
    const init = await this.#prepare();
    const partitions = await this.#ctx.partitions();
    while (!signal.aborted) {
      await this.#flushDeadLetters();
      const bounds = await Promise.all(
        Array.from({ length: partitions }, (_, p) => adapter.bounds(topic, p)),
      );
      const ops = this.#pending.ops;
      this.#pending.ops = [];
      const token = `${this.#consumer}.${this.#claims++}`;
      const t = now();
      const req: ClaimRequest = { bounds, max, now: t, until: t + this.#visibility, token };
      // Ordered: read what a claim would take first, so that claiming and
      // locking keys happen in one compare-and-set.
      let preread: Map<string, StoredRecord> | undefined;
      let outcome: ClaimOutcome;
      try {
        preread = this.#options.ordered
          ? await this.#delivery.preread(init, bounds, max, t)
          : undefined;
        outcome = await this.#claimAndApply(ops, init, req, preread);
      } catch (e) {
        // Not written: the settlements wait for the next write.
        this.#pending.ops = ops.concat(this.#pending.ops);
        this.#noteGone(e);
        throw e;
      }
      const { claimed, due, pendingRetries, blocked } = outcome;
      this.#turn++;
      if (claimed.length === 0 && outcome.passedUnreadable > 0) {
        continue; // everything claimed was unreadable and is settled now: claim on
      }
      if (claimed.length === 0 && blocked > 0 && this.#pending.ops.length > 0) {
        // Held back behind keys whose settlement is queued here: apply it soon.
        await clock.sleep(HELD_BACK_WAIT_MS, signal);
        continue;
      }
      if (claimed.length > 0) {
        const messages = await this.#delivery.deliverable(claimed, token, t, this.#rules, preread);
        if (messages.length > 0) {
          this.#outstanding.push(messages);
          return messages;
        }
        continue; // everything claimed was settled otherwise: apply that, claim again
      }
      if (
        this.#options.follow === false &&
        (!pendingRetries || this.#options.awaitInFlight === false)
      ) return null;
      // Messages held back behind their key: give their holders time to settle.
      const floor = blocked > 0 ? 25 : 5;
      // Draining (-e) while others hold leases: look again soon, their acks append nothing.
      const cap = this.#options.follow === false ? 200 : 1000;
      const waitMs = Math.max(floor, Math.min(cap, due - now()));
      // Settled here meanwhile: apply that first, it may end a drain.
      if (this.#pending.ops.length > 0 || this.#pending.dead.length > 0) continue;
      await this.#waitForWork(bounds, signal, waitMs);
    }
    return null;
  }

  /**
   * Waits for new records, `waitMs` at most; also wakes when this consumer
   * settles something: its own acks and nacks may end a drain or free a key
   * at once.
   */
  async #waitForWork(
    bounds: PartitionBounds[],
    signal: AbortSignal,
    waitMs: number,
  ): Promise<void> {
    const { adapter, topic } = this.#ctx;
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

  /**
   * In one state update: applies the queued settlements `ops` and claims
   * (ordered, with `preread`: at most one per key in flight).
   */
  #claimAndApply(
    ops: Op[],
    init: () => GroupState,
    req: ClaimRequest,
    preread: Map<string, StoredRecord> | undefined,
  ): Promise<ClaimOutcome> {
    const { adapter, topic } = this.#ctx;
    // The update may run again (a concurrent write won): each run starts afresh.
    return updateGroup(adapter, topic, this.#group, init, (state) => {
      applySettlements(state, ops);
      return preread ? claimOrdered(state, req, preread) : claimBatch(state, req, this.#turn);
    }, this.#update);
  }

  async commit(): Promise<void> {
    if (this.#gone || !this.#init) return;
    await this.#flushDeadLetters();
    if (this.#pending.ops.length === 0) return;
    const ops = this.#pending.ops;
    this.#pending.ops = [];
    try {
      const init = await this.#prepare();
      await updateGroup(this.#ctx.adapter, this.#ctx.topic, this.#group, init, (state) => {
        applySettlements(state, ops);
      }, this.#update);
    } catch (e) {
      // Not written: the settlements wait for the next write.
      this.#pending.ops = ops.concat(this.#pending.ops);
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
    }, this.#update);
  }

  async close(releaseHeld: boolean): Promise<void> {
    // A claim in flight holds the acks queued before it: let it land (its
    // batch is then released below) rather than lose them with the backend.
    if (this.#claiming) {
      const landed = new AbortController();
      await Promise.race([
        this.#claiming.catch(() => {}),
        this.#ctx.clock.sleep(CLOSE_WAIT_MS, landed.signal),
      ]);
      landed.abort();
    }
    this.#delivery.close();
    if (releaseHeld) {
      // Unsettled deliveries go back at once, without counting an attempt.
      for (const m of this.#allHeld()) {
        m[SETTLED] = true;
        this.#pending.ops.push({
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
