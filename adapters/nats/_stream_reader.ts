/**
 * A sequential reader over one stream of the NATS backend: an ordered
 * consumer from the reader's position, made again when it is lost (its
 * server went, a leader changed) or when the reader's position moved; what it
 * delivers again after a reset is skipped, so records come strictly in order.
 *
 * @module
 */
import { DeliverPolicy, type JetStreamClient } from "@nats-io/jetstream";
import type { LogReader, PartitionBounds } from "../../core/adapter.ts";
import type { StoredRecord } from "../../core/record.ts";
import { toRecord } from "./_records.ts";
import { type Retrier, transientError } from "./_retry.ts";
import { unreachable } from "./_streams.ts";

/** How long a read waits for stored messages before it takes its consumer for lost (ms). */
const FETCH_EXPIRES_MS = 1000;

/** See the module doc. */
export class StreamReader implements LogReader {
  readonly read: (max: number) => Promise<StoredRecord[]>;
  readonly close: () => void;

  /** Reads `stream` from offset `from`; `readBounds` reads the partition's bounds. */
  constructor(
    js: JetStreamClient,
    retry: Retrier,
    stream: string,
    from: number,
    readBounds: () => Promise<PartitionBounds>,
  ) {
    let next = from;
    let consumer: Awaited<ReturnType<JetStreamClient["consumers"]["get"]>> | undefined;
    let consumerAt = -1;
    const drop = () => {
      void consumer?.delete().catch(() => {});
      consumer = undefined;
    };
    const readOnce = async (max: number): Promise<StoredRecord[]> => {
      const { start, end } = await readBounds();
      if (next < start) next = start; // trimmed meanwhile
      if (next >= end) return [];
      if (!consumer || consumerAt !== next) {
        drop();
        consumer = await js.consumers.get(stream, {
          deliver_policy: DeliverPolicy.StartSequence,
          opt_start_seq: next + 1,
        });
        consumerAt = next;
      }
      const want = Math.min(max, end - next);
      const out: StoredRecord[] = [];
      try {
        const msgs = await consumer.fetch({ max_messages: want, expires: FETCH_EXPIRES_MS });
        // Strictly ascending: a consumer that reset itself (a lost
        // heartbeat, a leader change) may deliver some again.
        let at = next;
        for await (const m of msgs) {
          const r = toRecord(m);
          if (r.offset < at) continue;
          out.push(r);
          at = r.offset + 1;
          if (out.length >= want) break;
        }
      } catch (e) {
        // A consumer lost with its server (or a restart): make it again.
        drop();
        throw /consumer not found|consumer deleted/i.test((e as Error)?.message ?? "")
          ? transientError(`NATS: the reader of stream ${stream} was lost`, e)
          : e;
      }
      if (out.length === 0) {
        // Stored, yet nothing came: the consumer went with a server or a
        // leader. Make it again, unless the records were trimmed meanwhile.
        drop();
        if ((await readBounds()).start <= next) {
          throw transientError(`NATS: no messages from stream ${stream} (timeout)`);
        }
        return [];
      }
      next = out[out.length - 1].offset + 1;
      consumerAt = next;
      return out;
    };
    // A reader whose consumer went makes a new one: routine, said from the third try.
    this.read = (max: number) =>
      retry.run(`reading stream ${stream}`, () => readOnce(max), 3).catch((e) => {
        throw unreachable(e);
      });
    this.close = drop;
  }
}
