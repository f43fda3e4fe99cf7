/**
 * The outgoing side of the Redis connector (`mq bridge --to redis://...`): a
 * connection of its own that writes batches of XADDs as RESP bytes
 * (`_resp.ts`), many commands a write, and counts the replies as they come
 * (no promise, no command object per message). Batches are pipelined: the
 * XADDs of several batches (of one topic or of several, each `xadd` call a
 * batch) may be on the wire at once, written in turn and answered in order;
 * each call resolves once Redis answered every XADD of its own batch.
 *
 * A lost connection, or one that brings no reply for `?timeout=` (default
 * 5s) while replies are awaited, fails every batch in flight (the bridge
 * sends them again, at least once) and says so once; the next send connects
 * again and says so.
 *
 * @module
 */
import type { ReceivedMessage } from "../../core/message.ts";
import { redisFailure, type RedisUrl } from "./_connection.ts";
import { xaddEncoder } from "./_mapping.ts";
import { connectToRedis } from "./_dial.ts";
import { Reconnecting, type Wire } from "./_reconnect.ts";
import { Encoder, ErrorReply, ReplyReader, writeAll } from "./_resp.ts";

/** Bytes of RESP written at once (a write may hold a little more: the last command). */
const WRITE_BYTES = 256 * 1024;

/** A batch on the wire: how many replies it waits for, and what it heard. */
interface InFlight {
  /** The call's topic, place in call order, and the batch it names (see {@link XaddPipe.xadd}). */
  topic: string;
  seq: number;
  batch: object | undefined;
  replies: number;
  /** The stream of each reply, by the index its group starts at (for messages). */
  starts: [number, string][];
  /** The first error reply (by index), if any. */
  failed?: { index: number; error: string };
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** One connection: its reader, and the batches written and not yet answered, in order. */
interface Link extends Wire {
  replies: ReplyReader;
  queue: InFlight[];
  /** Whether a read loop is running (one at most, while the queue is not empty). */
  reading: boolean;
}

/**
 * A connection that XADDs batches to Redis, pipelined; made by
 * {@link openXaddPipe}.
 */
export interface XaddPipe {
  /**
   * XADDs `messages` (read from `topic`) to each stream of `groups`;
   * resolves once Redis answered every one. Calls may overlap: their
   * commands are written in turn, one batch after the other, and answered
   * in that order.
   *
   * `batch` names the call's batch for keeping the order of `topic` across
   * a failure: once a named call failed, every later named call of the
   * topic fails at once (those begun before it included, unless written
   * already), until the earliest batch of the topic that failed is sent
   * again (the same `batch`), so that nothing after it is stored before it
   * is resent. Unnamed calls are not held.
   *
   * @throws {MqError} `CONFLICT` (an error reply no retry mends, such as `WRONGTYPE`); other errors (a lost connection, no reply within the timeout, `LOADING`) are worth a retry
   */
  xadd(
    topic: string,
    groups: Iterable<[string, ReceivedMessage[]]>,
    batch?: object,
  ): Promise<void>;
  /** Closes the connection. */
  close(): void;
}

/**
 * Connects to Redis for XADDs: authenticates, selects the database, checks
 * that commands are taken (PING), each within `conf.timeoutMs`.
 *
 * @example
 * ```ts ignore
 * const pipe = await openXaddPipe(parseRedisUrl(parseBackendUrl("redis://127.0.0.1:6379")));
 * await pipe.xadd("orders", [["orders", batch]]);
 * ```
 * @throws {MqError} `UNREACHABLE` (refused, timed out, no reply, authentication failed)
 */
export async function openXaddPipe(
  conf: RedisUrl,
  onState?: () => ((line: string) => void) | undefined,
): Promise<XaddPipe> {
  const say = (line: string) => onState?.()?.(line);
  const connect = async (): Promise<Link> => {
    const conn = await connectToRedis(conf);
    return { conn, replies: new ReplyReader(conn, conf.timeoutMs), queue: [], reading: false };
  };

  const encoder = new Encoder();
  /** The end of the last write in turn: a batch's commands are written whole, in turn. */
  let writeTurn: Promise<void> = Promise.resolve();
  /** Calls so far (each call's place in call order). */
  let calls = 0;
  /** By topic: the earliest named call that failed and is not sent again yet (see `xadd`). */
  const holds = new Map<string, { seq: number; batch: object; error: unknown }>();
  /** Notes that the named call `seq` of `topic` failed with `error`. */
  const failed = (topic: string, seq: number, batch: object | undefined, error: unknown) => {
    if (batch === undefined) return;
    const hold = holds.get(topic);
    if (!hold || seq < hold.seq) holds.set(topic, { seq, batch, error });
  };
  /** Throws when a named call must wait for the resend of an earlier one that failed. */
  const checkHold = (topic: string, seq: number, batch: object | undefined) => {
    const hold = holds.get(topic);
    if (!hold || batch === undefined) return;
    if (batch === hold.batch && seq > hold.seq) holds.delete(topic); // the resend
    else if (seq > hold.seq) throw hold.error;
  };

  const links = await new Reconnecting<Link>(
    connect,
    conf.where,
    (link, e) => {
      for (const b of link.queue.splice(0)) {
        failed(b.topic, b.seq, b.batch, e);
        b.reject(e);
      }
    },
    say,
  ).start();

  /** Reads the replies of the batches in flight, in order, while there are any. */
  const readLoop = async (link: Link) => {
    link.reading = true;
    try {
      while (link.queue.length > 0 && !link.broken) {
        const b = link.queue[0];
        await link.replies.read(b.replies, (r, i) => {
          if (r !== undefined && !b.failed) b.failed = { index: i, error: r };
        });
        link.queue.shift();
        if (b.failed) {
          const { index, error } = b.failed;
          let stream = b.starts[0][1];
          for (const [at, s] of b.starts) if (at <= index) stream = s;
          const e = redisFailure(new ErrorReply(error), `XADD to stream ${JSON.stringify(stream)}`);
          failed(b.topic, b.seq, b.batch, e);
          b.reject(e);
        } else b.resolve();
      }
    } catch (e) {
      links.break(link, e as Error);
    } finally {
      link.reading = false;
    }
  };

  return {
    async xadd(topic, groups, batch) {
      const seq = calls++;
      const starts: [number, string][] = [];
      const batches: [string, ReceivedMessage[]][] = [];
      let total = 0;
      for (const [stream, messages] of groups) {
        if (messages.length === 0) continue;
        starts.push([total, stream]);
        batches.push([stream, messages]);
        total += messages.length;
      }
      if (total === 0) return;
      // This batch's turn to write: after every batch begun before it.
      const before = writeTurn;
      let done!: () => void;
      writeTurn = new Promise<void>((r) => done = r);
      let answered: Promise<void>;
      try {
        await before;
        checkHold(topic, seq, batch);
        let link: Link;
        try {
          link = await links.up();
        } catch (e) {
          failed(topic, seq, batch, e);
          throw e;
        }
        checkHold(topic, seq, batch);
        if (link.broken) {
          failed(topic, seq, batch, link.broken);
          throw link.broken;
        }
        answered = new Promise<void>((resolve, reject) => {
          link.queue.push({ topic, seq, batch, replies: total, starts, resolve, reject });
        });
        answered.catch(() => {}); // awaited below; a failure while writing is not unhandled
        if (!link.reading) readLoop(link);
        try {
          for (const [stream, messages] of batches) {
            const encode = xaddEncoder(encoder, stream, topic, conf.maxlen);
            for (const m of messages) {
              encode(m);
              if (encoder.length >= WRITE_BYTES) {
                await writeAll(link.conn, encoder.bytes.subarray(0, encoder.length));
                encoder.length = 0;
              }
            }
          }
          if (encoder.length > 0) {
            await writeAll(link.conn, encoder.bytes.subarray(0, encoder.length));
          }
        } catch (e) {
          links.break(link, (link.broken ?? e) as Error);
        } finally {
          encoder.length = 0;
        }
      } finally {
        done();
      }
      await answered;
    },
    close() {
      links.close();
    },
  };
}
