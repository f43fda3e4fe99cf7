/**
 * Backend URLs: `file:<dir>`, `kv:<path>`, `memory:`, `nats://host:port`.
 * Parsed loosely enough for relative paths, and printed with secrets hidden.
 *
 * @module
 */
import { MqError } from "./errors.ts";

/** A parsed backend URL. */
export interface BackendUrl {
  /** The URL as given. */
  href: string;
  /** The scheme, lower case, without the colon. */
  scheme: string;
  /** What follows the scheme and colon, without the query. */
  body: string;
  /** The query parameters. */
  params: URLSearchParams;
}

/**
 * Parses a backend URL.
 *
 * @example
 * ```ts
 * import { parseBackendUrl } from "./backend_url.ts";
 * parseBackendUrl("file:./data?fsync=never").params.get("fsync"); // "never"
 * ```
 * @throws {MqError} `INVALID_URL`
 */
export function parseBackendUrl(href: string): BackendUrl {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):(.*)$/s.exec(href);
  if (!m || m[1].length < 2) {
    throw new MqError(
      "INVALID_URL",
      `invalid backend URL ${
        JSON.stringify(redactUrl(href))
      }: expected e.g. file:./data, kv:./mq.sqlite, memory: or nats://127.0.0.1:4222`,
    );
  }
  const rest = m[2];
  const q = rest.indexOf("?");
  const body = q < 0 ? rest : rest.slice(0, q);
  const params = new URLSearchParams(q < 0 ? "" : rest.slice(q + 1));
  return { href, scheme: m[1].toLowerCase(), body, params };
}

const SECRET_PARAMS = /^(token|password|pass|secret|key|nkey|jwt|access_token)$/i;

/**
 * The URL with passwords and tokens shown as `***`.
 *
 * @example
 * ```ts
 * import { redactUrl } from "./backend_url.ts";
 * redactUrl("nats://u:p@host:4222"); // "nats://u:***@host:4222"
 * ```
 */
export function redactUrl(href: string): string {
  let out = href.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^@/?#]*)@/i, (_, scheme, userinfo: string) => {
    const colon = userinfo.indexOf(":");
    return colon < 0 ? `${scheme}***@` : `${scheme}${userinfo.slice(0, colon)}:***@`;
  });
  out = out.replace(
    /([?&])([^=&#]+)=([^&#]*)/g,
    (all, sep, name) => (SECRET_PARAMS.test(name) ? `${sep}${name}=***` : all),
  );
  return out;
}
