import { headers as natsHeaders, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import {
  DeliverPolicy,
  jetstream,
  type JetStreamClient,
  type JetStreamManager,
  jetstreamManager,
  type JsMsg,
  type PubAck,
  StorageType,
} from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type {
  Capabilities,
  DeduplicatedAppend,
  LogReader,
  PartitionBounds,
  StorageAdapter,
  Versioned,
} from "../../core/adapter.ts";
import { MqError } from "../../core/errors.ts";
import type { RecordBatch, StoredRecord } from "../../core/record.ts";

/** Outstanding publish acks at once. */
const WINDOW = 2048;
const H = {
  key: "Mq-Key",
  id: "Nats-Msg-Id",
  plainId: "Mq-Id",
  headers: "Mq-Headers",
  ts: "Mq-Ts",
  deliver: "Mq-Deliver-At",
  expires: "Mq-Expires-At",
  attempt: "Mq-Attempt",
} as const;

/** The stream of a topic's partition: a readable name, made unique by a hash. */
export function streamName(topic: string, partition: number): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < topic.length; i++) h = Math.imul(h ^ topic.charCodeAt(i), 0x01000193);
  return `mq_${topic.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 120)}_${
    (h >>> 0).toString(36)
  }_${partition}`;
}

/** The subject a topic's partition is stored under. */
export function subjectOf(topic: string, partition: number): string {
  return `mq.${topic}.${partition}`;
}

/** State keys in the KV bucket: each name escaped so that "." separates levels. */
function kvKey(key: string[]): string {
  return key.map((k) => k.replaceAll("_", "__").replaceAll(".", "_d")).join(".");
}

function unescapeKey(k: string): string {
  return k.replace(/_(_|d)/g, (_, c) => (c === "_" ? "_" : "."));
}

/**
 * The NATS JetStream backend: `nats://[user:pass@]host:port`. A topic's
 * partition is a stream (subject `mq.<topic>.<partition>`), the stream
 * sequence minus one is the offset, and state documents live in the
 * JetStream KV bucket `mq_state` (revision-checked updates). Dedup by
 * message id is JetStream's own (`appendDeduplicated`): the id goes out as
 * `Nats-Msg-Id` and the stream's duplicate window is the topic's.
 *
 * | capability | |
 * | --- | --- |
 * | persistent | yes (file storage) |
 * | multiProcess | yes (and many machines) |
 * | native dedup | yes (`Nats-Msg-Id`, the stream's duplicate window) |
 * | atomic writes across topics | no |
 * | transactions | effectively once: nats-server 2.9 has no atomic batch, so `mq.transaction` publishes the outputs first, each with an id derived from the input it settles and its index (`Nats-Msg-Id`, deduplicated within the topic's dedup window), and writes the ack only after every publish is confirmed; a crash in between redelivers the input and its outputs are dropped as duplicates. A transaction that settles no delivery (`mq pub --atomic`) cannot be atomic here and is refused by the CLI. |
 *
 * One departure from the storage contract: when several clients append to
 * one partition at the same moment, JetStream interleaves their messages, so
 * one batch's records may not get consecutive offsets (each one's own order
 * holds, nothing is lost or repeated). The core assumes consecutive offsets
 * only to name an id-less delayed message `partition-offset` for `mq cancel`.
 *
 * @example
 * ```ts ignore
 * import { connect } from "../../mod.ts";
 * const mq = await connect("nats://127.0.0.1:4222");
 * await mq.publish("orders", "hello");
 * ```
 */
export class NatsAdapter implements StorageAdapter {
  readonly capabilities: Capabilities = {
    persistent: true,
    multiProcess: true,
    maxMessageBytes: 0,
    transactions: "effectively-once",
  };
  #nc: NatsConnection;
  #js: JetStreamClient;
  #jsm: JetStreamManager;
  #kv: KV;
  /** Streams known to exist, with their duplicate window (ns). */
  #streams = new Map<string, number>();
  #closed = false;

  private constructor(nc: NatsConnection, jsm: JetStreamManager, kv: KV) {
    this.#nc = nc;
    this.#jsm = jsm;
    this.#js = jetstream(nc);
    this.#kv = kv;
    // What one message may hold: the server's max_payload less room for headers.
    this.capabilities.maxMessageBytes = Math.max(1024, (nc.info?.max_payload ?? 1048576) - 4096);
  }

  /**
   * Opens the backend on a connection (JetStream must be enabled).
   *
   * @throws {MqError} `UNREACHABLE` when JetStream is not available
   */
  static async open(nc: NatsConnection): Promise<NatsAdapter> {
    try {
      const jsm = await jetstreamManager(nc);
      const kv = await new Kvm(nc).create("mq_state", { history: 1 });
      return new NatsAdapter(nc, jsm, kv);
    } catch (cause) {
      await nc.close().catch(() => {});
      throw new MqError(
        "UNREACHABLE",
        `NATS JetStream is not available: ${(cause as Error).message}`,
        { cause },
      );
    }
  }

  #check(): void {
    if (this.#closed) throw new MqError("CLOSED", "the nats backend is closed");
  }

  /**
   * The stream of a partition, created on first use (with `windowMs` as its
   * duplicate window, else JetStream's default of two minutes).
   */
  async #ensureStream(topic: string, partition: number, windowMs?: number): Promise<string> {
    const name = streamName(topic, partition);
    if (this.#streams.has(name)) return name;
    let window: number;
    try {
      window = (await this.#jsm.streams.info(name)).config.duplicate_window;
    } catch (e) {
      if (!/not found/i.test((e as Error).message)) throw unreachable(e);
      window = Math.max(1, windowMs ?? 120_000) * 1_000_000;
      try {
        await this.#jsm.streams.add({
          name,
          subjects: [subjectOf(topic, partition)],
          storage: StorageType.File,
          duplicate_window: window,
        });
      } catch (e) {
        // Created meanwhile by another client: fine.
        window = (await this.#jsm.streams.info(name).catch(() => {
          throw unreachable(e);
        })).config.duplicate_window;
      }
    }
    this.#streams.set(name, window);
    return name;
  }

  /** Sets a stream's duplicate window to `windowMs` where it differs. */
  async #ensureWindow(stream: string, windowMs: number): Promise<void> {
    const want = Math.max(1, windowMs) * 1_000_000;
    if (this.#streams.get(stream) === want) return;
    try {
      const si = await this.#jsm.streams.info(stream);
      if (si.config.duplicate_window !== want) {
        await this.#jsm.streams.update(stream, { ...si.config, duplicate_window: want });
      }
    } catch (e) {
      throw unreachable(e);
    }
    this.#streams.set(stream, want);
  }

  async append(topic: string, partition: number, batch: RecordBatch): Promise<number> {
    this.#check();
    await this.#ensureStream(topic, partition);
    const acks = await this.#publish(topic, partition, batch, false);
    return acks.length > 0 ? acks[0].seq - 1 : (await this.bounds(topic, partition)).end;
  }

  /**
   * Appends with JetStream's own dedup: each id goes out as `Nats-Msg-Id`,
   * the stream's duplicate window is `windowMs`, and the server drops a
   * repeat (its ack says `duplicate`), atomically with the append. The kept
   * records' offsets are consecutive when no other client appends to the
   * partition at the same time (JetStream interleaves concurrent publishers).
   */
  async appendDeduplicated(
    topic: string,
    partition: number,
    batch: RecordBatch,
    windowMs: number,
  ): Promise<DeduplicatedAppend> {
    this.#check();
    if (windowMs <= 0) {
      const first = await this.append(topic, partition, batch);
      return { first, kept: Array.from({ length: batch.count }, (_, i) => i) };
    }
    await this.#ensureWindow(await this.#ensureStream(topic, partition, windowMs), windowMs);
    const acks = await this.#publish(topic, partition, batch, true);
    const kept: number[] = [];
    for (let i = 0; i < acks.length; i++) if (!acks[i].duplicate) kept.push(i);
    return { first: kept.length > 0 ? acks[kept[0]].seq - 1 : -1, kept };
  }

  /**
   * Publishes every record of `batch`, with up to {@link WINDOW} acks
   * outstanding (no await per message); resolves to the acks in record
   * order. Ids go out as `Nats-Msg-Id` (deduplicated by the server) only with
   * `dedup`, else as `Mq-Id` (the core has deduplicated already).
   */
  async #publish(
    topic: string,
    partition: number,
    batch: RecordBatch,
    dedup: boolean,
  ): Promise<PubAck[]> {
    const subject = subjectOf(topic, partition);
    const acks: PubAck[] = [];
    const half = WINDOW / 2;
    let chunk: Promise<PubAck>[] = [];
    let previous: Promise<PubAck[]> | undefined;
    try {
      for (let i = 0; i < batch.count; i++) {
        const m = batch.meta?.[i];
        const payload = batch.data.subarray(batch.starts[i], batch.ends[i]);
        let h: MsgHdrs | undefined;
        let msgID: string | undefined;
        if (m) {
          h = natsHeaders();
          if (m.key !== undefined) h.set(H.key, encodeURIComponent(m.key));
          if (m.id !== undefined) {
            if (dedup) msgID = encodeURIComponent(m.id);
            else h.set(H.plainId, encodeURIComponent(m.id));
          }
          if (m.headers && Object.keys(m.headers).length > 0) {
            h.set(H.headers, encodeURIComponent(JSON.stringify(m.headers)));
          }
          if (m.timestamp !== undefined) h.set(H.ts, String(m.timestamp));
          if (m.deliverAt !== undefined) h.set(H.deliver, String(m.deliverAt));
          if (m.expiresAt !== undefined) h.set(H.expires, String(m.expiresAt));
          if (m.attempt) h.set(H.attempt, String(m.attempt));
        }
        chunk.push(this.#js.publish(subject, payload, { headers: h, msgID }));
        if (chunk.length === half) {
          if (previous) { for (const a of await previous) acks.push(a); }
          previous = Promise.all(chunk);
          chunk = [];
        }
      }
      if (previous) { for (const a of await previous) acks.push(a); }
      previous = undefined;
      for (const a of await Promise.all(chunk)) acks.push(a);
      return acks;
    } catch (cause) {
      // Let every outstanding publish settle before reporting.
      await Promise.allSettled([...(previous ? [previous] : []), ...chunk]);
      throw new MqError("UNREACHABLE", `publishing to NATS failed: ${(cause as Error).message}`, {
        cause,
      });
    }
  }

  async openReader(topic: string, partition: number, from: number): Promise<LogReader> {
    this.#check();
    const stream = await this.#ensureStream(topic, partition);
    let next = Math.max(from, (await this.bounds(topic, partition)).start);
    let consumer: Awaited<ReturnType<JetStreamClient["consumers"]["get"]>> | undefined;
    let consumerAt = -1;
    return {
      read: async (max: number) => {
        const { end } = await this.bounds(topic, partition);
        if (next >= end) return [];
        if (!consumer || consumerAt !== next) {
          await consumer?.delete().catch(() => {});
          consumer = await this.#js.consumers.get(stream, {
            deliver_policy: DeliverPolicy.StartSequence,
            opt_start_seq: next + 1,
          });
          consumerAt = next;
        }
        const want = Math.min(max, end - next);
        const out: StoredRecord[] = [];
        const msgs = await consumer.fetch({ max_messages: want, expires: 2000 });
        for await (const m of msgs) {
          const r = toRecord(m);
          if (r.offset >= next) out.push(r);
          if (out.length >= want) break;
        }
        if (out.length > 0) next = out[out.length - 1].offset + 1;
        consumerAt = next;
        return out;
      },
      close: () => {
        void consumer?.delete().catch(() => {});
        consumer = undefined;
      },
    };
  }

  async bounds(topic: string, partition: number): Promise<PartitionBounds> {
    this.#check();
    try {
      const si = await this.#jsm.streams.info(streamName(topic, partition));
      const end = si.state.last_seq;
      const start = si.state.messages === 0 ? end : si.state.first_seq - 1;
      return { start, end };
    } catch (e) {
      if (/not found/i.test((e as Error).message)) return { start: 0, end: 0 };
      throw new MqError("UNREACHABLE", `NATS: ${(e as Error).message}`, { cause: e });
    }
  }

  async storedBytes(topic: string, partition: number): Promise<number> {
    try {
      return (await this.#jsm.streams.info(streamName(topic, partition))).state.bytes;
    } catch {
      return 0;
    }
  }

  async waitFor(
    topic: string,
    partition: number,
    offset: number,
    signal: AbortSignal,
    timeoutMs: number,
  ): Promise<void> {
    if (signal.aborted || (await this.bounds(topic, partition)).end > offset) return;
    // Listen first, then look once more: a message published between the
    // first look and the listening would otherwise wait out the timeout.
    const sub = this.#nc.subscribe(subjectOf(topic, partition), { max: 1, timeout: timeoutMs });
    const onAbort = () => sub.unsubscribe();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      if ((await this.bounds(topic, partition)).end > offset) return;
      for await (const _ of sub) break;
    } catch {
      // timed out
    } finally {
      signal.removeEventListener("abort", onAbort);
      sub.unsubscribe();
    }
  }

  async trim(topic: string, partition: number, before: number): Promise<void> {
    this.#check();
    const stream = await this.#ensureStream(topic, partition);
    await this.#jsm.streams.purge(stream, { seq: before + 1 });
  }

  async dropLog(topic: string): Promise<void> {
    this.#check();
    const prefix = streamName(topic, 0).replace(/_0$/, "_");
    for await (const name of this.#jsm.streams.names()) {
      if (name.startsWith(prefix) && /^\d+$/.test(name.slice(prefix.length))) {
        await this.#jsm.streams.delete(name).catch(() => {});
        this.#streams.delete(name);
      }
    }
  }

  async getState(key: string[]): Promise<Versioned | undefined> {
    this.#check();
    const e = await this.#kv.get(kvKey(key));
    if (!e || e.operation !== "PUT") return undefined;
    return { value: e.value, version: String(e.revision) };
  }

  async compareAndSet(key: string[], expected: string | null, value: Uint8Array): Promise<boolean> {
    this.#check();
    try {
      if (expected === null) await this.#kv.create(kvKey(key), value);
      else await this.#kv.update(kvKey(key), value, Number(expected));
      return true;
    } catch (e) {
      const msg = (e as Error).message ?? "";
      if (/wrong last sequence|key exists|exists/i.test(msg)) return false;
      throw new MqError("UNREACHABLE", `NATS KV: ${msg}`, { cause: e });
    }
  }

  async deleteState(key: string[]): Promise<void> {
    this.#check();
    const k = kvKey(key);
    await this.#kv.purge(k).catch(() => {});
    const below: string[] = [];
    for await (const name of await this.#kv.keys(`${k}.>`)) below.push(name);
    for (const name of below) await this.#kv.purge(name).catch(() => {});
  }

  async listState(prefix: string[]): Promise<string[]> {
    this.#check();
    const out: string[] = [];
    for await (const name of await this.#kv.keys(`${kvKey(prefix)}.*`)) {
      const e = await this.#kv.get(name);
      if (e && e.operation === "PUT") out.push(unescapeKey(name.slice(name.lastIndexOf(".") + 1)));
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#nc.drain().catch(() => this.#nc.close());
  }
}

function unreachable(e: unknown): MqError {
  return MqError.is(e) ? e : new MqError("UNREACHABLE", `NATS: ${(e as Error).message}`, {
    cause: e,
  });
}

function toRecord(m: JsMsg): StoredRecord {
  const d = m.data;
  const r: StoredRecord = {
    offset: m.seq - 1,
    timestamp: Math.floor(m.info.timestampNanos / 1_000_000),
    // A plain Uint8Array view (the client hands out Node Buffers).
    payload: new Uint8Array(d.buffer, d.byteOffset, d.byteLength),
  };
  const h = m.headers;
  if (!h) return r;
  const get = (k: string) => (h.has(k) ? h.get(k) : undefined);
  const key = get(H.key);
  if (key !== undefined) r.key = decodeURIComponent(key);
  const id = get(H.id) ?? get(H.plainId);
  if (id !== undefined) r.id = decodeURIComponent(id);
  const hdrs = get(H.headers);
  if (hdrs !== undefined) {
    try {
      r.headers = JSON.parse(decodeURIComponent(hdrs));
    } catch {
      r.headers = {};
    }
  }
  const ts = get(H.ts);
  if (ts !== undefined) r.timestamp = Number(ts);
  const deliver = get(H.deliver);
  if (deliver !== undefined) r.deliverAt = Number(deliver);
  const expires = get(H.expires);
  if (expires !== undefined) r.expiresAt = Number(expires);
  const attempt = get(H.attempt);
  if (attempt !== undefined) r.attempt = Number(attempt);
  return r;
}
