/**
 * The Redis Streams connector of `mq bridge` (`redis://[user:pass@]host:port[/db]`,
 * `rediss://` for TLS), loaded only when a bridge uses it; a
 * `BrokerConnector` of core/bridge.ts, over connections of its own, RESP
 * bytes encoded and decoded by mq (`_resp.ts`): going out `_pipe.ts`,
 * coming in `_link.ts`; no npm client.
 *
 * Going out (`--to`), each message is an XADD to the stream `--target` names
 * (default: the topic), a batch's XADDs written as RESP bytes, many a write,
 * and their replies counted as they come; `?maxlen=N` trims each stream
 * to about N entries (`MAXLEN ~ N`). The local position moves only after
 * Redis answered every XADD of a batch.
 *
 * Coming in (`--from`), `--subjects` are stream keys, read by the consumer
 * group `--group` (created at the stream's start when missing) as consumer
 * `?consumer=` (default `mq-bridge`), 1024 entries a read, the next read
 * sent while a batch is stored; entries are acknowledged (XACK) only after
 * the local store took them (a batch read ahead stays pending until then,
 * and a run that stops reads it again). On start, the consumer's own pending
 * entries (a crashed run's) are read again, and entries other consumers of
 * the group left pending for `?claim_idle=` (default 60s) are claimed
 * (XAUTOCLAIM); each entry comes in with the id `redis:<stream>:<entry-id>`.
 * Entries are stored through the topic's dedup window (native on fs, kv,
 * memory and NATS, decided with the append), so an entry delivered again
 * within it is dropped as a duplicate. Entries are acknowledged batch by
 * batch, so only the last batch of a run that stopped can be pending: before
 * it is read again, the bridge also looks up which of those ids the topic
 * stored since the oldest was delivered (a run that stopped longer ago than
 * the window), and drops them.
 *
 * | mq | Redis stream entry |
 * | --- | --- |
 * | payload | field `payload`, bytes as they are (in: else the entry's only field, whatever its name) |
 * | key | field `mq-key` |
 * | message id | out: field `mq-id` (the id published with, else `<topic>:<partition>-<offset>`); in: `redis:<stream>:<entry-id>` (field `mq-id` is dropped) |
 * | header NAME | field NAME (`payload`, `mq-key`, `mq-id`, `mq-headers` go in field `mq-headers`, JSON) |
 * | origin | in: header `redis-stream` (the stream key) |
 *
 * Exactly once in effect coming in (a redelivered entry has the same id, and
 * is dropped when the topic has it); at least once going out (a batch
 * resent after a crash or an outage is added again; `mq-id` tells the copies
 * apart).
 *
 * @module
 */
import type { BridgeSink, IntoOptions, SinkOptions } from "../../core/bridge.ts";
import { groupByTarget } from "../../core/bridge.ts";
import { compileTarget } from "../../core/bridge_target.ts";
import type { BackendUrl } from "../../core/backend_url.ts";
import type { Mq, OutgoingMessage } from "../../core/client.ts";
import { MqError } from "../../core/errors.ts";
import { retrier, storedIdsSince, storeWithIds } from "../_bridge_in.ts";
import { parseRedisUrl, redisFailure } from "./_connection.ts";
import { type Command, openRedisLink } from "./_link.ts";
import { messageOf, ORIGIN } from "./_mapping.ts";
import { openXaddPipe } from "./_pipe.ts";
import { entriesParser, type EntriesRead } from "./_entries.ts";
import type { Value } from "./_resp.ts";

export { parseRedisUrl } from "./_connection.ts";

/**
 * Batches (windows) of a bridge going out that are on the connection at
 * once: Redis stores one while the next is written and the one after read.
 */
const IN_FLIGHT = 4;

/** Entries per read (XREADGROUP's COUNT). */
const READ = "1024";
/** How long a read waits for new entries before it looks at the stop signal again (ms). */
const BLOCK_MS = 1000;

const dec = new TextDecoder();

/**
 * Refuses URL options that belong to the other direction.
 *
 * @throws {MqError} `INVALID_URL`
 */
function onlyFor(url: BackendUrl, direction: "--to" | "--from", names: string[]) {
  for (const name of names) {
    if (url.params.has(name)) {
      throw new MqError(
        "INVALID_URL",
        `${url.scheme}: ${name} applies to bridge ${direction === "--to" ? "--from" : "--to"}`,
      );
    }
  }
}

/**
 * A sink onto Redis streams: each message an XADD to the stream
 * `options.target` names (default `{topic}`), a batch's XADDs written as
 * RESP bytes over a connection of the sink's own, 256 KiB a write, replies
 * read as they come (`_pipe.ts`); `send` resolves once Redis answered every
 * one.
 *
 * @example
 * ```ts ignore
 * import { parseBackendUrl } from "../../core/backend_url.ts";
 * const sink = await subjectSink(parseBackendUrl("redis://127.0.0.1:6379?maxlen=100000"), {});
 * ```
 * @throws {MqError} `INVALID_URL`, `INVALID_ARGUMENT` (a bad template), `UNREACHABLE`
 */
export async function subjectSink(url: BackendUrl, options: SinkOptions = {}): Promise<BridgeSink> {
  const conf = parseRedisUrl(url);
  onlyFor(url, "--to", ["consumer", "claim_idle"]);
  const targetOf = options.target === undefined || options.target === "{topic}"
    ? undefined
    : compileTarget(options.target);
  let onState = options.onState;
  const pipe = await openXaddPipe(conf, () => onState);
  return {
    async send(topic, messages) {
      await pipe.xadd(
        topic,
        targetOf ? groupByTarget(topic, messages, targetOf) : [[topic, messages]],
        messages,
      );
    },
    // Batches pipelined on the connection, answered in order (see `xadd`'s `batch`).
    inFlight: IN_FLIGHT,
    watch(say) {
      onState = say;
    },
    close() {
      pipe.close();
      return Promise.resolve();
    },
  };
}

/** A stream entry as XREADGROUP and XAUTOCLAIM give it (fields null once deleted). */
type Entry = [Uint8Array, Uint8Array[] | null];

/** The entries of each stream of an XREADGROUP reply (none: nil). */
function streamsOf(reply: Value): [Uint8Array, Entry[]][] | null {
  return reply as [Uint8Array, Entry[]][] | null;
}

/**
 * Brings entries of the streams `options.subjects` into the topic
 * `options.into`, by the consumer group `options.group`; XACK only after
 * `publishBatch` resolved. Without `follow` it returns once the group has
 * nothing new and nothing pending for this consumer.
 *
 * @example
 * ```ts ignore
 * import { parseBackendUrl } from "../../core/backend_url.ts";
 * const n = await bridgeInto(parseBackendUrl("redis://127.0.0.1:6379"), mq, {
 *   subjects: ["orders"], into: "orders", group: "bridge", follow: false,
 * });
 * ```
 * @throws {MqError} `INVALID_URL`, `UNREACHABLE`, `CONFLICT` (a key that is not a stream)
 */
export async function bridgeInto(
  url: BackendUrl,
  target: Mq,
  options: IntoOptions,
): Promise<number> {
  const conf = parseRedisUrl(url);
  onlyFor(url, "--from", ["maxlen"]);
  if (options.bind?.length) {
    throw new MqError("INVALID_ARGUMENT", "--bind is for AMQP brokers, not Redis");
  }
  const streams = [...new Set(options.subjects)];
  for (const s of streams) {
    if (s === "") throw new MqError("INVALID_ARGUMENT", "--subjects: a stream key is empty");
  }
  const say = (line: string) => options.onState?.(line);
  const link = await openRedisLink(conf, options.follow ? BLOCK_MS : 0, say);
  const signal = options.signal;
  // A stop cuts a blocked read short; a batch being stored is let finish.
  let reading = false;
  /** The read of the next entries, sent while the last ones are stored. */
  let ahead: Promise<(Value | EntriesRead | null)[]> | undefined;
  /**
   * The XACK of the last batch stored, not awaited before the next batch is
   * stored (it is acknowledged behind the read ahead): awaited before the
   * next XACK is sent, at the end, and before a stop cuts a blocked read.
   */
  let lastAck: Promise<void> | undefined;
  const stopRead = () => {
    if (!reading) return;
    if (lastAck) lastAck.finally(() => link.cut()).catch(() => {});
    else link.cut();
  };
  signal?.addEventListener("abort", stopRead, { once: true });
  const run = retrier({ signal, onState: say });
  const group = options.group, consumer = conf.consumer;
  let total = 0, skipped = 0;
  /** One command, its reply; an error reply as `redisFailure` makes it, about `what`. */
  const command = async (args: Command, what: string): Promise<Value> => {
    try {
      return (await link.call([args]))[0];
    } catch (e) {
      throw redisFailure(e, what);
    }
  };

  /**
   * Stores entries (of several streams), but those in `stored` (a crashed
   * run's, stored before it could acknowledge them), then acknowledges them
   * (one XACK a stream, its ids the bytes the entries came with).
   */
  const take = async (byStream: [string, Entry[]][], stored?: Set<string>) => {
    const batch: OutgoingMessage[] = [];
    const acks: Command[] = [];
    for (const [stream, entries] of byStream) {
      if (entries.length === 0) continue;
      const xack: Command = new Array(3 + entries.length);
      xack[0] = "XACK";
      xack[1] = stream;
      xack[2] = group;
      // The headers of the entries that have no header fields: one object for all.
      const origin = Object.freeze({ [ORIGIN]: stream });
      for (let i = 0; i < entries.length; i++) {
        const [raw, fields] = entries[i];
        xack[3 + i] = raw;
        if (!fields) continue; // deleted from the stream since
        const m = messageOf(stream, dec.decode(raw), fields, origin);
        if (stored?.has(m.id!)) skipped++;
        else batch.push(m);
      }
      acks.push(xack);
    }
    if (batch.length > 0) {
      const r = await storeWithIds(target, options.into, batch);
      total += r.count;
      skipped += r.duplicates;
    }
    if (acks.length > 0) {
      try {
        await link.call(acks);
      } catch (e) {
        throw redisFailure(e, `acknowledging entries of ${streams.join(", ")}`);
      }
    }
  };

  /** Stores what a read of new entries brought, then acknowledges every entry read. */
  const takeRead = async (read: EntriesRead) => {
    if (read.batch.count > 0) {
      const r = await target.publishRecords(options.into, read.batch);
      total += r.count;
      skipped += r.duplicates;
    }
    if (read.entries > 0) {
      const before = lastAck;
      const acked = lastAck = link.call([read.acks]).then(() => {}, (e) => {
        throw redisFailure(e, `acknowledging entries of ${streams.join(", ")}`);
      });
      acked.catch(() => {}); // awaited by the next batch, or at the end
      await before;
    }
  };

  /** Waits for the last XACK sent (a failure of it is thrown). */
  const settleAck = async () => {
    const ack = lastAck;
    lastAck = undefined;
    await ack;
  };

  /**
   * The ids of the entries of the group's pending lists that the topic has
   * already (stored since the oldest was delivered, a margin for clocks
   * included), or undefined when nothing is pending.
   */
  const alreadyStored = async (): Promise<Set<string> | undefined> => {
    let oldest = -1;
    for (const stream of streams) {
      const pending = await command(
        ["XPENDING", stream, group, "-", "+", "100000"],
        `listing pending entries of ${stream}`,
      ) as [Uint8Array, Uint8Array, number, number][];
      for (const p of pending) oldest = Math.max(oldest, p[2]);
    }
    if (oldest < 0) return undefined;
    return await storedIdsSince(target, options.into, Date.now() - oldest - 60_000, "redis:");
  };

  try {
    // The group of each stream, made at its start when missing.
    const made = await run("creating the consumer groups", async () => {
      for (const stream of streams) {
        try {
          await link.call([["XGROUP", "CREATE", stream, group, "0", "MKSTREAM"]]);
        } catch (e) {
          if (/^BUSYGROUP/.test((e as Error).message)) continue;
          throw redisFailure(e, `creating group ${JSON.stringify(group)} of ${stream}`);
        }
      }
      return true;
    });
    if (!made) return total;
    say(`reading ${streams.join(", ")} as group ${group}, consumer ${consumer}`);

    /** This consumer's pending entries (a crashed run's), then others' stale ones. */
    const recover = async () => {
      const stored = await alreadyStored();
      if (!stored) return;
      for (const stream of streams) {
        let after = "0";
        for (;;) {
          const reply = streamsOf(
            await command(
              ["XREADGROUP", "GROUP", group, consumer, "COUNT", READ, "STREAMS", stream, after],
              `reading ${stream}`,
            ),
          );
          const entries = reply?.[0]?.[1] ?? [];
          if (entries.length === 0) break;
          await take([[stream, entries]], stored);
          after = dec.decode(entries[entries.length - 1][0]);
        }
        let cursor = "0-0";
        do {
          const reply = await command(
            [
              "XAUTOCLAIM",
              stream,
              group,
              consumer,
              String(conf.claimIdleMs),
              cursor,
              "COUNT",
              READ,
            ],
            `claiming pending entries of ${stream}`,
          ) as [Uint8Array, Entry[], Uint8Array[]?];
          cursor = dec.decode(reply[0]);
          if (reply[1].length > 0) await take([[stream, reply[1]]], stored);
        } while (cursor !== "0-0");
      }
      return true;
    };

    const readNew: Command = [
      "XREADGROUP",
      "GROUP",
      group,
      consumer,
      "COUNT",
      READ,
      ...(options.follow ? ["BLOCK", String(BLOCK_MS)] : []),
      "STREAMS",
      ...streams,
      ...streams.map(() => ">"),
    ];
    const parseEntries = entriesParser(group);
    const readNext = () => link.call([readNew], parseEntries);
    let recovered = false;
    for (;;) {
      const more = await run(`reading ${streams.join(", ")}`, async () => {
        if (!recovered) {
          await recover();
          recovered = true;
        }
        try {
          reading = true;
          const [read] = await (ahead ?? readNext()).finally(() => reading = false);
          ahead = undefined;
          if (read === null) {
            await settleAck();
            return options.follow;
          }
          // The next entries are read while these are stored (one batch ahead: those
          // stay pending until stored and acknowledged, and a crash reads them again).
          if (!signal?.aborted) {
            ahead = readNext();
            ahead.catch(() => {}); // awaited on the next turn, or dropped with the link
          }
          await takeRead(read as EntriesRead);
          return true;
        } catch (e) {
          // After any failure, what was read and not acknowledged is read again.
          recovered = false;
          ahead = undefined;
          lastAck = undefined;
          throw redisFailure(e, `reading ${streams.join(", ")}`);
        }
      });
      if (!more || signal?.aborted) break;
    }
    // A stop: the last batch stored is acknowledged before the connection closes.
    await settleAck().catch(() => {});
    if (skipped > 0) {
      say(
        `${skipped} entr${
          skipped === 1 ? "y" : "ies"
        } delivered again were stored already (dropped)`,
      );
    }
    return total;
  } finally {
    signal?.removeEventListener("abort", stopRead);
    // A read ahead's entries stay pending: the next run reads them again.
    link.close();
  }
}
