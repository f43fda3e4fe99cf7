/**
 * Topic patterns for reading several topics at once, as the exchanges' topic
 * patterns: words split by `.`, `*` is exactly one word, `#` is zero or more
 * words (`orders.*` matches `orders.eu`, `logs.#` matches `logs` and
 * `logs.app.error`). A topic name cannot hold `*` or `#`, so an argument with
 * either is a pattern.
 *
 * @module
 */
import { assertName } from "./names.ts";
import { MqError } from "./errors.ts";

/**
 * True when `text` is a topic pattern (holds `*` or `#`), not a name.
 *
 * @example
 * ```ts
 * import { isTopicPattern } from "./topic_pattern.ts";
 * isTopicPattern("orders.*"); // true
 * isTopicPattern("orders"); // false
 * ```
 */
export function isTopicPattern(text: string): boolean {
  return text.includes("*") || text.includes("#");
}

/**
 * Checks a topic name or pattern: a name as {@link assertName} does; a
 * pattern's words are `*`, `#` or name characters.
 *
 * @throws {MqError} `INVALID_NAME`
 */
export function assertTopicOrPattern(text: string): void {
  if (!isTopicPattern(text)) return assertName("topic", text);
  const ok = text.length <= 200 &&
    text.split(".").every((w) => w === "*" || w === "#" || /^[A-Za-z0-9_-]+$/.test(w));
  if (!ok) {
    throw new MqError(
      "INVALID_NAME",
      `topic pattern ${
        JSON.stringify(text)
      } is not valid: words split by ".", each "*", "#" or of A-Z a-z 0-9 _ -`,
    );
  }
}

/**
 * True when topic `name` matches `pattern` (`*` one word, `#` any words).
 *
 * @example
 * ```ts
 * import { topicMatches } from "./topic_pattern.ts";
 * topicMatches("logs.#", "logs.app.error"); // true
 * topicMatches("orders.*", "orders"); // false
 * ```
 */
export function topicMatches(pattern: string, name: string): boolean {
  const p = pattern.split("."), n = name.split(".");
  const match = (i: number, j: number): boolean => {
    if (i === p.length) return j === n.length;
    if (p[i] === "#") {
      for (let k = j; k <= n.length; k++) if (match(i + 1, k)) return true;
      return false;
    }
    if (j === n.length) return false;
    return (p[i] === "*" || p[i] === n[j]) && match(i + 1, j + 1);
  };
  return match(0, 0);
}
