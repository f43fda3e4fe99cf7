/** Error codes to exit codes (CLI.md), in one place. */
import type { MqErrorCode } from "../core/errors.ts";

/** Success. */
export const EXIT_OK = 0;
/** Failure: unreachable backend, I/O, a full topic. */
export const EXIT_FAILURE = 1;
/** Usage error or invalid input. */
export const EXIT_USAGE = 2;
/** Nothing arrived in time. */
export const EXIT_TIMEOUT = 3;

const USAGE: ReadonlySet<MqErrorCode> = new Set([
  "INVALID_NAME",
  "INVALID_ARGUMENT",
  "INVALID_URL",
  "UNKNOWN_SCHEME",
  "MESSAGE_TOO_LARGE",
  "MALFORMED_MESSAGE",
]);

/** The exit code for an error code. */
export function exitCodeOf(code: MqErrorCode): number {
  if (USAGE.has(code)) return EXIT_USAGE;
  if (code === "TIMEOUT") return EXIT_TIMEOUT;
  return EXIT_FAILURE;
}
