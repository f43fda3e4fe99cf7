/**
 * Retry backoff: exponential with jitter.
 *
 * @module
 */
import { MqError } from "./errors.ts";
import { parseDuration } from "./duration.ts";

/** Backoff settings. */
export interface Backoff {
  /** Delay before the second attempt (ms). @default 1000 */
  baseMs: number;
  /** Largest delay (ms). @default 60000 */
  maxMs: number;
}

/** The default backoff: 1s doubling up to 1m. */
export const DEFAULT_BACKOFF: Backoff = { baseMs: 1000, maxMs: 60_000 };

/**
 * The delay before the next attempt after `attempt` failed: `base * 2^(attempt-1)`,
 * capped at `max`, with "equal jitter" (between half and all of it).
 *
 * @example
 * ```ts
 * import { backoffDelay } from "./retry.ts";
 * backoffDelay(3, { baseMs: 100, maxMs: 10_000 }, () => 1); // 400
 * ```
 */
export function backoffDelay(
  attempt: number,
  backoff: Backoff,
  random: () => number = Math.random,
): number {
  const exp = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.max(0, Math.min(attempt - 1, 40)));
  return Math.round(exp / 2 + (exp / 2) * random());
}

/**
 * Parses `DUR[,MAX]`, e.g. `500ms,30s`.
 *
 * @throws {MqError} `INVALID_ARGUMENT`
 */
export function parseBackoff(text: string): Backoff {
  const [base, max] = text.split(",");
  const baseMs = parseDuration(base);
  const maxMs = max === undefined ? Math.max(baseMs, DEFAULT_BACKOFF.maxMs) : parseDuration(max);
  if (maxMs < baseMs) {
    throw new MqError("INVALID_ARGUMENT", `backoff maximum ${max} is below its base ${base}`);
  }
  return { baseMs, maxMs };
}
