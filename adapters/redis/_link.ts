/**
 * The connection the Redis connector reads with (`mq bridge --from
 * redis://...`): commands encoded as RESP bytes (`_resp.ts`), several calls
 * on the wire at once (a read ahead and the XACK of the batch before it),
 * answered in order, their replies decoded from the bytes read with bulk
 * strings as views of them (`ValueReader`: no Buffer, no string per field).
 *
 * A lost connection (or one that brings no reply for `?timeout=` beyond the
 * longest a read blocks) fails every call in flight and says so once; the
 * next call connects again and says so.
 *
 * @module
 */
import { connectToRedis } from "./_dial.ts";
import { Reconnecting, type Wire } from "./_reconnect.ts";
import type { RedisUrl } from "./_connection.ts";
import { Encoder, ErrorReply, type Parser, type Value, ValueReader, writeAll } from "./_resp.ts";

/** One command's arguments. */
export type Command = (string | Uint8Array)[];

/** Commands encoded already (RESP bytes), and how many they are. */
export interface Encoded {
  bytes: Uint8Array;
  count: number;
}

/** A call on the wire: how many replies it waits for, and how its array replies are decoded. */
interface Pending {
  n: number;
  parse?: Parser<unknown>;
  resolve: (replies: unknown[]) => void;
  reject: (e: unknown) => void;
}

/** One connection: its reader, and the calls written and not yet answered, in order. */
interface Conn extends Wire {
  replies: ValueReader;
  queue: Pending[];
  reading: boolean;
}

/** A connection to Redis for commands with replies; made by {@link openRedisLink}. */
export interface RedisLink {
  /**
   * Sends `commands` in one write and resolves with their replies, in
   * order, once all came. An error reply rejects the call (as an
   * {@link ErrorReply}, the first of them) once every reply of it came.
   * Calls may overlap: they are written in turn and answered in that order.
   * A lost connection rejects every call in flight; the next call connects
   * again. Array replies are decoded by `parse` when given (as its `T`).
   */
  call<T = Value>(commands: (Command | Encoded)[], parse?: Parser<T>): Promise<(Value | T)[]>;
  /** Closes the connection: calls in flight fail; a later call connects again. */
  cut(): void;
  /** Closes the connection for good. */
  close(): void;
}

/**
 * Connects to Redis (a failure is thrown: `UNREACHABLE`) for calls whose
 * replies may take `waitMs` beyond `conf.timeoutMs` (a blocking read's
 * time); `say` hears one line per change of state once connected
 * ("disconnected from ...", "reconnected to ...").
 *
 * @example
 * ```ts ignore
 * import { parseBackendUrl } from "../../core/backend_url.ts";
 * import { parseRedisUrl } from "./_connection.ts";
 * const link = await openRedisLink(parseRedisUrl(parseBackendUrl("redis://127.0.0.1:6379")), 0);
 * const [pong] = await link.call([["PING"]]); // "PONG"
 * link.close();
 * ```
 * @throws {MqError} `UNREACHABLE` (refused, timed out, no reply, authentication failed)
 */
export async function openRedisLink(
  conf: RedisUrl,
  waitMs: number,
  say: (line: string) => void = () => {},
): Promise<RedisLink> {
  const connect = async (): Promise<Conn> => {
    const conn = await connectToRedis(conf);
    return {
      conn,
      replies: new ValueReader(conn, conf.timeoutMs + waitMs),
      queue: [],
      reading: false,
    };
  };
  const wires = await new Reconnecting<Conn>(
    connect,
    conf.where,
    (c, e) => {
      for (const p of c.queue.splice(0)) p.reject(e);
    },
    say,
  ).start();
  let writeTurn: Promise<void> = Promise.resolve();

  const readLoop = async (c: Conn) => {
    c.reading = true;
    try {
      while (c.queue.length > 0 && !c.broken) {
        const p = c.queue[0];
        const replies: unknown[] = new Array(p.n);
        let error: ErrorReply | undefined;
        for (let i = 0; i < p.n; i++) {
          const v = replies[i] = await c.replies.read(p.parse);
          if (v instanceof ErrorReply) error ??= v;
        }
        c.queue.shift();
        if (error) p.reject(error);
        else p.resolve(replies);
      }
    } catch (e) {
      wires.break(c, e as Error);
    } finally {
      c.reading = false;
    }
  };

  return {
    async call<T>(commands: (Command | Encoded)[], parse?: Parser<T>) {
      const encoder = new Encoder(4096);
      let n = 0;
      for (const c of commands) {
        if (Array.isArray(c)) {
          encoder.command(c);
          n++;
        } else {
          encoder.raw(c.bytes);
          n += c.count;
        }
      }
      const before = writeTurn;
      let done!: () => void;
      writeTurn = new Promise<void>((r) => done = r);
      let answered: Promise<(Value | T)[]>;
      try {
        await before;
        const c = await wires.up();
        if (c.broken) throw c.broken;
        answered = new Promise<(Value | T)[]>((resolve, reject) => {
          c.queue.push({
            n,
            parse: parse as Parser<unknown> | undefined,
            resolve: resolve as (replies: unknown[]) => void,
            reject,
          });
        });
        answered.catch(() => {}); // awaited below; a failure while writing is not unhandled
        if (!c.reading) readLoop(c);
        try {
          await writeAll(c.conn, encoder.bytes.subarray(0, encoder.length));
        } catch (e) {
          wires.break(c, (c.broken ?? e) as Error);
        }
      } finally {
        done();
      }
      return await answered;
    },
    cut() {
      wires.cut();
    },
    close() {
      wires.close();
    },
  };
}
