/** Shared helpers of the conformance cases. */
import type { StorageAdapter } from "../../core/adapter.ts";
import type { Mq } from "../../core/client.ts";
import { MqError } from "../../core/errors.ts";
import type { ReceivedMessage } from "../../core/message.ts";

/** What a backend under test is and can do. */
export interface Features {
  /**
   * Opens the backend; with `reopen`, the same store again (while the first
   * may still be open: that is how multi-process cases get a second client).
   */
  open(options?: { reopen?: boolean }): Promise<StorageAdapter>;
  /** Cleans up after a case. */
  cleanup?(): Promise<void>;
  /** Data survives close and reopen. */
  persistent: boolean;
  /**
   * How transactions hold (the adapter's `capabilities.transactions`, checked
   * by a case): atomic cases are skipped where it is `"effectively-once"`.
   */
  transactions: "atomic" | "effectively-once";
  /**
   * The adapter's `capabilities.maxTransactionBytes` (checked by a case), when
   * small enough to test a refusal (the case is skipped otherwise).
   */
  maxTransactionBytes?: number;
  /** Skip everything, with this reason (e.g. a broker that is not installed). */
  skip?: string;
}

/** What a case needs of the backend; the case is skipped where it is ruled out. */
export interface CaseNeeds {
  /** Data survives close and reopen. */
  persistent?: boolean;
  /** Several clients (processes) share one store (`capabilities.multiProcess`). */
  multiProcess?: boolean;
  /** Transactions are atomic (`capabilities.transactions`). */
  atomicTransactions?: boolean;
  /** A transaction size limit small enough to test (`capabilities.maxTransactionBytes`). */
  transactionLimit?: boolean;
}

/** Registers one case: a title, the body, and what it needs. */
export type DefineCase = (
  title: string,
  fn: (mq: Mq, f: Features) => Promise<void>,
  needs?: CaseNeeds,
) => void;

/** Decodes UTF-8. */
export const dec = new TextDecoder();
let topicSeq = 0;
/** A topic name no other case uses. */
export const topicName = (base: string): string =>
  `${base}-${Date.now().toString(36)}-${topicSeq++}`;

/** The payloads of a topic as text, read without a group. */
export async function texts(
  mq: Mq,
  topic: string,
  options: Parameters<Mq["subscribe"]>[1] = {},
): Promise<string[]> {
  const out: string[] = [];
  for await (const m of mq.subscribe(topic, { follow: false, ...options })) out.push(m.text());
  return out;
}

/** Everything a group gets now, acked unless `ack` is false. */
export async function drain(
  mq: Mq,
  topic: string,
  group: string,
  ack = true,
): Promise<ReceivedMessage[]> {
  const out: ReceivedMessage[] = [];
  const sub = mq.subscribe(topic, { group, follow: false });
  for await (const b of sub.batches()) {
    out.push(...b);
    if (ack) { for (const m of b) m.ack(); }
  }
  return out;
}

/** A predicate for `rejects`: an MqError of code `c`. */
export const code = (c: string) => (e: unknown): boolean => MqError.is(e) && e.code === c;
