/**
 * What the Redis and MQTT connectors' incoming loops share: a step retried
 * with backoff until it succeeds (one line when it starts failing, one when
 * it works again), and a sleep that a signal cuts short.
 *
 * @module
 */
import { isFatal } from "../core/bridge.ts";
import { backoffDelay } from "../core/retry.ts";

/**
 * Runs steps with backoff: `run(what, fn)` retries `fn` until it succeeds
 * (undefined once `signal` stopped it); an error {@link isFatal} says no
 * retry mends, or one `fatal` says so, is thrown at once.
 *
 * @example
 * ```ts
 * import { retrier } from "./_bridge_loop.ts";
 * const run = retrier({ onState: (line) => console.error(line) });
 * await run("reading", () => Promise.resolve(1)); // 1
 * ```
 */
export function retrier(options: {
  signal?: AbortSignal;
  onState?: (line: string) => void;
  fatal?: (e: unknown) => boolean;
  /** The line once a failing step works again. @default "bringing messages in again" */
  recovered?: string;
}): <T>(what: string, fn: () => Promise<T>) => Promise<T | undefined> {
  let failing = false;
  const { signal } = options;
  return async (what, fn) => {
    for (let attempt = 1;; attempt++) {
      if (signal?.aborted) return undefined;
      try {
        const r = await fn();
        if (failing) {
          failing = false;
          options.onState?.(options.recovered ?? "bringing messages in again");
        }
        return r;
      } catch (e) {
        if (signal?.aborted) return undefined;
        if (isFatal(e) || options.fatal?.(e)) throw e;
        if (!failing) {
          failing = true;
          options.onState?.(`${what} failed (${(e as Error).message}); retrying with backoff`);
        }
        await sleep(backoffDelay(attempt, { baseMs: 100, maxMs: 5000 }), signal);
      }
    }
  };
}

/**
 * Resolves after `ms`, or at once when `signal` aborts.
 *
 * @example
 * ```ts
 * import { sleep } from "./_bridge_loop.ts";
 * await sleep(1);
 * ```
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
