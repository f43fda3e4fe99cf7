/**
 * Claiming a group consumer's next batch on a group's state: leases over
 * the partitions in turn, or (ordered consumption) at most one message per
 * key in flight. Pure functions of the state, run inside the compare-and-set
 * of `updateGroup` (which may run them again).
 *
 * @module
 */
import type { PartitionBounds } from "./adapter.ts";
import type { StoredRecord } from "./record.ts";
import type { GroupState } from "./_group_store.ts";
import {
  type Claim,
  claim,
  hasPendingWork,
  newCursor,
  nextDue,
  type PartitionCursor,
  release,
  settle,
  toRanges,
} from "./_lease_table.ts";

/** Marks an offset the log could not give in a preread (ordered consumption). */
export const UNREADABLE = { offset: -1 } as unknown as StoredRecord;

/** The claims made in one partition. */
export interface Claimed {
  partition: number;
  claims: Claim[];
}

/** What to claim: up to `max` offsets, leased until `until`, under `token`. */
export interface ClaimRequest {
  /** Each partition's bounds, by partition number. */
  bounds: PartitionBounds[];
  max: number;
  /** The time of the claim (ms). */
  now: number;
  /** When the leases taken run out (ms). */
  until: number;
  token: string;
}

/** The outcome of a claim. */
export interface ClaimOutcome {
  claimed: Claimed[];
  /** When something next falls due (ms); `Infinity` when nothing does. */
  due: number;
  /**
   * Whether a draining consumer (`-e`) waits: failed attempts still to retry
   * or deliveries in flight anywhere (they may come back); not delayed
   * messages that were never delivered.
   */
  pendingRetries: boolean;
  /** Messages held back behind their key (ordered consumption). */
  blocked: number;
  /** Unreadable offsets the claim settled (ordered consumption). */
  passedUnreadable: number;
}

/** Claims over the partitions, starting at partition `turn` (modulo their count). */
export function claimBatch(state: GroupState, req: ClaimRequest, turn: number): ClaimOutcome {
  const { bounds, now, until, token } = req;
  const partitions = bounds.length;
  const claimed: Claimed[] = [];
  let left = req.max;
  let due = Infinity;
  let pendingRetries = false;
  for (let i = 0; i < partitions; i++) {
    const p = (turn + i) % partitions;
    const cursor = state.partitions[p] ??= newCursor(bounds[p].start);
    if (left > 0) {
      const claims = claim(cursor, bounds[p], left, now, until, token);
      for (const c of claims) left -= c.to - c.from;
      if (claims.length > 0) claimed.push({ partition: p, claims });
    }
    due = Math.min(due, nextDue(cursor));
    if (hasPendingWork(cursor) || cursor.leases.length > 0) pendingRetries = true;
  }
  return { claimed, due, pendingRetries, blocked: 0, passedUnreadable: 0 };
}

/**
 * Claims as {@link claimBatch} does (from partition 0), then keeps at most
 * one message per key in flight: a message whose key is held by an earlier
 * one goes back (without counting an attempt), and the key is locked for the
 * one delivered. `preread` holds the records the claim takes, by
 * `partition:offset` ({@link UNREADABLE} where the log could not give one:
 * settled now as corrupt).
 */
export function claimOrdered(
  state: GroupState,
  req: ClaimRequest,
  preread: Map<string, StoredRecord>,
): ClaimOutcome {
  const { bounds, now, until, token } = req;
  const locks = state.keyLocks ??= {};
  const claimed: Claimed[] = [];
  let due = Infinity, pendingRetries = false, blocked = 0, passedUnreadable = 0;
  let left = req.max;
  for (let p = 0; p < bounds.length; p++) {
    const cursor = state.partitions[p] ??= newCursor(bounds[p].start);
    dropSettledLocks(locks, p, cursor);
    const claims = left > 0 ? claim(cursor, bounds[p], left, now, until, token) : [];
    const kept: Claim[] = [];
    const back: number[] = [];
    for (const c of claims) {
      for (let o = c.from; o < c.to; o++) {
        const r = preread.get(`${p}:${o}`);
        if (r === UNREADABLE) {
          // Corrupt in storage: settled now, so that the group moves on.
          settle(cursor, token, [{ from: o, to: o + 1 }]);
          state.corrupt = (state.corrupt ?? 0) + 1;
          passedUnreadable++;
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
    blocked += back.length;
    if (kept.length > 0) claimed.push({ partition: p, claims: kept });
    due = Math.min(due, nextDue(cursor));
    if (hasPendingWork(cursor) || cursor.leases.length > 0) pendingRetries = true;
  }
  return { claimed, due, pendingRetries, blocked, passedUnreadable };
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
