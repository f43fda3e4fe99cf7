/**
 * Redis URLs (`redis://[user:pass@]host:port[/db][?options]`, `rediss://` for
 * TLS) and connections through `@redis/client` (the `redis` package's
 * client): RESP2, every bulk string as bytes, reconnecting with backoff once
 * connected, one line per change of state.
 *
 * @module
 */
import type * as RedisModule from "@redis/client";
import { Buffer } from "node:buffer";
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
   * going out, also how long a reply may be waited for. @default 5s
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

/** The client type this module makes (bulk strings as Buffers). */
export type RedisClient = ReturnType<typeof makeClient>;

/**
 * A client of `redis` (the module, imported by {@link connectRedis} only: a
 * bridge going out does without it, and it is hundreds of files to load).
 */
function makeClient(
  { createClient, RESP_TYPES }: typeof RedisModule,
  conf: RedisUrl,
  reconnect: (retries: number, cause: Error) => number | Error,
) {
  return createClient({
    socket: conf.tls
      ? {
        host: conf.host,
        port: conf.port,
        tls: true,
        servername: conf.host,
        connectTimeout: conf.timeoutMs,
        reconnectStrategy: reconnect,
      }
      : {
        host: conf.host,
        port: conf.port,
        connectTimeout: conf.timeoutMs,
        reconnectStrategy: reconnect,
      },
    username: conf.username,
    password: conf.password,
    database: conf.database,
    RESP: 2,
  }).withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
}

/**
 * Connects to Redis: a first connection that fails is an error; once
 * connected, the client reconnects with backoff (100 ms doubling to 5 s)
 * and `onState` hears one line per change ("disconnected from ...",
 * "reconnected to ...").
 *
 * @example
 * ```ts ignore
 * const client = await connectRedis(parseRedisUrl(parseBackendUrl("redis://127.0.0.1:6379")));
 * ```
 * @throws {MqError} `UNREACHABLE` (refused, timed out, authentication failed)
 */
export async function connectRedis(
  conf: RedisUrl,
  onState?: (line: string) => void,
): Promise<RedisClient> {
  let connected = false;
  let up = false;
  const client = makeClient(await import("@redis/client"), conf, (retries, cause) => {
    if (!connected) return cause;
    return Math.min(100 * 2 ** Math.min(retries, 6), 5000);
  });
  client.on("error", (e: Error) => {
    if (!connected || !up) return;
    up = false;
    onState?.(`disconnected from Redis at ${conf.where} (${e.message}); reconnecting`);
  });
  client.on("ready", () => {
    if (connected && !up) onState?.(`reconnected to Redis at ${conf.where}`);
    up = true;
  });
  try {
    await client.connect();
  } catch (cause) {
    const msg = (cause as Error).message ?? String(cause);
    const why = /WRONGPASS|NOAUTH|AUTH|NOPERM|invalid password|invalid username/i.test(msg)
      ? `authentication failed (${msg.replace(/^\w+Error:\s*/, "")})`
      : msg;
    throw new MqError("UNREACHABLE", `cannot connect to Redis at ${conf.where}: ${why}`, {
      cause,
    });
  }
  connected = true;
  up = true;
  return client;
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
