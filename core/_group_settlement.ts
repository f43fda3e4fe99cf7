/**
 * A group consumer's settlements: the acks, retries, releases and dead
 * letters it queues between state writes, and how they are applied to a
 * group's state in the compare-and-set that claims the next batch.
 *
 * @module
 */
import type { RecordMeta, StoredRecord } from "./record.ts";
import type { GroupState } from "./_group_store.ts";
import { newCursor, type PartitionCursor, type Range, release, settle } from "./_lease_table.ts";
import { deadLetterMeta } from "./dead_letter.ts";

/** A settlement to apply at the next state update. */
export interface Op {
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
export interface DeadLetter {
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

/** What a consumer has settled and not written yet. */
export interface Pending {
  /** Settlements for the next state update. */
  ops: Op[];
  /** Messages to publish to the dead-letter topic first (then settled). */
  dead: DeadLetter[];
}

/** The dead-letter topic's records for `dead`, taken from `topic`. */
export function deadLetterRecords(
  topic: string,
  dead: DeadLetter[],
): { payload: Uint8Array; meta: RecordMeta }[] {
  return dead.map((d) => ({
    payload: d.record.payload,
    meta: deadLetterMeta(topic, d.partition, d.record, {
      reason: d.reason,
      attempts: d.attempts,
      firstFailure: d.firstFailure,
      lastFailure: d.lastFailure,
      stderr: d.stderr,
    }),
  }));
}

/** The settlements of dead letters once they are published. */
export function deadLetterOps(dead: DeadLetter[]): Op[] {
  return dead.map((d) => ({
    partition: d.partition,
    offset: d.record.offset,
    token: d.token,
    kind: d.kind,
  }));
}

/** Applies settlements to a state; returns how many offsets were not held (stale). */
export function applySettlements(state: GroupState, ops: Op[]): number {
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
