/**
 * Durations as users write them: `250ms`, `30s`, `5m`, `2h`, `1d`.
 *
 * @module
 */
import { MqError } from "./errors.ts";

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses a duration into milliseconds.
 *
 * @example
 * ```ts
 * import { parseDuration } from "./duration.ts";
 * parseDuration("5m"); // 300000
 * ```
 * @throws {MqError} `INVALID_ARGUMENT` for anything else
 */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (!m) {
    throw new MqError(
      "INVALID_ARGUMENT",
      `invalid duration ${
        JSON.stringify(text)
      }: use a number and a unit, e.g. 250ms, 30s, 5m, 2h, 1d`,
    );
  }
  return Math.round(Number(m[1]) * UNITS[m[2]]);
}

/** Formats milliseconds as the shortest exact duration, e.g. `120000` → `2m`. */
export function formatDuration(ms: number): string {
  for (const unit of ["d", "h", "m", "s"]) {
    if (ms >= UNITS[unit] && ms % UNITS[unit] === 0) return `${ms / UNITS[unit]}${unit}`;
  }
  return `${ms}ms`;
}
