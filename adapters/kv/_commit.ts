/**
 * Atomic commits across partitions and state documents of the kv backend:
 * `appendAtomic` (several topics at once) and transactions' commit. Every
 * partition head is read fresh and checked, every state document checked on
 * its versionstamp, native dedup planned on the fresh heads, and all of it
 * written in one Deno KV commit, or nothing (what does not fit one commit is
 * refused, not split).
 *
 * @module
 */
import type {
  PartitionWrite,
  StateWrite,
  TransactionCommit,
  TransactionCommitted,
  TransactionWrite,
} from "../../core/adapter.ts";
import { MqError } from "../../core/errors.ts";
import { pickRecords } from "../../core/record.ts";
import type { KvAppender } from "./_append.ts";
import { type DedupEntry, entriesOf, planDedup } from "./_dedup.ts";
import { type Head, headOf, partKey, splitPartKey } from "./_heads.ts";
import { type KvCalls, sleep } from "./_kv_calls.ts";
import {
  CommitBudget,
  KV_CHECKS,
  KV_COMMIT_BYTES,
  KV_GET_MANY,
  KV_MUTATIONS,
  KV_VALUE_BYTES,
} from "./_limits.ts";
import { firstTooLarge, tooLargeError } from "./_record_size.ts";

/** Commits of several partitions and documents at once; see the module doc. */
export class KvCommits {
  readonly #kv: Deno.Kv;
  readonly #calls: KvCalls;
  readonly #appender: KvAppender;

  constructor(kv: Deno.Kv, calls: KvCalls, appender: KvAppender) {
    this.#kv = kv;
    this.#calls = calls;
    this.#appender = appender;
  }

  /** Appends every write in one commit: the first offsets, or undefined when it cannot be one. */
  async appendAtomic(writes: PartitionWrite[]): Promise<number[] | undefined> {
    if (writes.length === 0) return [];
    for (const w of writes) if (firstTooLarge(w.batch)) return undefined;
    const r = await this.#commitAll(writes, []);
    return typeof r === "string" ? undefined : r.firsts;
  }

  /**
   * One transaction in one KV commit (see {@link StorageAdapter.commitTransaction}):
   * the appends, checked on every partition head, and the state documents,
   * checked on their versionstamps.
   *
   * @throws {MqError} `TRANSACTION_TOO_LARGE`, having written nothing, beyond one commit
   */
  async commitTransaction(commit: TransactionCommit): Promise<TransactionCommitted | "conflict"> {
    for (const w of commit.writes) {
      const t = firstTooLarge(w.batch);
      if (t) throw tooLargeError(t, 0);
    }
    for (const st of commit.states) {
      if (st.value.length > KV_VALUE_BYTES - 64) {
        throw new MqError(
          "TRANSACTION_TOO_LARGE",
          `the transaction's state document ${
            st.key.join("/")
          } is ${st.value.length} bytes; a kv transaction holds documents of up to ${
            KV_VALUE_BYTES - 64
          } bytes`,
        );
      }
    }
    const r = await this.#commitAll(commit.writes, commit.states);
    if (typeof r === "string" && r !== "conflict") {
      throw new MqError(
        "TRANSACTION_TOO_LARGE",
        `the transaction does not fit one Deno KV commit (${r}; at most ${KV_COMMIT_BYTES} bytes, ${KV_MUTATIONS} mutations and ${KV_CHECKS} partitions and documents): nothing was written`,
      );
    }
    return r;
  }

  /**
   * Appends `writes` and replaces `states` in one commit: the first offsets,
   * `"conflict"` when a state document's version changed, or what did not
   * fit (nothing written).
   */
  async #commitAll(
    given: TransactionWrite[],
    states: StateWrite[],
  ): Promise<TransactionCommitted | string> {
    let writes = given;
    const parts = [...new Set(given.map((w) => partKey(w.topic, w.partition)))];
    if (parts.length + states.length > KV_CHECKS) {
      return `${parts.length} partitions and ${states.length} documents`;
    }
    const stateKeys = states.map((st) => ["state", ...st.key] as Deno.KvKey);
    for (let attempt = 0;; attempt++) {
      // Every head, fresh.
      const heads = new Map<string, Head>();
      const keys = parts.map((k) => ["head", ...splitPartKey(k)] as Deno.KvKey);
      for (let i = 0; i < keys.length; i += KV_GET_MANY) {
        const got = await this.#calls.run(
          "append",
          () => this.#kv.getMany(keys.slice(i, i + KV_GET_MANY)),
        );
        got.forEach((e, j) => heads.set(parts[i + j], headOf(e)));
      }
      // The documents: still the expected versions? A chunked one's chunks go.
      const dropChunks: Deno.KvKey[] = [];
      for (let i = 0; i < stateKeys.length; i += KV_GET_MANY) {
        const got = await this.#calls.run(
          "read a state document",
          () => this.#kv.getMany(stateKeys.slice(i, i + KV_GET_MANY)),
        );
        for (let j = 0; j < got.length; j++) {
          const st = states[i + j];
          if (got[j].versionstamp !== st.expected) return "conflict";
          const v = got[j].value as { chunks?: unknown } | null;
          if (v && !(v instanceof Uint8Array) && typeof v.chunks === "number") {
            for (let c = 0; c < v.chunks; c++) dropChunks.push(["chunk", ...st.key, c]);
          }
        }
      }
      const locked = [...heads.entries()].find(([, h]) => h.lock);
      if (locked) {
        const [t, p] = splitPartKey(locked[0]);
        await this.#appender.waitForLock(t, p, locked[1]);
        continue;
      }
      // Native dedup, planned on the fresh heads, written in the same commit.
      const kept: (number[] | undefined)[] = [];
      const entries: DedupEntry[][] = [];
      writes = [];
      for (const w of given) {
        if (!w.dedup) {
          kept.push(undefined);
          entries.push([]);
          writes.push(w);
          continue;
        }
        const head = heads.get(partKey(w.topic, w.partition))!;
        const d = await planDedup(
          this.#kv,
          this.#calls,
          { topic: w.topic, partition: w.partition, head },
          w.batch,
          w.dedup,
        );
        kept.push(d.kept);
        entries.push(entriesOf(d));
        writes.push({ ...w, batch: pickRecords(w.batch, d.kept) });
      }
      // Several writes to one partition follow each other.
      const ends = new Map([...heads].map(([k, h]) => [k, h.end]));
      const plans = this.#appender.encode(writes.map((w) => {
        const k = partKey(w.topic, w.partition);
        const h = heads.get(k)!;
        const head = { ...h, end: ends.get(k)! };
        ends.set(k, head.end + w.batch.count);
        return { topic: w.topic, partition: w.partition, head, batch: w.batch };
      }));
      const mutations = plans.flatMap((p, i) =>
        this.#appender.mutations(
          p,
          entries[i],
          writes[i].dedup?.now ?? 0,
          writes[i].dedup?.windowMs ?? 0,
        )
      );
      for (let i = 0; i < states.length; i++) {
        mutations.push({
          key: stateKeys[i],
          value: states[i].value,
          bytes: states[i].value.length,
        });
      }
      const budget = new CommitBudget();
      for (const k of parts) {
        const [t, p] = splitPartKey(k);
        budget.add(["head", t, p], 16);
        budget.add(["bytes", t, p], 16);
      }
      for (const k of dropChunks) budget.add(k, 0);
      for (const m of mutations) {
        if (!budget.fits(m.key, m.bytes)) {
          const bytes = mutations.reduce((n, x) => n + x.bytes, 0);
          return `${mutations.length} values of ${bytes} bytes`;
        }
        budget.add(m.key, m.bytes);
      }
      const res = await this.#calls.run("append", () => {
        const op = this.#kv.atomic();
        for (const k of parts) {
          op.check({ key: ["head", ...splitPartKey(k)], versionstamp: heads.get(k)!.versionstamp });
        }
        states.forEach((st, i) => op.check({ key: stateKeys[i], versionstamp: st.expected }));
        for (const m of mutations) op.set(m.key, m.value, m.options);
        for (const k of dropChunks) op.delete(k);
        for (const k of parts) {
          const [t, p] = splitPartKey(k);
          let bytes = 0;
          for (const plan of plans) {
            if (plan.topic === t && plan.partition === p) bytes += plan.bytes;
          }
          op.set(["head", t, p], BigInt(ends.get(k)!));
          op.sum(["bytes", t, p], BigInt(bytes));
        }
        return op.commit();
      });
      if (res.ok) {
        for (const k of parts) {
          this.#appender.heads.set(k, { end: ends.get(k)!, versionstamp: res.versionstamp });
        }
        return { firsts: plans.map((p) => p.head.end), kept };
      }
      // A head moved (another writer) or a document changed: look again.
      for (const k of parts) this.#appender.heads.delete(k);
      await sleep(Math.random() * Math.min(20, attempt + 1));
    }
  }
}
