/** Shared helpers of the conformance cases. */
import type { Capabilities, StorageAdapter } from "../../core/adapter.ts";
import type { Mq } from "../../core/client.ts";
import { MqError } from "../../core/errors.ts";
import type { ReceivedMessage } from "../../core/message.ts";

/**
 * How to open a backend under test. What it can do is not said here: the
 * suite reads the adapter's own `capabilities`, and a case that they rule
 * out is registered as ignored.
 */
export interface Features {
  /**
   * Opens the backend; with `reopen`, the same store again (while the first
   * may still be open: that is how multi-process cases get a second client).
   */
  open(options?: { reopen?: boolean }): Promise<StorageAdapter>;
  /** Cleans up after a case. */
  cleanup?(): Promise<void>;
  /** Skip everything, with this reason (e.g. a broker that is not installed). */
  skip?: string;
}

/** What a case needs of the backend; the case is ignored where the capabilities rule it out. */
export interface CaseNeeds {
  /** Data survives close and reopen (`capabilities.persistent`). */
  persistent?: boolean;
  /** Several clients (processes) share one store (`capabilities.multiProcess`). */
  multiProcess?: boolean;
  /** Transactions are atomic (`capabilities.transactions`). */
  atomicTransactions?: boolean;
  /**
   * A transaction size limit small enough to test, at most
   * {@link TESTABLE_TRANSACTION_BYTES} (`capabilities.maxTransactionBytes`).
   */
  transactionLimit?: boolean;
  /**
   * Every append gets one dense run of offsets, even with other clients
   * appending at once (`capabilities.interleavedAppends` unset).
   */
  denseConcurrentAppends?: boolean;
}

/** The largest transaction limit a case fills to test the refusal. */
export const TESTABLE_TRANSACTION_BYTES = 8 * 1024 * 1024;

/**
 * Why `caps` rule out a case that `needs` this, or undefined when they do
 * not; `caps.transactions` as the core derives it where unset.
 */
export function ruledOut(caps: Capabilities, needs: CaseNeeds): string | undefined {
  if (needs.persistent && !caps.persistent) return "not persistent";
  if (needs.multiProcess && !caps.multiProcess) return "not shared by processes";
  if (needs.atomicTransactions && caps.transactions !== "atomic") return "transactions not atomic";
  if (
    needs.transactionLimit &&
    !(caps.maxTransactionBytes !== undefined &&
      caps.maxTransactionBytes <= TESTABLE_TRANSACTION_BYTES)
  ) return "no transaction limit small enough to test";
  if (needs.denseConcurrentAppends && caps.interleavedAppends) return "appends interleave";
  return undefined;
}

/** Registers one case: a title, the body, and what it needs. */
export type DefineCase = (
  title: string,
  fn: (mq: Mq, f: Features) => Promise<void>,
  needs?: CaseNeeds,
) => void;

/** Registers one case of the raw storage contract, run on the adapter itself (no `Mq`). */
export type DefineStorageCase = (
  title: string,
  fn: (adapter: StorageAdapter, f: Features) => Promise<void>,
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
