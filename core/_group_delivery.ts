/**
 * A group consumer's reading: the records of what it claimed, read through
 * one reader per partition kept open between batches, and sorted into the
 * messages to deliver and the settlements of those not to deliver now
 * (before retention, expired, not yet due, cancelled, out of attempts).
 * Offsets the log cannot give are settled too, so a group never waits for
 * them for ever.
 *
 * @module
 */
import type { LogReader, PartitionBounds, StorageAdapter } from "./adapter.ts";
import { ReceivedMessage, type Settler } from "./message.ts";
import type { StoredRecord } from "./record.ts";
import { type GroupState, loadGroup } from "./_group_store.ts";
import { claim, newCursor, type Range } from "./_lease_table.ts";
import { loadCancelled } from "./_delayed_index.ts";
import { MqError } from "./errors.ts";
import { type Claimed, UNREADABLE } from "./_group_claim.ts";
import type { Op, Pending } from "./_group_settlement.ts";

/** The topic's rules a delivery follows (from its settings and the subscription's options). */
export interface DeliveryRules {
  /** Attempts before a message is dead-lettered; undefined for no limit. */
  maxAttempts: number | undefined;
  /** Whether expired messages go to the dead-letter topic (else they are dropped). */
  deadLetterExpired: boolean;
  /** The topic's retention age (ms), if it has one. */
  retentionAgeMs: number | undefined;
}

/** What a {@link GroupDelivery} works for. */
export interface DeliveryHost {
  adapter: StorageAdapter;
  topic: string;
  group: string;
  /** Settles the messages delivered. */
  settler: Settler;
  /** Where the settlements of messages not delivered are queued. */
  pending: Pending;
  /** When a delivery of a message first failed (ms), where one did. */
  firstFailures: WeakMap<ReceivedMessage, number>;
  /** Called when the topic was found removed under the reader. */
  onGone(e: MqError): void;
}

/** Reads a group consumer's claims and sorts out what to deliver. */
export class GroupDelivery {
  #host: DeliveryHost;
  #readers: ({ reader: LogReader; pos: number } | undefined)[] = [];
  /** How far the last {@link readRange} got (see there). */
  #reach = 0;

  constructor(host: DeliveryHost) {
    this.#host = host;
  }

  /** Closes the readers kept open. */
  close(): void {
    for (const r of this.#readers) r?.reader.close();
    this.#readers = [];
  }

  /** The records a claim on the current state would take (for ordered consumption). */
  async preread(
    init: () => GroupState,
    bounds: PartitionBounds[],
    max: number,
    now: number,
  ): Promise<Map<string, StoredRecord>> {
    const { adapter, topic, group } = this.#host;
    const state = (await loadGroup(adapter, topic, group)) ?? init();
    const out = new Map<string, StoredRecord>();
    for (let p = 0; p < bounds.length; p++) {
      const cursor = structuredClone(state.partitions[p] ?? newCursor(bounds[p].start));
      for (const c of claim(cursor, bounds[p], max, now, now + 1, "preread")) {
        const records = await this.readRange(p, c.from, c.to);
        for (const r of records) out.set(`${p}:${r.offset}`, r);
        // Offsets the log cannot give: settled by the claim (see claimOrdered).
        let i = 0;
        for (let o = c.from; o < this.#reach; o++) {
          if (i < records.length && records[i].offset === o) i++;
          else out.set(`${p}:${o}`, UNREADABLE);
        }
      }
    }
    return out;
  }

  /** Reads claimed records and sorts out those not to deliver now. */
  async deliverable(
    claimed: Claimed[],
    token: string,
    now: number,
    rules: DeliveryRules,
    preread?: Map<string, StoredRecord>,
  ): Promise<ReceivedMessage[]> {
    const { adapter, topic, group, settler, pending, firstFailures } = this.#host;
    const messages: ReceivedMessage[] = [];
    let cancelled: Set<string> | undefined;
    const since = rules.retentionAgeMs === undefined ? undefined : now - rules.retentionAgeMs;
    for (const { partition, claims } of claimed) {
      for (const c of claims) {
        const records = preread
          ? collect(preread, partition, c.from, c.to)
          : await this.readRange(partition, c.from, c.to);
        if (!preread) await this.#settleUnreadable(partition, c.from, records, token);
        // A settlement of record `r` (made only for the few not delivered).
        const op = (r: StoredRecord, kind: Op["kind"], notBefore?: number): Op => ({
          partition,
          offset: r.offset,
          token,
          kind,
          notBefore,
        });
        for (const r of records) {
          if (since !== undefined && r.timestamp < since) {
            // Older than the topic's retention age: gone, as if trimmed.
            pending.ops.push(op(r, "ack"));
            continue;
          }
          if (r.expiresAt !== undefined && r.expiresAt <= now) {
            if (rules.deadLetterExpired) {
              pending.dead.push({
                partition,
                record: r,
                token,
                reason: "expired (ttl)",
                attempts: c.attempt - 1,
                firstFailure: c.firstFailure,
                lastFailure: now,
                kind: "expiredDead",
              });
            } else pending.ops.push(op(r, "expired"));
            continue;
          }
          if (r.deliverAt !== undefined) {
            if (r.deliverAt > now) {
              pending.ops.push(op(r, "release", r.deliverAt));
              continue;
            }
            cancelled ??= await loadCancelled(adapter, topic);
            if (cancelled.has(r.id ?? `${partition}-${r.offset}`)) {
              pending.ops.push(op(r, "ack"));
              continue;
            }
          }
          if (rules.maxAttempts !== undefined && c.attempt > rules.maxAttempts) {
            pending.dead.push({
              partition,
              record: r,
              token,
              reason: "lease expired (visibility timeout) on the last attempt",
              attempts: c.attempt - 1,
              firstFailure: c.firstFailure,
              lastFailure: now,
              kind: "dead",
            });
            continue;
          }
          const m = new ReceivedMessage(topic, partition, r, c.attempt, token, settler, group);
          if (c.firstFailure !== undefined) firstFailures.set(m, c.firstFailure);
          messages.push(m);
        }
      }
    }
    return messages;
  }

  /**
   * The records of `[from, to)` the log holds. Also sets {@link #reach}: how
   * far the reader got, past offsets it skipped as unreadable.
   */
  async readRange(partition: number, from: number, to: number): Promise<StoredRecord[]> {
    try {
      return await this.#readRangeOf(partition, from, to);
    } catch (e) {
      // A log that went under the reader (its file or keys deleted) is a
      // removed topic when the settings went first, as `topics rm` does.
      const { adapter, topic } = this.#host;
      if (MqError.is(e) || (await adapter.getState(["topics", topic]))) throw e;
      const gone = new MqError("TOPIC_NOT_FOUND", `topic "${topic}" was removed`, { cause: e });
      this.#readers[partition] = undefined;
      this.#host.onGone(gone);
      throw gone;
    }
  }

  async #readRangeOf(partition: number, from: number, to: number): Promise<StoredRecord[]> {
    const { adapter, topic } = this.#host;
    let r = this.#readers[partition];
    if (!r || r.pos !== from) {
      r?.reader.close();
      r = { reader: await adapter.openReader(topic, partition, from), pos: from };
      this.#readers[partition] = r;
    }
    const out: StoredRecord[] = [];
    this.#reach = from;
    while (r.pos < to) {
      const got = await r.reader.read(to - r.pos);
      if (got.length === 0) {
        // Nothing more: the reader may have passed offsets it cannot read.
        this.#reach = Math.max(this.#reach, Math.min(to, r.reader.position?.() ?? from));
        break;
      }
      for (const rec of got) {
        if (rec.offset >= from && rec.offset < to) out.push(rec);
      }
      const last = got[got.length - 1].offset + 1;
      this.#reach = Math.min(to, Math.max(this.#reach, last));
      if (last > to) {
        r.reader.close();
        this.#readers[partition] = undefined;
        break;
      }
      r.pos = last;
    }
    return out;
  }

  /**
   * Settles the offsets of `[from, #reach)` that `records` lack: the log
   * cannot give them (corrupt, or trimmed meanwhile), and a group that waited
   * for them would wait for ever. Reported through the corruption listener.
   */
  async #settleUnreadable(
    partition: number,
    from: number,
    records: StoredRecord[],
    token: string,
  ): Promise<void> {
    const reach = this.#reach;
    if (reach - from <= records.length) return;
    const { adapter, topic, group, pending } = this.#host;
    const start = (await adapter.bounds(topic, partition)).start;
    let o = from, i = 0;
    const gaps: Range[] = [];
    while (o < reach) {
      if (i < records.length && records[i].offset === o) (o++, i++);
      else {
        const to = i < records.length ? Math.min(reach, records[i].offset) : reach;
        gaps.push({ from: o, to });
        o = to;
      }
    }
    for (const g of gaps) {
      // Below the start: trimmed meanwhile, not corrupt.
      const kind = g.to <= start ? "ack" : "corrupt";
      pending.ops.push({ partition, offset: g.from, to: g.to, token, kind });
      if (kind === "corrupt") {
        adapter.onCorrupt?.({
          topic,
          partition,
          location: `group "${group}"`,
          offsets: g,
          group,
        });
      }
    }
  }
}

function collect(
  records: Map<string, StoredRecord>,
  partition: number,
  from: number,
  to: number,
): StoredRecord[] {
  const out: StoredRecord[] = [];
  for (let o = from; o < to; o++) {
    const r = records.get(`${partition}:${o}`);
    if (r) out.push(r);
  }
  return out;
}
