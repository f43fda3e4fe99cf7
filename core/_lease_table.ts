/**
 * Per-partition delivery state of a group, as pure functions: what is settled,
 * what is leased to whom until when, what waits for redelivery. Offsets are
 * handled as ranges, so a batch of thousands costs one entry.
 *
 * @module
 */

/** Offsets `[from, to)`. */
export interface Range {
  from: number;
  to: number;
}

/** Offsets leased to a consumer until `until` (ms), delivered `attempt` times. */
export interface Lease extends Range {
  until: number;
  attempt: number;
  token: string;
  /** When a delivery of these offsets first failed (ms), if one did. */
  firstFailure?: number;
}

/** Offsets that were delivered `attempt` times and are due again at `notBefore`. */
export interface Retry extends Range {
  attempt: number;
  notBefore: number;
  /** Held back behind an earlier message of the same key (ordered consumption). */
  blocked?: boolean;
  /** When a delivery of these offsets first failed (ms), if one did. */
  firstFailure?: number;
}

/** A group's state in one partition. */
export interface PartitionCursor {
  /** Every offset below is settled. */
  floor: number;
  /** No offset at or above was delivered yet. */
  next: number;
  /** Settled ranges above the floor, sorted and disjoint. */
  settled: Range[];
  /** Ranges in flight. */
  leases: Lease[];
  /** Ranges to deliver again. */
  retries: Retry[];
}

/** A claimed range: deliver offsets `[from, to)` as attempt `attempt`. */
export interface Claim extends Range {
  attempt: number;
  /** When a delivery of these offsets first failed (ms), if one did. */
  firstFailure?: number;
}

/** A new cursor starting at `offset`. */
export function newCursor(offset: number): PartitionCursor {
  return { floor: offset, next: offset, settled: [], leases: [], retries: [] };
}

/**
 * Claims up to `max` offsets for `token` until `until`: due retries and expired
 * leases first (oldest offset first), then offsets never delivered, below `end`.
 * Offsets below `start` (trimmed from the log) are dropped.
 */
export function claim(
  c: PartitionCursor,
  bounds: { start: number; end: number },
  max: number,
  now: number,
  until: number,
  token: string,
): Claim[] {
  dropBelow(c, bounds.start);
  // Expired leases become retries due now.
  if (c.leases.some((l) => l.until <= now)) {
    const keep: Lease[] = [];
    for (const l of c.leases) {
      if (l.until <= now) {
        c.retries.push({
          from: l.from,
          to: l.to,
          attempt: l.attempt,
          notBefore: now,
          firstFailure: l.firstFailure ?? l.until,
        });
      } else keep.push(l);
    }
    c.leases = keep;
    c.retries.sort((a, b) => a.from - b.from);
  }
  const out: Claim[] = [];
  let left = max;
  if (c.retries.length > 0) {
    const keep: Retry[] = [];
    for (const r of c.retries) {
      if (left > 0 && r.notBefore <= now) {
        const to = Math.min(r.to, r.from + left);
        const failed = r.firstFailure === undefined ? {} : { firstFailure: r.firstFailure };
        out.push({ from: r.from, to, attempt: r.attempt + 1, ...failed });
        c.leases.push({ from: r.from, to, until, attempt: r.attempt + 1, token, ...failed });
        left -= to - r.from;
        if (to < r.to) keep.push({ ...r, from: to });
      } else keep.push(r);
    }
    c.retries = keep;
  }
  if (left > 0 && c.next < bounds.end) {
    const to = Math.min(bounds.end, c.next + left);
    out.push({ from: c.next, to, attempt: 1 });
    c.leases.push({ from: c.next, to, until, attempt: 1, token });
    c.next = to;
  }
  return out;
}

/**
 * Settles `ranges` held under `token`; returns how many offsets were not held
 * by that token (stale: the lease expired and went to someone else).
 */
export function settle(c: PartitionCursor, token: string, ranges: Range[]): number {
  let stale = 0;
  for (const r of ranges) {
    const taken = takeFromLeases(c, token, r);
    stale += r.to - r.from - taken.reduce((n, t) => n + t.to - t.from, 0);
    for (const t of taken) addSettled(c, t);
  }
  advanceFloor(c);
  return stale;
}

/**
 * Puts `ranges` held under `token` back for redelivery at `notBefore`; with
 * `failedAt` the delivery counts as a failed attempt, without it (a release
 * at shutdown, a delayed message) it does not count.
 * Returns how many offsets were not held by that token.
 */
export function release(
  c: PartitionCursor,
  token: string,
  ranges: Range[],
  notBefore: number,
  failedAt?: number,
  blocked?: boolean,
): number {
  let stale = 0;
  for (const r of ranges) {
    const taken = takeFromLeases(c, token, r);
    stale += r.to - r.from - taken.reduce((n, t) => n + t.to - t.from, 0);
    for (const t of taken) {
      const retry: Retry = {
        from: t.from,
        to: t.to,
        attempt: failedAt !== undefined ? t.attempt : t.attempt - 1,
        notBefore,
      };
      const first = t.firstFailure ?? failedAt;
      if (first !== undefined) retry.firstFailure = first;
      if (blocked) retry.blocked = true;
      c.retries.push(retry);
    }
  }
  c.retries.sort((a, b) => a.from - b.from);
  return stale;
}

/** Extends the leases of `token` to `until`. */
export function extend(c: PartitionCursor, token: string, until: number): void {
  for (const l of c.leases) if (l.token === token) l.until = until;
}

/** Moves the cursor to `offset`: everything below settled, nothing at or above delivered. */
export function resetTo(c: PartitionCursor, offset: number): void {
  Object.assign(c, newCursor(offset));
}

/** Offsets in flight. */
export function inFlight(c: PartitionCursor): number {
  return c.leases.reduce((n, l) => n + l.to - l.from, 0);
}

/** Offsets delivered at least once and waiting for another attempt, or held back behind their key. */
export function waitingRetry(c: PartitionCursor): number {
  return c.retries.reduce((n, r) => n + (r.attempt > 0 || r.blocked ? r.to - r.from : 0), 0);
}

/** True when something must still be delivered (a retry, or a message held back behind its key). */
export function hasPendingWork(c: PartitionCursor): boolean {
  return c.retries.some((r) => r.attempt > 0 || r.blocked);
}

/**
 * Offsets never delivered yet whose time has not come at `now` (delayed
 * messages). Released deliveries and delayed messages already due wait for
 * no time, so they are not counted.
 */
export function waitingDelay(c: PartitionCursor, now: number): number {
  return c.retries.reduce(
    (n, r) => n + (r.attempt === 0 && !r.blocked && r.notBefore > now ? r.to - r.from : 0),
    0,
  );
}

/** The earliest time something of this cursor becomes due (a retry or an expiring lease). */
export function nextDue(c: PartitionCursor): number {
  let t = Infinity;
  for (const r of c.retries) t = Math.min(t, r.notBefore);
  for (const l of c.leases) t = Math.min(t, l.until);
  return t;
}

/** Offsets not yet settled, up to `end`. */
export function lag(c: PartitionCursor, end: number): number {
  const settledAbove = c.settled.reduce((n, s) => n + s.to - s.from, 0);
  return Math.max(0, end - c.floor - settledAbove);
}

/** Converts sorted offsets to ranges. */
export function toRanges(offsets: number[]): Range[] {
  const out: Range[] = [];
  for (const o of offsets) {
    const last = out[out.length - 1];
    if (last && last.to === o) last.to++;
    else out.push({ from: o, to: o + 1 });
  }
  return out;
}

function takeFromLeases(c: PartitionCursor, token: string, r: Range): Lease[] {
  const taken: Lease[] = [];
  const keep: Lease[] = [];
  for (const l of c.leases) {
    if (l.token !== token || l.to <= r.from || l.from >= r.to) {
      keep.push(l);
      continue;
    }
    const from = Math.max(l.from, r.from), to = Math.min(l.to, r.to);
    taken.push({ ...l, from, to });
    if (l.from < from) keep.push({ ...l, to: from });
    if (to < l.to) keep.push({ ...l, from: to });
  }
  c.leases = keep;
  return taken;
}

function addSettled(c: PartitionCursor, r: Range): void {
  const s = c.settled;
  let i = s.length;
  while (i > 0 && s[i - 1].from > r.from) i--;
  s.splice(i, 0, { from: r.from, to: r.to });
  // merge neighbours
  const merged: Range[] = [];
  for (const x of s) {
    const last = merged[merged.length - 1];
    if (last && x.from <= last.to) last.to = Math.max(last.to, x.to);
    else merged.push({ ...x });
  }
  c.settled = merged;
}

function advanceFloor(c: PartitionCursor): void {
  while (c.settled.length > 0 && c.settled[0].from <= c.floor) {
    c.floor = Math.max(c.floor, c.settled[0].to);
    c.settled.shift();
  }
}

function dropBelow(c: PartitionCursor, start: number): void {
  if (c.floor >= start) return;
  c.floor = start;
  if (c.next < start) c.next = start;
  const clip = <T extends Range>(xs: T[]) =>
    xs.filter((x) => x.to > start).map((x) => (x.from < start ? { ...x, from: start } : x));
  c.settled = clip(c.settled);
  c.leases = clip(c.leases);
  c.retries = clip(c.retries);
  advanceFloor(c);
}
