/**
 * The state documents of the NATS backend: the JetStream KV bucket
 * `mq_state`, one key per document (names escaped so that "." separates
 * levels), compare-and-set by revision. On a replicated bucket the check is
 * the stream's last sequence instead, read from the stream's leader: a key's
 * revision check races between concurrent writers on a replicated stream in
 * nats-server 2.9 (both may win), the stream-wide one does not; it costs a
 * read more and fails on any write to the bucket meanwhile, which the core
 * retries.
 */
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { Versioned } from "../../core/adapter.ts";
import { MqError } from "../../core/errors.ts";
import { isTransient, type Retrier } from "./_retry.ts";

/** The stream of the state bucket. */
export const STATE_STREAM = "KV_mq_state";

/** The subject of a key in the state bucket. */
const stateSubject = (k: string) => `$KV.mq_state.${k}`;

/** State keys in the KV bucket: each name escaped so that "." separates levels. */
function kvKey(key: string[]): string {
  return key.map((k) => k.replaceAll("_", "__").replaceAll(".", "_d")).join(".");
}

function unescapeKey(k: string): string {
  return k.replace(/_(_|d)/g, (_, c) => (c === "_" ? "_" : "."));
}

function kvError(e: unknown): MqError {
  return MqError.is(e) ? e : new MqError("UNREACHABLE", `NATS KV: ${(e as Error).message}`, {
    cause: e,
  });
}

/** The state documents of one adapter, every call retried through failures that pass. */
export class StateBucket {
  #kv: KV;
  #js: JetStreamClient;
  #jsm: JetStreamManager;
  #retry: Retrier;
  #strict: boolean;

  /** `strict`: the bucket is replicated (compare-and-set by the stream's last sequence). */
  constructor(kv: KV, js: JetStreamClient, jsm: JetStreamManager, retry: Retrier, strict: boolean) {
    this.#kv = kv;
    this.#js = js;
    this.#jsm = jsm;
    this.#retry = retry;
    this.#strict = strict;
  }

  /** A document and its version. */
  async get(key: string[]): Promise<Versioned | undefined> {
    if (this.#strict) {
      const doc = await this.#retry.run("reading state", () => this.#readLatest(kvKey(key)))
        .catch((e) => {
          throw kvError(e);
        });
      return doc.value ? { value: doc.value, version: doc.version } : undefined;
    }
    const e = await this.#retry.run("reading state", () => this.#kv.get(kvKey(key))).catch((e) => {
      throw kvError(e);
    });
    if (!e || e.operation !== "PUT") return undefined;
    return { value: e.value, version: String(e.revision) };
  }

  /**
   * A key's latest value as its stream's leader has it, with the stream's
   * last sequence as the version (for the stream-wide compare-and-set).
   */
  async #readLatest(k: string): Promise<{ value?: Uint8Array; version: string }> {
    for (;;) {
      const last = (await this.#jsm.streams.info(STATE_STREAM)).state.last_seq;
      const m = await this.#jsm.streams.getMessage(STATE_STREAM, {
        last_by_subj: stateSubject(k),
      });
      // Written between the two reads: read again.
      if (m && m.seq > last) continue;
      const op = m?.header?.get("KV-Operation");
      if (!m || (op && op !== "PUT")) return { version: String(last) };
      return { value: m.data, version: String(last) };
    }
  }

  /**
   * Writes a document if its version is still `expected` (null: it must not
   * exist). A write whose answer was lost is tried again: if the first one
   * was stored, the second finds another version and this returns false, and
   * the core reads the document again, as after any concurrent write.
   */
  async compareAndSet(key: string[], expected: string | null, value: Uint8Array): Promise<boolean> {
    try {
      const k = kvKey(key);
      if (this.#strict) {
        let version = expected;
        if (version === null) {
          const doc = await this.#retry.run("reading state", () => this.#readLatest(k));
          if (doc.value) return false;
          version = doc.version;
        }
        await this.#retry.run(
          "writing state",
          () =>
            this.#js.publish(stateSubject(k), value, { expect: { lastSequence: Number(version) } }),
        );
        return true;
      }
      await this.#retry.run("writing state", async () => {
        if (expected === null) await this.#kv.create(k, value);
        else await this.#kv.update(k, value, Number(expected));
      });
      return true;
    } catch (e) {
      const msg = (e as Error).message ?? "";
      if (/wrong last sequence|key exists|exists/i.test(msg)) return false;
      throw kvError(e);
    }
  }

  /** Deletes a document and every document below it. */
  async delete(key: string[]): Promise<void> {
    const k = kvKey(key);
    const purge = (name: string) =>
      this.#retry.run("removing state", () => this.#kv.purge(name)).catch((e) => {
        if (isTransient(e)) throw kvError(e);
      });
    await purge(k);
    // Subjects stay listed after a purge: purge only what still holds a document.
    for (const name of await this.#keys(`${k}.>`)) {
      const e = await this.#retry.run("reading state", () => this.#kv.get(name)).catch((e) => {
        throw kvError(e);
      });
      if (e && e.operation === "PUT") await purge(name);
    }
  }

  /** The names directly below `prefix` that hold a document. */
  async list(prefix: string[]): Promise<string[]> {
    const out: string[] = [];
    for (const name of await this.#keys(`${kvKey(prefix)}.*`)) {
      const e = await this.#retry.run("reading state", () => this.#kv.get(name)).catch((e) => {
        throw kvError(e);
      });
      if (e && e.operation === "PUT") out.push(unescapeKey(name.slice(name.lastIndexOf(".") + 1)));
    }
    return out;
  }

  /**
   * The keys of the bucket matching `filter` that were ever written (also
   * those deleted since: callers read each). One stream-info request of the
   * subjects (paged by the client), not `kv.keys()`: its consumer ends only
   * after 5 s without an update, so it never ended while a group consumer
   * kept writing its document (`mq groups` hung under a running `mq work`).
   */
  #keys(filter: string): Promise<string[]> {
    const prefix = stateSubject("");
    return this.#retry.run("listing state", async () => {
      const info = await this.#jsm.streams.info(STATE_STREAM, {
        subjects_filter: stateSubject(filter),
      });
      return Object.keys(info.state.subjects ?? {}).map((s) => s.slice(prefix.length));
    }).catch((e) => {
      throw kvError(e);
    });
  }
}
