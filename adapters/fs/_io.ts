/**
 * How the fs backend reports the OS's errors: as `IO` errors that name the
 * problem ({@link io} for file work that awaits, {@link ioNow} for work done
 * at once, such as the views' synchronous reads of a few bytes).
 *
 * @module
 */
import { MqError } from "../../core/errors.ts";
import { TX_PENDING } from "./_journals.ts";

/** An OS error as an `IO` error; an `MqError` (and {@link TX_PENDING}) as it is. */
function ioError(e: unknown): unknown {
  if (MqError.is(e) || e === TX_PENDING) return e;
  return new MqError("IO", (e as Error).message, { cause: e });
}

/** Runs file work, turning OS errors into `IO` errors that name the problem. */
export async function io<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw ioError(e);
  }
}

/**
 * Runs synchronous file work at once, its result (or its error, as in
 * {@link io}) as a promise: no async function and no await of its own.
 */
export function ioNow<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (e) {
    return Promise.reject(ioError(e));
  }
}
