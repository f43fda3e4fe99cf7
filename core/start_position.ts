/**
 * Where a reader starts: `beginning`, `end`, an offset, a time, or a span ago.
 * A time is found by binary search over offsets, not by a scan.
 *
 * @module
 */
import type { StorageAdapter } from "./adapter.ts";
import { MqError } from "./errors.ts";
import { parseDuration } from "./duration.ts";

/** A start position. */
export type StartFrom = "beginning" | "end" | number | Date | { agoMs: number };

/**
 * Parses a user's `--from`: `beginning`, `end`, an offset, an ISO time or
 * `-DUR` (that long ago).
 *
 * @example
 * ```ts
 * import { parseStartFrom } from "./start_position.ts";
 * parseStartFrom("-5m"); // { agoMs: 300000 }
 * ```
 * @throws {MqError} `INVALID_ARGUMENT`
 */
export function parseStartFrom(text: string): StartFrom {
  if (text === "beginning" || text === "end") return text;
  if (/^\d+$/.test(text)) return Number(text);
  if (text.startsWith("-")) return { agoMs: parseDuration(text.slice(1)) };
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const d = new Date(text);
    if (!Number.isNaN(d.getTime())) return d;
  }
  throw new MqError(
    "INVALID_ARGUMENT",
    `invalid start ${JSON.stringify(text)}: use beginning, end, an offset, an ISO time or -DUR`,
  );
}

/** The offset in one partition where a reader starting at `from` begins. */
export async function resolveStart(
  adapter: StorageAdapter,
  topic: string,
  partition: number,
  from: StartFrom,
  now: number,
): Promise<number> {
  const { start, end } = await adapter.bounds(topic, partition);
  if (from === "beginning") return start;
  if (from === "end") return end;
  if (typeof from === "number") return Math.min(Math.max(from, start), end);
  const time = from instanceof Date ? from.getTime() : now - from.agoMs;
  // First offset whose timestamp >= time (timestamps rise with offsets).
  let lo = start, hi = end;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    const reader = await adapter.openReader(topic, partition, mid);
    try {
      const [rec] = await reader.read(1);
      if (!rec) {
        hi = mid;
      } else if (rec.timestamp < time) {
        lo = rec.offset + 1;
      } else {
        hi = mid;
      }
    } finally {
      reader.close();
    }
  }
  return lo;
}
