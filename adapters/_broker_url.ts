/**
 * What the broker connectors' URL parsers share: refusing unknown URL options
 * by name, and the `scheme://[user:pass@]host:port` part as a web `URL`.
 *
 * @module
 */
import type { BackendUrl } from "../core/backend_url.ts";
import { MqError } from "../core/errors.ts";

/**
 * Refuses a URL option not in `known`, naming the known ones.
 *
 * @throws {MqError} `INVALID_URL`
 */
export function checkUrlOptions(url: BackendUrl, known: ReadonlySet<string>): void {
  for (const k of url.params.keys()) {
    if (!known.has(k)) {
      throw new MqError(
        "INVALID_URL",
        `unknown ${url.scheme}: URL option ${JSON.stringify(k)} (known: ${[...known].join(", ")})`,
      );
    }
  }
}

/**
 * The host part of a broker URL; `bad(expected)` makes the error when it has no
 * `//host`.
 *
 * @throws {MqError} from `bad`
 */
export function hostUrl(url: BackendUrl, bad: (why: string) => MqError, expected: string): URL {
  let u: URL;
  try {
    u = new URL(`${url.scheme}:${url.body}`);
  } catch {
    throw bad(expected);
  }
  if (!url.body.startsWith("//") || u.hostname === "") throw bad(expected);
  return u;
}
