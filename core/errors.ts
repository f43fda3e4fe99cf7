/**
 * Typed errors. Every failure a user can cause or observe is an {@link MqError}
 * with a stable `code`; the CLI maps codes to exit codes in one place.
 *
 * @module
 */

/** The stable error codes of mq. */
export type MqErrorCode =
  | "INVALID_NAME"
  | "INVALID_ARGUMENT"
  | "INVALID_URL"
  | "UNKNOWN_SCHEME"
  | "MESSAGE_TOO_LARGE"
  | "MALFORMED_MESSAGE"
  | "TOPIC_NOT_FOUND"
  | "TOPIC_EXISTS"
  | "TOPIC_FULL"
  | "UNROUTABLE"
  | "CONFLICT"
  | "TIMEOUT"
  | "UNREACHABLE"
  | "UNAVAILABLE"
  | "IO"
  | "CORRUPT"
  | "CLOSED"
  | "DEAD_LETTERED"
  | "TRANSACTION_TOO_LARGE"
  | "LEASE_EXPIRED";

/** Extra facts about a failure, e.g. which record of a batch was refused. */
export interface MqErrorDetails {
  /** Index of the refused record within the batch given to a publish call. */
  index?: number;
  /** How many records of the batch were stored before the refused one. */
  published?: number;
}

/**
 * An error of mq, with a stable `code` and an optional `cause`.
 *
 * @example
 * ```ts
 * import { MqError } from "./errors.ts";
 * try {
 *   throw new MqError("INVALID_NAME", 'topic name "../x" is not allowed');
 * } catch (e) {
 *   if (MqError.is(e, "INVALID_NAME")) console.error(e.message);
 * }
 * ```
 */
export class MqError extends Error {
  /** The stable code of this error. */
  readonly code: MqErrorCode;
  /** Extra facts, where the code has some. */
  readonly details: MqErrorDetails;

  /** An error of `code`, with a message naming what was wrong. */
  constructor(
    code: MqErrorCode,
    message: string,
    options?: { cause?: unknown; details?: MqErrorDetails },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "MqError";
    this.code = code;
    this.details = options?.details ?? {};
  }

  /**
   * True when `e` is an MqError (`instanceof`: there is one copy of the core
   * in a process), and of `code` when one is given.
   */
  static is(e: unknown, code?: MqErrorCode): e is MqError {
    return e instanceof MqError && (code === undefined || e.code === code);
  }
}
