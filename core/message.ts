/**
 * A received message, as a subscriber sees it.
 *
 * @module
 */
import type { StoredRecord } from "./record.ts";

/** Settles messages of a group; plain reads have none. */
export interface Settler {
  /** Marks `m` done. */
  ack(m: ReceivedMessage): void;
  /**
   * Puts `m` back for redelivery after `delayMs` (default: the backoff),
   * saying why (and, for a dead letter, what the attempt wrote to stderr).
   */
  nack(m: ReceivedMessage, delayMs: number | undefined, reason?: string, stderr?: string): void;
  /**
   * Internal, for transactions: takes `m` over, unsettled, so that a
   * transaction settles it in its own commit (see {@link TRANSFER}).
   */
  transfer?(m: ReceivedMessage): Transferred | undefined;
}

/**
 * Internal: a delivery a transaction took over from its group consumer, and
 * what settling it needs: the group, its attempt rules, and how to apply the
 * settlement to the group's state (returning the offsets no longer held by
 * this delivery's lease), or to give it back when the transaction aborts.
 */
export interface Transferred {
  /** The group. */
  group: string;
  /** Attempts before a nack dead-letters. */
  maxAttempts: number;
  /** The dead-letter topic. */
  deadTopic: string;
  /** When a delivery first failed, if one did. */
  firstFailure?: number;
  /** The delay of a retry after this attempt fails. */
  retryDelay(): number;
  /** The state a missing group document starts from (a `GroupState` of `_group_store.ts`). */
  init(): unknown;
  /** Applies a settlement to a group state (as `init` gives); returns the offsets not held (stale). */
  apply(
    state: unknown,
    settle: {
      kind: "ack" | "retry" | "dead";
      notBefore?: number;
      failedAt?: number;
    },
  ): number;
  /** Gives the delivery back to its consumer, unsettled (the transaction aborted). */
  restore(): void;
}

/** Internal: takes a group delivery over for a transaction (see {@link Settler.transfer}). */
export const TRANSFER: unique symbol = Symbol("transfer");

const dec = new TextDecoder();

/**
 * Internal: set on a group delivery once its settler has settled it (ack,
 * nack or release), so that each delivery is settled once.
 */
export const SETTLED: unique symbol = Symbol("settled");

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

/**
 * A message read from a topic.
 *
 * @example
 * ```ts ignore
 * for await (const m of mq.subscribe("orders", { group: "billing" })) {
 *   console.log(m.offset, m.text());
 *   m.ack();
 * }
 * ```
 */
export class ReceivedMessage {
  /** The topic it was read from. */
  readonly topic: string;
  /** Its partition. */
  readonly partition: number;
  /** Its stored record. */
  readonly record: StoredRecord;
  /** Delivery attempt, from 1. */
  readonly attempt: number;
  /** The lease token of a group delivery. */
  readonly token: string | undefined;
  /** The group of a group delivery. */
  readonly group: string | undefined;
  /** Internal: settled by its settler already (see {@link SETTLED}). */
  [SETTLED] = false;
  #settler: Settler | undefined;

  /** Made by subscriptions; not meant to be constructed directly. */
  constructor(
    topic: string,
    partition: number,
    record: StoredRecord,
    attempt: number,
    token?: string,
    settler?: Settler,
    group?: string,
  ) {
    this.topic = topic;
    this.partition = partition;
    this.record = record;
    this.attempt = attempt;
    this.token = token;
    this.group = group;
    this.#settler = settler;
  }

  /** Its offset within the partition. */
  get offset(): number {
    return this.record.offset;
  }
  /** The payload bytes. */
  get payload(): Uint8Array {
    return this.record.payload;
  }
  /** Its key, if it was published with one. */
  get key(): string | undefined {
    return this.record.key;
  }
  /** Its id: the one it was published with, else `<partition>-<offset>`. */
  get id(): string {
    return this.record.id ?? `${this.partition}-${this.record.offset}`;
  }
  /** Its headers. */
  get headers(): Readonly<Record<string, string>> {
    return this.record.headers ?? NO_HEADERS;
  }
  /** When it was published, ms since the epoch. */
  get timestamp(): number {
    return this.record.timestamp;
  }
  /** For a group delivery: what `mq ack` takes to settle it from elsewhere. */
  get receipt(): string | undefined {
    return this.token === undefined
      ? undefined
      : formatReceipt(this.group ?? "", this.partition, this.offset, this.token);
  }
  /** The payload as UTF-8 text. */
  text(): string {
    return dec.decode(this.record.payload);
  }
  /** The payload parsed as JSON. */
  json<T = unknown>(): T {
    return JSON.parse(this.text());
  }
  /** Marks the message done for its group (committed with the group's next update). */
  ack(): void {
    this.#settler?.ack(this);
  }
  /** Internal: see {@link TRANSFER}. */
  [TRANSFER](): Transferred | undefined {
    return this.#settler?.transfer?.(this);
  }
  /**
   * Reports a failed attempt: the message is delivered again after `delayMs`
   * (default: the subscription's backoff), or, on its last attempt, moves to
   * the dead-letter topic with `reason` in its headers (and `stderr`, the
   * end of what the attempt wrote there, as `mq-dlq-stderr`).
   */
  nack(options?: { delayMs?: number; reason?: string; stderr?: string }): void {
    this.#settler?.nack(this, options?.delayMs, options?.reason, options?.stderr);
  }
}

/** The public shape of a received message. */
export type Message = ReceivedMessage;

/** A receipt: what settles a leased delivery from anywhere. */
export interface Receipt {
  /** The group the delivery belongs to. */
  group: string;
  /** The message's partition. */
  partition: number;
  /** The message's offset. */
  offset: number;
  /** The lease token of the delivery. */
  token: string;
}

/** `group:partition:offset:token`. */
export function formatReceipt(
  group: string,
  partition: number,
  offset: number,
  token: string,
): string {
  return `${group}:${partition}:${offset}:${token}`;
}

/** Parses a receipt, or undefined when it is not one. */
export function parseReceipt(text: string): Receipt | undefined {
  const m = /^([A-Za-z0-9._-]+):(\d+):(\d+):([a-z0-9.]+)$/.exec(text.trim());
  if (!m) return undefined;
  return { group: m[1], partition: Number(m[2]), offset: Number(m[3]), token: m[4] };
}
