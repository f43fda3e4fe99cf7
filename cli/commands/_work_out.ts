/**
 * `mq work --out TOPIC`: the lines a command printed become messages of
 * TOPIC, committed with the input's ack in one transaction (`mq.transaction`),
 * so that a crash at any point neither loses an input nor repeats an output
 * (effectively once on a backend without atomic commits, see
 * `capabilities.transactions`: there each output gets the id
 * `<topic>:<partition>:<offset>:<line>` of its input, deduplicated by the
 * backend). Finished runs are committed in groups, one transaction per group
 * while the previous one is being written.
 *
 * @module
 */
import type { Message, Mq, RecordMeta } from "../../mod.ts";
import { MqError } from "../../core/errors.ts";
import { batchOf } from "../../core/internal.ts";

/** The options of `--out`, as plain values. */
export interface WorkOutOptions {
  /** The topic the command's stdout lines go to. */
  topic: string;
  /** Give every output the input's key (so outputs keep the inputs' per-key order). */
  keyFromInput?: boolean;
}

/** Runs waiting to be committed: at most this many per transaction. */
const MAX_GROUP = 256;

/**
 * Commits the outputs of finished runs with their inputs' acks.
 *
 * @example
 * ```ts ignore
 * const out = new WorkOutput(mq, { topic: "results" });
 * const r = await out.add(message, stdoutBytes); // checked; queued
 * if ("committed" in r) console.log(await r.committed); // true once committed
 * await out.drain();
 * ```
 */
export class WorkOutput {
  #mq: Mq;
  #options: WorkOutOptions;
  #waiting: { m: Message; lines: Uint8Array[]; done: (ok: boolean) => void }[] = [];
  #running = new Set<Promise<void>>();
  #failure: unknown;
  /** Effectively once: outputs carry ids derived from their input. */
  #derivedIds: boolean;
  /** Runs committed, and runs whose lease had gone to another worker (not committed). */
  readonly stats = { committed: 0, outputs: 0, lostLeases: 0 };

  constructor(mq: Mq, options: WorkOutOptions) {
    this.#mq = mq;
    this.#options = options;
    this.#derivedIds = mq.capabilities.transactions !== "atomic";
  }

  /** The first failure of a commit (other than a lost lease), if any. */
  get failure(): unknown {
    return this.#failure;
  }

  /**
   * Checks a finished run's lines and queues them with its input: resolves
   * (once checked) to why a line cannot be a message of the topic (nothing is
   * queued: the run counts as failed), or to the commit, which resolves to
   * true once committed and false when the input's lease had gone to another
   * worker (or a commit failed, see {@link failure}).
   */
  async add(
    m: Message,
    stdout: Uint8Array,
  ): Promise<{ invalid: string } | { committed: Promise<boolean> }> {
    const lines = splitLines(stdout);
    try {
      await this.#mq.checkRecords(this.#options.topic, batchOf(lines));
    } catch (e) {
      if (!MqError.is(e) || e.details.index === undefined) throw e;
      return { invalid: `output line ${e.details.index + 1}: ${e.message}` };
    }
    const committed = new Promise<boolean>((done) => {
      this.#waiting.push({ m, lines, done });
    });
    this.#pump();
    return { committed };
  }

  /** Resolves when nothing waits or is being committed. */
  async drain(): Promise<void> {
    while (this.#running.size > 0) await Promise.all(this.#running);
  }

  /** Starts a commit, one at a time, of every run that finished meanwhile (a group commit). */
  #pump(): void {
    while (this.#running.size < 1 && this.#waiting.length > 0) {
      const group = this.#waiting.splice(0, MAX_GROUP);
      const p: Promise<void> = this.#commit(group).finally(() => {
        this.#running.delete(p);
        this.#pump();
      });
      this.#running.add(p);
    }
  }

  async #commit(group: { m: Message; lines: Uint8Array[]; done: (ok: boolean) => void }[]) {
    if (this.#failure !== undefined) {
      for (const g of group) g.done(false);
      return;
    }
    try {
      await this.#transaction(group);
      for (const g of group) g.done(true);
    } catch (e) {
      if (!MqError.is(e, "LEASE_EXPIRED") || group.length === 1) {
        if (MqError.is(e, "LEASE_EXPIRED")) this.stats.lostLeases++;
        else this.#failure ??= e;
        for (const g of group) g.done(false);
        return;
      }
      // One lease of the group was lost: the others commit one by one.
      for (const g of group) {
        try {
          await this.#transaction([g]);
          g.done(true);
        } catch (e) {
          if (MqError.is(e, "LEASE_EXPIRED")) this.stats.lostLeases++;
          else this.#failure ??= e;
          g.done(false);
        }
      }
    }
  }

  async #transaction(group: { m: Message; lines: Uint8Array[] }[]): Promise<void> {
    const { topic, keyFromInput } = this.#options;
    await this.#mq.transaction((tx) => {
      for (const { m, lines } of group) {
        if (lines.length > 0) {
          const key = keyFromInput ? m.key : undefined;
          const origin = `${m.topic}:${m.partition}:${m.offset}`;
          const meta: RecordMeta[] | undefined = this.#derivedIds
            ? lines.map((_, i) => ({ key, id: `${origin}:${i}` }))
            : key !== undefined
            ? lines.map(() => ({ key }))
            : undefined;
          tx.publishRecords(topic, batchOf(lines, meta));
        }
        tx.ack(m);
      }
    });
    this.stats.committed += group.length;
    for (const g of group) this.stats.outputs += g.lines.length;
  }
}

/**
 * The lines of a command's stdout (LF or CRLF; a last line without a newline counts).
 *
 * @example
 * ```ts
 * import { splitLines } from "./_work_out.ts";
 * const lines = splitLines(new TextEncoder().encode("a\r\nb\nc"));
 * console.log(lines.length); // 3
 * ```
 */
export function splitLines(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let from = 0;
  for (;;) {
    const nl = bytes.indexOf(10, from);
    if (nl < 0) break;
    const end = nl > from && bytes[nl - 1] === 13 ? nl - 1 : nl;
    out.push(bytes.subarray(from, end));
    from = nl + 1;
  }
  if (from < bytes.length) out.push(bytes.subarray(from));
  return out;
}
