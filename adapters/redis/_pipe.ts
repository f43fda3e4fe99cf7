/**
 * The outgoing side of the Redis connector (`mq bridge --to redis://...`): a
 * connection of its own that writes a batch's XADDs as RESP bytes, many
 * commands a write, and counts the replies as they come (no promise, no
 * command object per message). Coming in stays with `@redis/client`
 * (`_connection.ts`).
 *
 * A lost connection fails the batch being sent (the bridge sends it again,
 * at least once) and says so once; the next send connects again and says so.
 *
 * @module
 */
import type { ReceivedMessage } from "../../core/message.ts";
import { MqError } from "../../core/errors.ts";
import { redisFailure, type RedisUrl } from "./_connection.ts";
import { xaddArgs } from "./_mapping.ts";

/** Bytes of RESP written at once (a write may hold a little more: the last command). */
const WRITE_BYTES = 256 * 1024;

const enc = new TextEncoder();
const dec = new TextDecoder();
const CRLF = 0x0d;

/** An error reply of Redis (named so that `redisFailure` knows it for one). */
class ErrorReply extends Error {}

/** One reply: an error's text, or a value (a simple or bulk string, an integer, nil). */
type Reply = { error: string } | { value: string | number | null };

/** How many decimal digits `n` (>= 0) has. */
function digitsOf(n: number): number {
  let d = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    d++;
  }
  return d;
}

/** A growable byte buffer that RESP commands are encoded into (no string built per argument). */
class Encoder {
  bytes = new Uint8Array(WRITE_BYTES + 64 * 1024);
  length = 0;

  #room(n: number) {
    if (this.length + n <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.length + n));
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }

  /** Writes `kind` (`*` or `$`), `n` in decimal and CRLF at `at`; returns where it ended. */
  #head(kind: number, n: number, at: number): number {
    const b = this.bytes;
    b[at] = kind;
    const end = at + 1 + digitsOf(n);
    for (let i = end - 1; i > at; i--) {
      b[i] = 48 + (n % 10);
      n = Math.floor(n / 10);
    }
    b[end] = 0x0d;
    b[end + 1] = 0x0a;
    return end + 2;
  }

  /**
   * Appends `a` as a bulk string if it is ASCII (most names and ids are: a
   * loop here is cheaper than a call to the encoder); false (nothing
   * appended) if it is not.
   */
  #ascii(a: string): boolean {
    const n = a.length;
    this.#room(n + 16);
    const b = this.bytes;
    const start = this.length + 3 + digitsOf(n);
    for (let i = 0; i < n; i++) {
      const c = a.charCodeAt(i);
      if (c >= 0x80) return false;
      b[start + i] = c;
    }
    this.#head(0x24, n, this.length);
    b[start + n] = 0x0d;
    b[start + n + 1] = 0x0a;
    this.length = start + n + 2;
    return true;
  }

  /** Appends one command: `*argc`, then each argument as a bulk string. */
  command(args: (string | Uint8Array)[]) {
    this.#room(16);
    this.length = this.#head(0x2a, args.length, this.length);
    for (const a of args) {
      if (typeof a === "string") {
        if (a.length < 256 && this.#ascii(a)) continue;
        // At most 3 bytes of UTF-8 per UTF-16 unit; the length is known once written.
        this.#room(a.length * 3 + 32);
        const room = digitsOf(a.length * 3);
        const at = this.length + 3 + room;
        const { written } = enc.encodeInto(a, this.bytes.subarray(at));
        const digits = digitsOf(written);
        // Fewer digits than the room left for them: move the bytes back.
        if (digits < room) this.bytes.copyWithin(at - (room - digits), at, at + written);
        this.length = this.#head(0x24, written, this.length) + written;
      } else {
        this.#room(a.byteLength + 32);
        this.length = this.#head(0x24, a.byteLength, this.length);
        this.bytes.set(a, this.length);
        this.length += a.byteLength;
      }
      this.bytes[this.length] = 0x0d;
      this.bytes[this.length + 1] = 0x0a;
      this.length += 2;
    }
  }
}

/** Reads RESP replies off a connection, keeping what a read cut short for the next. */
class ReplyReader {
  #buf = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;
  constructor(private conn: Deno.Conn) {}

  /** The next complete reply in the buffer, or undefined (then read more). */
  #parse(): Reply | undefined {
    const b = this.#buf;
    let eol = -1;
    for (let i = this.#start; i + 1 < this.#end; i++) {
      if (b[i] === CRLF && b[i + 1] === 0x0a) {
        eol = i;
        break;
      }
    }
    if (eol < 0) return undefined;
    const kind = b[this.#start];
    const line = dec.decode(b.subarray(this.#start + 1, eol));
    if (kind === 0x24 /* $ */) {
      const n = Number(line);
      if (n < 0) {
        this.#start = eol + 2;
        return { value: null };
      }
      if (eol + 2 + n + 2 > this.#end) return undefined;
      const value = dec.decode(b.subarray(eol + 2, eol + 2 + n));
      this.#start = eol + 2 + n + 2;
      return { value };
    }
    this.#start = eol + 2;
    if (kind === 0x2b /* + */) return { value: line };
    if (kind === 0x2d /* - */) return { error: line };
    if (kind === 0x3a /* : */) return { value: Number(line) };
    throw new Error(
      `unexpected reply from Redis (type ${JSON.stringify(String.fromCharCode(kind))})`,
    );
  }

  /** Reads `n` replies, giving each to `each` (in order). */
  async read(n: number, each: (r: Reply, i: number) => void): Promise<void> {
    for (let i = 0; i < n;) {
      const r = this.#parse();
      if (r) {
        each(r, i++);
        continue;
      }
      if (this.#start > 0) {
        this.#buf.copyWithin(0, this.#start, this.#end);
        this.#end -= this.#start;
        this.#start = 0;
      }
      if (this.#end === this.#buf.length) {
        const grown = new Uint8Array(this.#buf.length * 2);
        grown.set(this.#buf);
        this.#buf = grown;
      }
      const got = await this.conn.read(this.#buf.subarray(this.#end));
      if (got === null) throw new Error("the connection was closed by Redis");
      this.#end += got;
    }
  }
}

/** Writes all of `bytes`. */
async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

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
 * A connection that XADDs batches to Redis, pipelined; made by
 * {@link openXaddPipe}.
 */
export interface XaddPipe {
  /**
   * XADDs `messages` (read from `topic`) to each stream of `groups`, in one
   * pipelined flow; resolves once Redis answered every one.
   *
   * @throws {MqError} `CONFLICT` (an error reply no retry mends, such as `WRONGTYPE`); other errors (a lost connection, `LOADING`) are worth a retry
   */
  xadd(topic: string, groups: Iterable<[string, ReceivedMessage[]]>): Promise<void>;
  /** Closes the connection. */
  close(): void;
}

/**
 * Connects to Redis for XADDs: authenticates, selects the database, checks
 * that commands are taken (PING).
 *
 * @example
 * ```ts ignore
 * const pipe = await openXaddPipe(parseRedisUrl(parseBackendUrl("redis://127.0.0.1:6379")));
 * await pipe.xadd("orders", [["orders", batch]]);
 * ```
 * @throws {MqError} `UNREACHABLE` (refused, timed out, authentication failed)
 */
export async function openXaddPipe(
  conf: RedisUrl,
  onState?: () => ((line: string) => void) | undefined,
): Promise<XaddPipe> {
  const say = (line: string) => onState?.()?.(line);
  const connect = async (): Promise<{ conn: Deno.Conn; replies: ReplyReader }> => {
    let conn: Deno.Conn;
    try {
      if (conf.tls) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const tls = Deno.connectTls({ hostname: conf.host, port: conf.port });
        conn = await Promise.race([
          tls,
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Deno.errors.TimedOut()), conf.timeoutMs);
          }),
        ]).finally(() => clearTimeout(timer));
      } else {
        const signal = AbortSignal.timeout(conf.timeoutMs);
        const tcp = await Deno.connect({ hostname: conf.host, port: conf.port, signal });
        tcp.setNoDelay(true);
        conn = tcp;
      }
    } catch (cause) {
      throw new MqError(
        "UNREACHABLE",
        `cannot connect to Redis at ${conf.where}: ${connectFailure(cause, conf)}`,
        { cause },
      );
    }
    const replies = new ReplyReader(conn);
    const hello = new Encoder();
    const asked: string[] = [];
    if (conf.password !== undefined) {
      hello.command(
        conf.username === undefined
          ? ["AUTH", conf.password]
          : ["AUTH", conf.username, conf.password],
      );
      asked.push("AUTH");
    }
    if (conf.database !== 0) {
      hello.command(["SELECT", String(conf.database)]);
      asked.push("SELECT");
    }
    hello.command(["PING"]);
    asked.push("PING");
    let refused: string | undefined;
    try {
      await writeAll(conn, hello.bytes.subarray(0, hello.length));
      await replies.read(asked.length, (r) => {
        if ("error" in r) refused ??= r.error;
      });
    } catch (cause) {
      conn.close();
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
    return { conn, replies };
  };

  let live: { conn: Deno.Conn; replies: ReplyReader } | undefined = await connect();
  let down = false;
  const encoder = new Encoder();

  return {
    async xadd(topic, groups) {
      if (!live) {
        live = await connect();
        if (down) say(`reconnected to Redis at ${conf.where}`);
        down = false;
      }
      const { conn, replies } = live;
      // The stream of each reply (by the index its group starts at), for messages.
      const starts: [number, string][] = [];
      let total = 0;
      const batches: [string, ReceivedMessage[]][] = [];
      for (const [stream, messages] of groups) {
        if (messages.length === 0) continue;
        starts.push([total, stream]);
        batches.push([stream, messages]);
        total += messages.length;
      }
      if (total === 0) return;
      let failed: { index: number; error: string } | undefined;
      const reading = replies.read(total, (r, i) => {
        if ("error" in r && !failed) failed = { index: i, error: r.error };
      });
      let writing: Promise<void> | undefined;
      try {
        writing = (async () => {
          for (const [stream, messages] of batches) {
            for (const m of messages) {
              encoder.command(xaddArgs(stream, topic, m, conf.maxlen));
              if (encoder.length >= WRITE_BYTES) {
                await writeAll(conn, encoder.bytes.subarray(0, encoder.length));
                encoder.length = 0;
              }
            }
          }
          if (encoder.length > 0) await writeAll(conn, encoder.bytes.subarray(0, encoder.length));
          encoder.length = 0;
        })();
        // A write that fails makes the read fail too (the connection is closed then).
        await Promise.all([
          writing.catch((e) => {
            conn.close();
            throw e;
          }),
          reading,
        ]);
      } catch (e) {
        encoder.length = 0;
        live = undefined;
        try {
          conn.close();
        } catch { /* closed already */ }
        await reading.catch(() => {});
        await writing?.catch(() => {});
        if (!down) {
          say(
            `disconnected from Redis at ${conf.where} (${(e as Error).message}); reconnecting`,
          );
        }
        down = true;
        throw e;
      }
      if (failed) {
        const { index, error } = failed;
        let stream = starts[0][1];
        for (const [at, s] of starts) if (at <= index) stream = s;
        throw redisFailure(new ErrorReply(error), `XADD to stream ${JSON.stringify(stream)}`);
      }
    },
    close() {
      try {
        live?.conn.close();
      } catch { /* closed already */ }
      live = undefined;
    },
  };
}
