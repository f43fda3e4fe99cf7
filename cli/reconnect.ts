/**
 * Long-running commands (`sub`, `work`, `reply`, `bridge`, `ui`) ride through
 * a lost server or a leader election: the backend retries for as long as
 * they run, and each change of the connection's state is one line on stderr.
 */
import type { Mq } from "../mod.ts";
import { note } from "./runtime.ts";

/** How long a command that stops at the end (`-e`, `-n`) retries before it fails (ms). */
export const DRAIN_RETRY_MS = 120_000;

/**
 * Sets `mq`'s reconnect policy for a long-running command: retry without end
 * while following (`follow`), else for {@link DRAIN_RETRY_MS}; each state
 * line goes to stderr as `mq: <prefix>line` unless `quiet`.
 */
export function rideThroughFailures(
  mq: Mq,
  options: { follow: boolean; quiet?: boolean; prefix?: string },
): void {
  mq.setReconnectPolicy({
    retryForMs: options.follow ? Infinity : DRAIN_RETRY_MS,
    onState: options.quiet ? undefined : (line) => note(`mq: ${options.prefix ?? ""}${line}`),
  });
}
