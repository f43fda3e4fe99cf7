/**
 * Validation of topic, group and exchange names (CLI.md, "Names").
 *
 * @module
 */
import { MqError } from "./errors.ts";

const NAME_CHARS = /^[A-Za-z0-9._-]+$/;

/** The longest name allowed, in characters. */
export const MAX_NAME_LENGTH = 200;

/**
 * Throws `INVALID_NAME` unless `name` is 1 to 200 characters of
 * `A-Z a-z 0-9 . _ -`, not starting with `.` or `-`, without `..`.
 *
 * @example
 * ```ts
 * import { assertName } from "./names.ts";
 * assertName("topic", "orders.eu"); // ok
 * ```
 * @throws {MqError} `INVALID_NAME`
 */
export function assertName(kind: "topic" | "group" | "exchange" | "context", name: string): void {
  const problem = nameProblem(name);
  if (problem) {
    throw new MqError("INVALID_NAME", `${kind} name ${quote(name)} ${problem}`);
  }
}

/** Why `name` is not a valid name, or undefined when it is. */
export function nameProblem(name: string): string | undefined {
  if (typeof name !== "string" || name.length === 0) return "must not be empty";
  if (name.length > MAX_NAME_LENGTH) {
    return `is ${name.length} characters long; at most ${MAX_NAME_LENGTH} are allowed`;
  }
  if (!NAME_CHARS.test(name)) return "may contain only A-Z a-z 0-9 . _ -";
  if (name[0] === "." || name[0] === "-") return "must not start with . or -";
  if (name.includes("..")) return 'must not contain ".."';
  return undefined;
}

/** Quotes a user-given string for an error message, escaping control characters. */
export function quote(s: string): string {
  const shown = s.length > 60 ? s.slice(0, 57) + "..." : s;
  return JSON.stringify(shown);
}
