/**
 * Transactions: publishes to any topics and partitions, and settlements of
 * group deliveries, that take effect together or not at all.
 *
 * - On a backend with `capabilities.transactions === "atomic"` (memory, kv,
 *   fs) everything goes into one {@link StorageAdapter.commitTransaction}:
 *   the records, the group state documents that settle the deliveries (their
 *   leases checked in the same commit), and the dedup reservations of ids.
 * - On an `"effectively-once"` backend (nats: nats-server 2.9 has no atomic
 *   batch) the outputs are published first, each with an id derived from the
 *   first delivery the transaction settles and the output's index (deduplicated
 *   by the backend), and the settlements are written only once every publish
 *   is confirmed: a crash in between redelivers the input, whose outputs are
 *   then dropped as duplicates within the topic's dedup window.
 *
 * @module
 */
import { MqError } from "./errors.ts";
import { assertName } from "./names.ts";
import type { RecordBatch } from "./record.ts";
import { type ReceivedMessage, TRANSFER } from "./message.ts";
import { commitAtomic, commitEffectivelyOnce } from "./_transaction_commit.ts";
import type {
  Output,
  Settlement,
  TransactionHost,
  TransactionPublishOptions,
  TransactionResult,
} from "./_transaction_types.ts";

export type {
  TransactionHost,
  TransactionPublishOptions,
  TransactionResult,
} from "./_transaction_types.ts";

const enc = new TextEncoder();

/**
 * A transaction being built: what {@link Mq.transaction}'s callback gets.
 * Nothing is written until the callback returns; then all of it at once.
 *
 * @example
 * ```ts
 * import { Mq } from "./client.ts";
 * import { MemoryAdapter } from "../adapters/memory/mod.ts";
 * const mq = new Mq(new MemoryAdapter());
 * await mq.publish("in", "hello");
 * const sub = mq.subscribe("in", { group: "g", follow: false });
 * const [m] = (await sub.take(1))!;
 * await mq.transaction((tx) => {
 *   tx.publish("out", m.text().toUpperCase());
 *   tx.ack(m);
 * });
 * await sub.close();
 * await mq.close();
 * ```
 */
export class Transaction {
  #outputs: Output[] = [];
  #settlements: Settlement[] = [];
  #open = true;

  /** Made by {@link runTransaction} only. */
  constructor() {
    built.set(this, {
      close: (abort) => {
        this.#open = false;
        if (abort) this.#restore();
        return { outputs: this.#outputs, settlements: this.#settlements };
      },
      restore: () => this.#restore(),
    });
  }

  #assertOpen(): void {
    if (!this.#open) {
      throw new MqError("INVALID_ARGUMENT", "the transaction is over (its callback returned)");
    }
  }

  /**
   * Adds a message to publish with the transaction.
   *
   * @throws {MqError} `INVALID_NAME` for a bad topic name
   */
  publish(
    topic: string,
    payload: Uint8Array | string,
    options: TransactionPublishOptions = {},
  ): void {
    this.#assertOpen();
    const bytes = typeof payload === "string" ? enc.encode(payload) : payload;
    const last = this.#outputs[this.#outputs.length - 1];
    const plain = options.key === undefined && options.id === undefined &&
      options.headers === undefined && options.partition === undefined &&
      options.delayMs === undefined && options.ttlMs === undefined;
    // Plain messages in a row to one topic: one entry (the name checked once).
    if (plain && last && "plain" in last && last.topic === topic) {
      last.plain.push(bytes);
      return;
    }
    assertName("topic", topic);
    this.#outputs.push(plain ? { topic, plain: [bytes] } : { topic, payload: bytes, options });
  }

  /**
   * Adds a prepared batch of records (the fast path for many messages; its
   * bytes must not change until the transaction is over), to `partition` or
   * split by key.
   *
   * @throws {MqError} `INVALID_NAME` for a bad topic name
   */
  publishRecords(topic: string, batch: RecordBatch, options: { partition?: number } = {}): void {
    this.#assertOpen();
    assertName("topic", topic);
    if (batch.count > 0) this.#outputs.push({ topic, batch, partition: options.partition });
  }

  /**
   * Acks a group delivery with the transaction.
   *
   * @throws {MqError} `INVALID_ARGUMENT` when `m` is not an unsettled group delivery
   */
  ack(m: ReceivedMessage): void {
    this.#settle(m, "ack");
  }

  /**
   * Nacks a group delivery with the transaction: delivered again after
   * `delayMs` (default: the subscription's backoff), or, on its last attempt,
   * moved to the dead-letter topic in the same commit.
   *
   * @throws {MqError} `INVALID_ARGUMENT` when `m` is not an unsettled group delivery
   */
  nack(m: ReceivedMessage, options: { delayMs?: number; reason?: string } = {}): void {
    this.#settle(m, "nack", options.delayMs, options.reason);
  }

  #settle(m: ReceivedMessage, kind: "ack" | "nack", delayMs?: number, reason?: string): void {
    this.#assertOpen();
    const t = m[TRANSFER]();
    if (!t) {
      throw new MqError(
        "INVALID_ARGUMENT",
        `message ${m.topic}/${m.partition}/${m.offset} is not an unsettled delivery of a group subscription of this client`,
      );
    }
    this.#settlements.push({ m, t, kind, delayMs, reason });
  }

  /** Gives every delivery back to its consumer, unsettled. */
  #restore(): void {
    for (const s of this.#settlements) s.t.restore();
  }
}

/** What {@link runTransaction} does with a transaction it made: end it, or give its deliveries back. */
const built = new WeakMap<Transaction, {
  close(abort: boolean): { outputs: Output[]; settlements: Settlement[] };
  restore(): void;
}>();

/**
 * Runs `fn` with a new transaction and commits what it added; when `fn`
 * throws, or the commit fails, nothing is written and the deliveries it
 * settled are unsettled again (their consumers may nack or release them).
 *
 * @throws {MqError} `MESSAGE_TOO_LARGE` / `INVALID_ARGUMENT` (a refused message,
 * `details.index` its index among the publishes), `TRANSACTION_TOO_LARGE`,
 * `LEASE_EXPIRED` (a delivery's lease went to another consumer), `TOPIC_FULL`
 *
 * @example
 * ```ts
 * import { runTransaction } from "./transaction.ts";
 * import { Mq } from "./client.ts";
 * import { MemoryAdapter } from "../adapters/memory/mod.ts";
 * const mq = new Mq(new MemoryAdapter());
 * // What `mq.transaction(fn)` does:
 * const r = await mq.transaction((tx) => tx.publish("t", "x"));
 * console.log(r.published); // 1
 * void runTransaction;
 * ```
 */
export async function runTransaction(
  host: TransactionHost,
  fn: (tx: Transaction) => unknown | Promise<unknown>,
): Promise<TransactionResult> {
  const tx = new Transaction();
  const own = built.get(tx)!;
  try {
    await fn(tx);
  } catch (e) {
    own.close(true);
    throw e;
  }
  const { outputs, settlements } = own.close(false);
  try {
    const atomic = (host.adapter.capabilities.transactions ??
      (host.adapter.commitTransaction ? "atomic" : "effectively-once")) === "atomic";
    return atomic && host.adapter.commitTransaction
      ? await commitAtomic(host, outputs, settlements)
      : await commitEffectivelyOnce(host, outputs, settlements);
  } catch (e) {
    own.restore();
    throw e;
  }
}
