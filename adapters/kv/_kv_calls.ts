/**
 * Every call into Deno KV goes through {@link KvCalls.run}: several processes
 * on one SQLite file make `commit()` (and at times a read) fail with
 * `database is locked`; such a call is retried with jittered exponential
 * backoff for a bounded time, then fails with one clear `IO` error. A call
 * that does not answer at all (another program holds the file locked, a remote
 * KV that accepts connections but never answers) fails after a deadline
 * instead of hanging.
 *
 * @module
 */
import { MqError } from "../../core/errors.ts";

/** How long calls may take; tests shorten them. */
export interface KvCallLimits {
  /**
   * A call that has not settled after this long fails with `IO`.
   * @default 20_000
   */
  deadlineMs?: number;
  /**
   * How long a call failing with `database is locked` is retried.
   * @default 30_000
   */
  retryForMs?: number;
}

const LOCKED = /database is locked|database is busy|database table is locked|SQLITE_BUSY/i;

/** True when `e` is SQLite's contention error (worth retrying). */
export function isLockedError(e: unknown): boolean {
  return e instanceof Error && LOCKED.test(e.message);
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Runs KV calls with retries on contention and a deadline; see the module doc. */
export class KvCalls {
  /** What the store is, for messages: `Deno KV file /x/mq.sqlite` or `Deno KV at https://...`. */
  readonly what: string;
  readonly #deadlineMs: number;
  readonly #retryForMs: number;
  /**
   * A call was left unanswered at its deadline: closing the store would
   * block until it answers (Deno KV waits for pending calls), so do not.
   */
  abandoned = false;

  constructor(what: string, limits: KvCallLimits = {}) {
    this.what = what;
    this.#deadlineMs = limits.deadlineMs ?? 20_000;
    this.#retryForMs = limits.retryForMs ?? 30_000;
  }

  /**
   * Runs `call` (which must be safe to repeat: a read, or a commit that failed
   * as a whole), retrying while the database is locked.
   *
   * @throws {MqError} `IO` when it stays locked or does not answer in time
   */
  async run<T>(action: string, call: () => Promise<T>, deadlineMs = this.#deadlineMs): Promise<T> {
    let started = 0;
    for (let attempt = 0;; attempt++) {
      try {
        return await withDeadline(call(), deadlineMs, () => {
          this.abandoned = true;
          return this.#noAnswer(action, deadlineMs);
        });
      } catch (e) {
        if (MqError.is(e)) throw e;
        if (!isLockedError(e)) {
          throw new MqError("IO", `${this.what}: ${action} failed: ${(e as Error).message}`, {
            cause: e,
          });
        }
        const now = Date.now();
        if (started === 0) started = now;
        if (now - started >= this.#retryForMs) {
          throw new MqError(
            "IO",
            `${this.what} stayed locked for ${
              seconds(this.#retryForMs)
            } (other processes keep it busy): ${action} failed`,
            { cause: e },
          );
        }
        // Jittered exponential backoff: 1, 2, 4, ... up to 32 ms.
        await sleep(Math.random() * 2 ** Math.min(attempt, 5));
      }
    }
  }

  #noAnswer(action: string, ms: number): MqError {
    const s = seconds(ms);
    return new MqError(
      "IO",
      this.what.startsWith("Deno KV file")
        ? `${this.what} is locked by another process: no answer to ${action} within ${s}`
        : `${this.what} did not answer ${action} within ${s}`,
    );
  }
}

/** `1.5s`, `30s`. */
export function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10}s`;
}

/** `p`, or a rejection with `timeout()` once `ms` have passed. */
export function withDeadline<T>(p: Promise<T>, ms: number, timeout: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timeout()), ms);
  });
  p.catch(() => {}); // a call abandoned at its deadline may still fail later
  return Promise.race([p, expired]).finally(() => clearTimeout(timer));
}
