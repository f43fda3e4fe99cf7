/**
 * Time, injected whole: the current time and the timers the core waits on
 * (sleeps, timeouts, intervals) come from one {@link Clock}, the real one
 * ({@link systemClock}) unless a client is given another. {@link ManualClock}
 * is a clock that only moves when told, so that visibility timeouts,
 * backoff, retention by age and delays are tested without real sleeping.
 *
 * @example
 * ```ts
 * import { ManualClock } from "./clock.ts";
 * const clock = new ManualClock(1_000);
 * let fired = 0;
 * clock.setTimeout(() => fired++, 500);
 * await clock.advance(499); // fired: 0
 * await clock.advance(1); // fired: 1, clock.now(): 1_500
 * ```
 *
 * @module
 */

/** A scheduled callback; `cancel` stops it (a no-op once it ran). */
export interface TimerHandle {
  /** Stops the timer (a no-op once a timeout ran). */
  cancel(): void;
}

/** The time and the timers of a client. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /**
   * Resolves after `ms` milliseconds, or at once (without rejecting) when
   * `signal` is aborted.
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Calls `fn` once after `ms` milliseconds. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Calls `fn` every `ms` milliseconds until cancelled. */
  setInterval(fn: () => void, ms: number): TimerHandle;
}

/** The real clock: `Date.now` and the platform's timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      signal?.addEventListener("abort", done, { once: true });
    });
  },
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer = setTimeout(fn, Math.max(0, ms));
    return { cancel: () => clearTimeout(timer) };
  },
  setInterval(fn: () => void, ms: number): TimerHandle {
    const timer = setInterval(fn, Math.max(1, ms));
    return { cancel: () => clearInterval(timer) };
  },
};

/** The real clock with another source of the current time (the older `now` option). */
export function clockWithNow(now: () => number, timers: Clock = systemClock): Clock {
  return {
    now,
    sleep: (ms, signal) => timers.sleep(ms, signal),
    setTimeout: (fn, ms) => timers.setTimeout(fn, ms),
    setInterval: (fn, ms) => timers.setInterval(fn, ms),
  };
}

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
  /** Repeats every this many ms (intervals). */
  every?: number;
}

/**
 * A clock that stands still until {@link ManualClock.advance} moves it; the
 * timers due on the way fire in time order, each seeing `now()` at its own
 * time, with pending promise callbacks run between them.
 */
export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  #pending: Pending[] = [];

  /** A clock at `start` ms since the epoch. @default 0 */
  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  /** Timers not fired or cancelled yet. */
  get pendingTimers(): number {
    return this.#pending.length;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        handle.cancel();
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const handle = this.setTimeout(done, ms);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    return this.#add({ at: this.#now + Math.max(0, ms), seq: this.#seq++, fn });
  }

  setInterval(fn: () => void, ms: number): TimerHandle {
    const every = Math.max(1, ms);
    return this.#add({ at: this.#now + every, seq: this.#seq++, fn, every });
  }

  #add(p: Pending): TimerHandle {
    this.#pending.push(p);
    return {
      cancel: () => {
        const i = this.#pending.indexOf(p);
        if (i >= 0) this.#pending.splice(i, 1);
        p.every = undefined;
      },
    };
  }

  /**
   * Moves the clock `ms` forward, firing each timer due on the way at its
   * time (a timer set by a timer fires too when it falls in the span), and
   * lets the work they start run before returning.
   */
  async advance(ms: number): Promise<void> {
    const until = this.#now + Math.max(0, ms);
    for (;;) {
      await settle();
      let next: Pending | undefined;
      for (const p of this.#pending) {
        if (p.at <= until && (!next || p.at < next.at || (p.at === next.at && p.seq < next.seq))) {
          next = p;
        }
      }
      if (!next) break;
      this.#now = Math.max(this.#now, next.at);
      if (next.every !== undefined) {
        next.at += next.every;
        next.seq = this.#seq++;
      } else this.#pending.splice(this.#pending.indexOf(next), 1);
      next.fn();
    }
    this.#now = until;
    await settle();
  }
}

/** Lets pending promise callbacks (and what they chain) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
  await new Promise<void>((r) => setTimeout(r, 0));
}
