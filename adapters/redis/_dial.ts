/**
 * A connection of mq's own to Redis (both directions of the connector use
 * one, `_pipe.ts` going out, `_link.ts` coming in): TCP, for `rediss://` the
 * TLS handshake, then AUTH, SELECT and PING, all within `?timeout=`.
 *
 * @module
 */
import { MqError } from "../../core/errors.ts";
import type { RedisUrl } from "./_connection.ts";
import { Encoder, ReplyReader, writeAll } from "./_resp.ts";

/** What an error of connecting says, as Node's clients say it (`connect ECONNREFUSED host:port`). */
function connectFailure(e: unknown, conf: RedisUrl): string {
  if (e instanceof Deno.errors.ConnectionRefused) {
    return `connect ECONNREFUSED ${conf.host}:${conf.port}`;
  }
  const name = (e as Error)?.name;
  if (e instanceof Deno.errors.TimedOut || name === "TimeoutError" || name === "AbortError") {
    return `connect timed out after ${conf.timeoutMs} ms`;
  }
  return (e as Error)?.message ?? String(e);
}

/**
 * Connects within `conf.timeoutMs`: TCP (the connect aborted at the
 * deadline), then for `rediss://` the TLS handshake, bounded by what is left
 * of it (a handshake that does not end in time closes the connection: none
 * is left open behind a timeout).
 */
async function dial(conf: RedisUrl): Promise<Deno.Conn> {
  const deadline = Date.now() + conf.timeoutMs;
  const signal = AbortSignal.timeout(conf.timeoutMs);
  const tcp = await Deno.connect({ hostname: conf.host, port: conf.port, signal });
  tcp.setNoDelay(true);
  if (!conf.tls) return tcp;
  const tls = await Deno.startTls(tcp, { hostname: conf.host });
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timedOut = false;
  try {
    await Promise.race([
      tls.handshake(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          timedOut = true;
          reject(new Deno.errors.TimedOut());
        }, Math.max(0, deadline - Date.now()));
      }),
    ]);
  } catch (e) {
    try {
      tls.close();
    } catch { /* closed already */ }
    throw timedOut ? new Error(`TLS handshake timed out after ${conf.timeoutMs} ms`) : e;
  } finally {
    clearTimeout(timer);
  }
  return tls;
}

/**
 * Connects to Redis and makes the connection ready for commands:
 * authenticates, selects the database, checks that commands are taken
 * (PING), each within `conf.timeoutMs`. Nothing but the replies of those
 * commands has come on the connection when it resolves.
 *
 * @example
 * ```ts ignore
 * import { parseBackendUrl } from "../../core/backend_url.ts";
 * import { parseRedisUrl } from "./_connection.ts";
 * const conn = await connectToRedis(parseRedisUrl(parseBackendUrl("redis://127.0.0.1:6379")));
 * ```
 * @throws {MqError} `UNREACHABLE` (refused, timed out, no reply, authentication failed)
 */
export async function connectToRedis(conf: RedisUrl): Promise<Deno.Conn> {
  let conn: Deno.Conn;
  try {
    conn = await dial(conf);
  } catch (cause) {
    throw new MqError(
      "UNREACHABLE",
      `cannot connect to Redis at ${conf.where}: ${connectFailure(cause, conf)}`,
      { cause },
    );
  }
  const replies = new ReplyReader(conn, conf.timeoutMs);
  const hello = new Encoder(4096);
  let asked = 0;
  if (conf.password !== undefined) {
    hello.command(
      conf.username === undefined
        ? ["AUTH", conf.password]
        : ["AUTH", conf.username, conf.password],
    );
    asked++;
  }
  if (conf.database !== 0) {
    hello.command(["SELECT", String(conf.database)]);
    asked++;
  }
  hello.command(["PING"]);
  asked++;
  let refused: string | undefined;
  try {
    await writeAll(conn, hello.bytes.subarray(0, hello.length));
    await replies.read(asked, (r) => {
      if (r !== undefined) refused ??= r;
    });
  } catch (cause) {
    try {
      conn.close();
    } catch { /* closed already */ }
    throw new MqError(
      "UNREACHABLE",
      `cannot connect to Redis at ${conf.where}: ${(cause as Error).message}`,
      { cause },
    );
  }
  if (refused !== undefined) {
    conn.close();
    const why = /WRONGPASS|NOAUTH|NOPERM|invalid password|invalid username/i.test(refused)
      ? `authentication failed (${refused})`
      : refused;
    throw new MqError("UNREACHABLE", `cannot connect to Redis at ${conf.where}: ${why}`);
  }
  return conn;
}
