/**
 * Riding through failures that pass: a lost connection (the client
 * reconnects to another seed by itself), a stream-leader election (JetStream
 * answers 503 or not at all for a few seconds), a restarted server. Each
 * operation of the adapter runs through {@link Retrier.run}, which retries
 * such failures with backoff for the policy's time, and reports each change
 * of state once (not once per failed call).
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { ReconnectPolicy } from "../../core/adapter.ts";
import { watchConnection } from "./connection.ts";

/** How long after the last failure a success counts as the end of the trouble (ms). */
const SETTLE_MS = 3000;

/** How long an operation retries unless a command says otherwise (ms). */
export const DEFAULT_RETRY_MS = 20_000;

const TRANSIENT_NAMES = new Set([
  "TimeoutError",
  "NoResponders",
  "NoRespondersError",
  "RequestError",
  "ConnectionError",
  "JetStreamNotEnabled",
]);

const TRANSIENT_TEXT =
  /timeout|timed out|no responders|temporarily unavailable|no leader|not current|leadership|offline|disconnect|jetstream is not enabled|cluster not available|stream is not current|lost quorum/i;

/**
 * Whether `e` is a failure that passes: a timeout, no responders, a
 * connection lost, JetStream without a leader for the moment (503).
 */
export function isTransient(e: unknown): boolean {
  for (let x: unknown = e, depth = 0; x && depth < 4; depth++) {
    const err = x as {
      name?: string;
      message?: string;
      status?: number;
      cause?: unknown;
      transient?: boolean;
    };
    if (err.transient === true) return true;
    if (err.name === "ClosedConnectionError" || err.name === "DrainingConnectionError") {
      return false;
    }
    if (err.name && TRANSIENT_NAMES.has(err.name)) return true;
    if (err.status === 503) return true;
    if (typeof err.message === "string" && TRANSIENT_TEXT.test(err.message)) return true;
    x = err.cause;
  }
  return false;
}

/** An error that {@link isTransient} takes for one that passes. */
export function transientError(message: string, cause?: unknown): Error {
  return Object.assign(new Error(message, { cause }), { transient: true });
}

/** A failure's words, short. */
export function reasonOf(e: unknown): string {
  return ((e as Error)?.message ?? String(e)).split("\n")[0];
}

/** Retries an adapter's operations through failures that pass, and reports its state. */
export class Retrier {
  #policy: ReconnectPolicy = { retryForMs: DEFAULT_RETRY_MS };
  #connected = true;
  #troubled = false;
  /** When the last failure that passes was seen (ms). */
  #lastTrouble = 0;
  #closed: () => boolean;

  constructor(nc: NatsConnection, closed: () => boolean) {
    this.#closed = closed;
    watchConnection(nc, (line) => {
      this.#connected = !line.startsWith("disconnected") && !line.startsWith("reconnecting");
      // A reconnect ends the trouble it caused: say so once, by the reconnect line.
      if (this.#connected) this.#troubled = false;
      this.#policy.onState?.(line);
    });
  }

  /** Sets how long operations retry and who hears of the state. */
  setPolicy(policy: ReconnectPolicy): void {
    this.#policy = policy;
  }

  /** How long operations retry now (ms). */
  get retryForMs(): number {
    return this.#policy.retryForMs;
  }

  /** Whether the connection is up now (as far as the client knows). */
  get connected(): boolean {
    return this.#connected;
  }

  /**
   * Runs `fn`, again after a failure that passes (with backoff from 100 ms
   * to 2 s) until it works or the policy's time is up; then, or on any other
   * failure, throws what `fn` threw. `what` names the operation in the line
   * that reports the trouble, said once `quietAttempts` attempts failed.
   */
  async run<T>(what: string, fn: () => Promise<T>, quietAttempts = 1): Promise<T> {
    let delay = 100;
    const started = Date.now();
    for (let attempt = 1;; attempt++) {
      try {
        const v = await fn();
        this.recovered();
        return v;
      } catch (e) {
        if (this.#closed() || !isTransient(e)) throw e;
        if (Date.now() - started + delay > this.#policy.retryForMs) throw e;
        // One slow answer on a busy machine is no change of state: a second is
        // (`quietAttempts`: where a retry or two is routine, as for a reader).
        if (attempt > quietAttempts) this.trouble(what, e);
        else this.#lastTrouble = Date.now();
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 2000);
      }
    }
  }

  /** Retries left before `started + retryForMs`: whether to try once more after `e`. */
  mayRetry(e: unknown, started: number): boolean {
    return !this.#closed() && isTransient(e) && Date.now() - started < this.#policy.retryForMs;
  }

  /** Reports trouble once (unless the connection's own line said it already). */
  trouble(what: string, e: unknown): void {
    this.#lastTrouble = Date.now();
    if (this.#troubled || !this.#connected) return;
    this.#troubled = true;
    this.#policy.onState?.(`NATS JetStream did not answer ${what} (${reasonOf(e)}); retrying`);
  }

  /**
   * Reports the end of trouble once, at the first success after a quiet
   * {@link SETTLE_MS}: a server that is starting again (or a new leader)
   * fails a few calls in a row, which is one state, not several.
   */
  recovered(): void {
    if (!this.#troubled || Date.now() - this.#lastTrouble < SETTLE_MS) return;
    this.#troubled = false;
    this.#policy.onState?.("NATS JetStream answers again");
  }
}
