import { headers as natsHeaders, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import {
  DeliverPolicy,
  jetstream,
  type JetStreamClient,
  type JetStreamManager,
  jetstreamManager,
  type JsMsg,
  StorageType,
} from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type {
  Capabilities,
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
 * sequence minus one is the offset, message ids go out as `Nats-Msg-Id` so
 * JetStream deduplicates too, and state documents live in the JetStream KV
 * bucket `mq_state` (revision-checked updates).
 *
 * | capability | |
 * | --- | --- |
 * | persistent | yes (file storage) |
 * | multiProcess | yes (and many machines) |
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
  };
  #nc: NatsConnection;
  #js: JetStreamClient;
  #jsm: JetStreamManager;
  #kv: KV;
  #streams = new Set<string>();
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

  async #ensureStream(topic: string, partition: number): Promise<string> {
    const name = streamName(topic, partition);
    if (this.#streams.has(name)) return name;
    try {
      await this.#jsm.streams.info(name);
    } catch {
      try {
        await this.#jsm.streams.add({
          name,
          subjects: [subjectOf(topic, partition)],
          storage: StorageType.File,
          // JetStream's dedup window follows the topic's (Nats-Msg-Id carries --id).
          duplicate_window: Math.max(100, await this.#dedupWindowMs(topic)) * 1_000_000,
        });
      } catch (e) {
        // Created meanwhile by another client: fine.
        await this.#jsm.streams.info(name).catch(() => {
          throw e;
        });
      }
    }
    this.#streams.add(name);
    return name;
  }

  /** The topic's dedup window, from its settings document (2 minutes when unknown). */
  async #dedupWindowMs(topic: string): Promise<number> {
    try {
      const doc = await this.getState(["topics", topic]);
      const ms = doc ? JSON.parse(new TextDecoder().decode(doc.value)).dedupWindowMs : undefined;
      return typeof ms === "number" && ms > 0 ? ms : 120_000;
    } catch {
      return 120_000;
    }
  }

  async append(topic: string, partition: number, batch: RecordBatch): Promise<number> {
    this.#check();
    await this.#ensureStream(topic, partition);
    const subject = subjectOf(topic, partition);
    const pending: Promise<{ seq: number; duplicate: boolean }>[] = [];
    let first = -1;
    const settle = async (upTo: number) => {
      while (pending.length > upTo) {
        const ack = await pending.shift()!;
        if (first < 0 && !ack.duplicate) first = ack.seq - 1;
      }
    };
    try {
      for (let i = 0; i < batch.count; i++) {
        const m = batch.meta?.[i];
        const payload = batch.data.subarray(batch.starts[i], batch.ends[i]);
        let h: MsgHdrs | undefined;
        if (m) {
          h = natsHeaders();
          if (m.key !== undefined) h.set(H.key, encodeURIComponent(m.key));
          if (m.headers && Object.keys(m.headers).length > 0) {
            h.set(H.headers, encodeURIComponent(JSON.stringify(m.headers)));
          }
          if (m.timestamp !== undefined) h.set(H.ts, String(m.timestamp));
          if (m.deliverAt !== undefined) h.set(H.deliver, String(m.deliverAt));
          if (m.expiresAt !== undefined) h.set(H.expires, String(m.expiresAt));
          if (m.attempt) h.set(H.attempt, String(m.attempt));
        }
        pending.push(
          this.#js.publish(subject, payload, {
            headers: h,
            msgID: m?.id === undefined ? undefined : encodeURIComponent(m.id),
          }),
        );
        if (pending.length >= WINDOW) await settle(WINDOW / 2);
      }
      await settle(0);
    } catch (cause) {
      await Promise.allSettled(pending);
      throw new MqError("UNREACHABLE", `publishing to NATS failed: ${(cause as Error).message}`, {
        cause,
      });
    }
    return first < 0 ? (await this.bounds(topic, partition)).end : first;
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
    const sub = this.#nc.subscribe(subjectOf(topic, partition), { max: 1, timeout: timeoutMs });
    const onAbort = () => sub.unsubscribe();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
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
  const id = get(H.id);
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
