/** Error codes to exit codes (CLI.md), and error lines, in one place. */
import { MqError } from "../core/errors.ts";
import type { MqErrorCode } from "../mod.ts";
import { redactUrl } from "../core/backend_url.ts";
import { colorOnStderr, noColorFlag, paint } from "./output.ts";
import { clearProgressLine } from "./progress.ts";

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
  "TRANSACTION_TOO_LARGE",
]);

/** The exit code for an error code. */
export function exitCodeOf(code: MqErrorCode): number {
  if (USAGE.has(code)) return EXIT_USAGE;
  if (code === "TIMEOUT") return EXIT_TIMEOUT;
  return EXIT_FAILURE;
}

/** One `mq: error: ...` line on stderr ("error" in red on a terminal, see {@link colorOnStderr}). */
export function errorLine(message: string, args: readonly string[]): void {
  const color = colorOnStderr(!noColorFlag(args));
  clearProgressLine();
  Deno.stderr.writeSync(
    new TextEncoder().encode(`mq: ${paint(color, "31", "error")}: ${message}\n`),
  );
}

/**
 * Reports what a command threw as one line on stderr and returns its exit
 * code: an {@link MqError} by its code (CLI.md), anything else 1.
 */
export function reportError(e: unknown, args: readonly string[]): number {
  if (MqError.is(e)) {
    errorLine(redactSecrets(e.message), args);
    return exitCodeOf(e.code);
  }
  errorLine((e as Error)?.message ?? String(e), args);
  if (
    !(e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable) &&
    Deno.env.get("MQ_DEBUG")
  ) console.error(e);
  return EXIT_FAILURE;
}

/** URLs in `text` with their passwords and tokens as `***`. */
export function redactSecrets(text: string): string {
  return text.replace(/[a-z][a-z0-9+.-]*:\/\/[^\s"']+/gi, (u) => redactUrl(u));
}
