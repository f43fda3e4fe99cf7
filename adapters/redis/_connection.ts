/**
 * Redis URLs (`redis://[user:pass@]host:port[/db][?options]`, `rediss://` for
 * TLS), and what an error of Redis means for a bridge (`redisFailure`).
 *
 * @module
 */
import type { BackendUrl } from "../../core/backend_url.ts";
import { redactUrl } from "../../core/backend_url.ts";
import { MqError } from "../../core/errors.ts";
import { checkUrlOptions, hostUrl } from "../_broker_url.ts";
import { parseDuration } from "../../core/duration.ts";

/** What a Redis URL says. */
export interface RedisUrl {
  host: string;
  port: number;
  tls: boolean;
  username?: string;
  password?: string;
  database: number;
  /** `?maxlen=N`: trim each stream to about N entries (`MAXLEN ~ N`) on XADD. */
  maxlen?: number;
  /** `?consumer=NAME`: the consumer name within the group. @default "mq-bridge" */
  consumer: string;
  /** `?claim_idle=DUR`: claim other consumers' entries pending this long (XAUTOCLAIM). @default 60s */
  claimIdleMs: number;
  /**
   * `?timeout=DUR`: how long connecting (and the TLS handshake) may take;
   * also how long a reply may be waited for (coming in, beyond the time a
   * read blocks). @default 5s
   */
  timeoutMs: number;
  /** `host:port`, for messages. */
  where: string;
}

const OPTIONS = new Set(["maxlen", "consumer", "claim_idle", "timeout"]);

/**
 * Parses a `redis://` or `rediss://` URL.
 *
 * @example
 * ```ts
 * import { parseRedisUrl } from "./_connection.ts";
 * import { parseBackendUrl } from "../../core/backend_url.ts";
 * parseRedisUrl(parseBackendUrl("redis://127.0.0.1:6380/2?maxlen=1000")).database; // 2
 * ```
 * @throws {MqError} `INVALID_URL`
 */
export function parseRedisUrl(url: BackendUrl): RedisUrl {
  const shown = JSON.stringify(redactUrl(url.href));
  const bad = (why: string) => new MqError("INVALID_URL", `invalid Redis URL ${shown}: ${why}`);
  checkUrlOptions(url, OPTIONS);
  const u = hostUrl(url, bad, "expected redis://host:port[/db]");
  const port = u.port === "" ? 6379 : Number(u.port);
  if (!(port >= 1 && port <= 65535)) throw bad("the port must be 1 to 65535");
  const path = u.pathname.replace(/^\//, "");
  if (!/^\d{0,5}$/.test(path)) throw bad(`the path must be a database number, not ${path}`);
  const int = (name: string, min: number) => {
    const v = url.params.get(name);
    if (v === null) return undefined;
    if (!/^\d+$/.test(v) || Number(v) < min) {
      throw new MqError(
        "INVALID_URL",
        `${url.scheme}: ${name} must be a whole number of at least ${min}, not ${
          JSON.stringify(v)
        }`,
      );
    }
    return Number(v);
  };
  const duration = (name: string, fallback: number) => {
    const v = url.params.get(name);
    if (v === null) return fallback;
    try {
      return parseDuration(v);
    } catch {
      throw new MqError(
        "INVALID_URL",
        `${url.scheme}: ${name} must be a duration like 30s or 500ms, not ${JSON.stringify(v)}`,
      );
    }
  };
  const consumer = url.params.get("consumer") ?? "mq-bridge";
  if (consumer === "") {
    throw new MqError("INVALID_URL", `${url.scheme}: consumer must not be empty`);
  }
  const host = u.hostname.replace(/^\[(.*)\]$/, "$1");
  return {
    host,
    port,
    tls: url.scheme === "rediss",
    username: u.username === "" ? undefined : decodeURIComponent(u.username),
    password: u.password === "" ? undefined : decodeURIComponent(u.password),
    database: path === "" ? 0 : Number(path),
    maxlen: int("maxlen", 1),
    consumer,
    claimIdleMs: duration("claim_idle", 60_000),
    timeoutMs: duration("timeout", 5000),
    where: `${u.hostname}:${port}`,
  };
}

/** Redis error replies that a retry may mend (the server is loading, busy, out of memory, ...). */
const TRANSIENT = /^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY|OOM|NOREPLICAS)\b/;

/**
 * An error reply of Redis as an {@link MqError} where no retry mends it
 * (`WRONGTYPE`, `NOPERM`, a syntax error): `CONFLICT`, which stops a bridge;
 * other failures (a lost connection, `LOADING`, `OOM`) as they are, to be
 * retried.
 *
 * @example
 * ```ts
 * import { redisFailure } from "./_connection.ts";
 * redisFailure(new Error("Socket closed unexpectedly"), "XADD to orders"); // the same error
 * ```
 */
export function redisFailure(e: unknown, what: string): unknown {
  if (MqError.is(e)) return e;
  const name = (e as Error)?.constructor?.name ?? "";
  const msg = (e as Error)?.message ?? String(e);
  const isReply = name === "SimpleError" || name === "ErrorReply" || name === "BlobError";
  if (!isReply || TRANSIENT.test(msg)) return e;
  if (/^WRONGTYPE/.test(msg)) {
    return new MqError("CONFLICT", `${what}: the key holds another type than a stream`, {
      cause: e,
    });
  }
  return new MqError("CONFLICT", `${what}: Redis refused it: ${msg}`, { cause: e });
}
