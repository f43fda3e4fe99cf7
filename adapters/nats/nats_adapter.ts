import type { NatsConnection } from "@nats-io/transport-node";
import {
  jetstream,
  type JetStreamClient,
  type JetStreamManager,
  jetstreamManager,
  type PubAck,
} from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type {
  Capabilities,
  DeduplicatedAppend,
  LogReader,
  PartitionBounds,
  ReconnectPolicy,
  StorageAdapter,
  Versioned,
} from "../../core/adapter.ts";
import { MqError } from "../../core/errors.ts";
import type { RecordBatch } from "../../core/record.ts";
import type { TopicConfig } from "../../core/topic_config.ts";
import { reasonOf, Retrier } from "./_retry.ts";
import { STATE_STREAM, StateBucket } from "./_state_bucket.ts";
import { publishHeaders } from "./_records.ts";
import { StreamReader } from "./_stream_reader.ts";
import {
  DEFAULT_WINDOW_MS,
  isNotFound,
  isPlacement,
  NatsStreams,
  placementError,
  streamName,
  subjectOf,
  unreachable,
} from "./_streams.ts";

export { streamName, subjectOf };

/** Outstanding publish acks at once. */
const WINDOW = 2048;
/**
 * How long a JetStream request waits for its answer (ms). Short, so that a
 * request to a leader that went is retried soon (at a new leader), not
 * after the client's default of 5 s.
 */
const API_TIMEOUT_MS = 2000;
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
 * | interleaved appends | yes, declared as `capabilities.interleavedAppends` (see below) |
 * | replicas | `?replicas=N` (1 to 5) or a topic's own; every stream of a topic and the state bucket |
 *
 * On a cluster the URL names several seeds (`nats://h1:4222,h2:4222,h3:4222`):
 * the client fails over to another when the one it uses goes, and every
 * operation retries failures that pass (a lost connection, a stream-leader
 * election) for the reconnect policy's time; a publish whose ack was lost is
 * sent again with the same `Nats-Msg-Id` (mq gives one to each record
 * without an id), so JetStream stores it once.
 * | transactions | effectively once: nats-server 2.9 has no atomic batch, so `mq.transaction` publishes the outputs first, each with an id derived from the input it settles and its index (`Nats-Msg-Id`, deduplicated within the topic's dedup window), and writes the ack only after every publish is confirmed; a crash in between redelivers the input and its outputs are dropped as duplicates. A transaction that settles no delivery (`mq pub --atomic`) cannot be atomic here and is refused by the CLI. |
 *
 * One departure from the storage contract, declared as
 * `capabilities.interleavedAppends`: when several clients append to
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
    defaultReplicas: 1,
    transactions: "effectively-once",
    interleavedAppends: true,
  };
  #nc: NatsConnection;
  #js: JetStreamClient;
  #jsm: JetStreamManager;
  #retry: Retrier;
  /** The state documents (see `_state_bucket.ts`: replicated, they are checked stream-wide). */
  #state: StateBucket;
  /** The streams of topics' partitions (see `_streams.ts`). */
  #streams: NatsStreams;
  #closed = false;

  private constructor(
    nc: NatsConnection,
    jsm: JetStreamManager,
    kv: KV,
    replicas: number,
    stateReplicas: number,
  ) {
    this.#nc = nc;
    this.#jsm = jsm;
    this.#js = jetstream(nc, { timeout: API_TIMEOUT_MS });
    this.#retry = new Retrier(nc, () => this.#closed);
    this.#state = new StateBucket(kv, this.#js, jsm, this.#retry, stateReplicas > 1);
    this.capabilities.defaultReplicas = replicas;
    this.#streams = new NatsStreams(jsm, this.#retry, () => this.capabilities.defaultReplicas ?? 1);
    // What one message may hold: the server's max_payload less room for headers.
    this.capabilities.maxMessageBytes = Math.max(1024, (nc.info?.max_payload ?? 1048576) - 4096);
  }

  /**
   * Opens the backend on a connection (JetStream must be enabled); the state
   * bucket `mq_state` is made with `replicas` copies (1 to 5, default 1), or
   * raised to that many where it has fewer.
   *
   * @throws {MqError} `UNREACHABLE` when JetStream is not available,
   *   `UNAVAILABLE` when the cluster cannot keep that many copies
   */
  static async open(
    nc: NatsConnection,
    options: { replicas?: number } = {},
  ): Promise<NatsAdapter> {
    const replicas = options.replicas ?? 1;
    let jsm: JetStreamManager;
    let kv: KV;
    try {
      jsm = await jetstreamManager(nc, { timeout: API_TIMEOUT_MS });
      kv = await new Kvm(jetstream(nc, { timeout: API_TIMEOUT_MS })).create("mq_state", {
        history: 1,
        replicas,
      });
    } catch (cause) {
      await nc.close().catch(() => {});
      if (isPlacement(cause)) throw placementError(replicas, "the state bucket mq_state", cause);
      throw new MqError(
        "UNREACHABLE",
        `NATS JetStream is not available: ${(cause as Error).message}`,
        { cause },
      );
    }
    let stateReplicas = replicas;
    try {
      const si = await jsm.streams.info(STATE_STREAM);
      stateReplicas = Math.max(replicas, si.config.num_replicas);
      if (si.config.num_replicas < replicas) {
        await jsm.streams.update(STATE_STREAM, { ...si.config, num_replicas: replicas });
      }
    } catch (cause) {
      await nc.close().catch(() => {});
      if (isPlacement(cause)) throw placementError(replicas, "the state bucket mq_state", cause);
      throw unreachable(cause);
    }
    return new NatsAdapter(nc, jsm, kv, replicas, stateReplicas);
  }

  /**
   * How long operations retry failures that pass (a lost server, a leader
   * election) and who hears of the connection's state, one line per change.
   */
  setReconnectPolicy(policy: ReconnectPolicy): void {
    this.#retry.setPolicy(policy);
  }

  /**
   * Makes the streams of a new topic, `config.replicas` copies each (the
   * URL's `?replicas=N` unless the topic sets it), with the topic's
   * duplicate window.
   *
   * @throws {MqError} `UNAVAILABLE` when the cluster cannot place that many copies
   */
  async prepareTopic(topic: string, config: TopicConfig): Promise<void> {
    this.#check();
    const replicas = config.replicas ?? this.capabilities.defaultReplicas ?? 1;
    const windowMs = config.dedupWindowMs > 0 ? config.dedupWindowMs : DEFAULT_WINDOW_MS;
    for (let p = 0; p < config.partitions; p++) {
      await this.#streams.ensure(topic, p, windowMs, replicas);
    }
  }

  #check(): void {
    if (this.#closed) throw new MqError("CLOSED", "the nats backend is closed");
  }

  async append(topic: string, partition: number, batch: RecordBatch): Promise<number> {
    this.#check();
    await this.#streams.ensure(topic, partition);
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
    await this.#streams.ensureWindow(
      await this.#streams.ensure(topic, partition, windowMs),
      windowMs,
    );
    const acks = await this.#publish(topic, partition, batch, true);
    const kept: number[] = [];
    for (let i = 0; i < acks.length; i++) if (!acks[i].duplicate) kept.push(i);
    return { first: kept.length > 0 ? acks[kept[0]].seq - 1 : -1, kept };
  }

  /**
   * Publishes every record of `batch`, with up to {@link WINDOW} acks
   * outstanding (no await per message); resolves to the acks in record
   * order. Ids go out as `Nats-Msg-Id` (deduplicated by the server) only with
   * `dedup`, else as `Mq-Id` (the core has deduplicated already); a record
   * without one gets an id of mq's own ({@link AUTO_ID}). Records whose ack
   * did not come (a lost server, a leader election) are sent again with the
   * same ids, after a backoff, for the reconnect policy's time: the server
   * drops what it stored already, and its ack names the stored sequence.
   * During such a failover one batch's records may be stored out of order.
   */
  async #publish(
    topic: string,
    partition: number,
    batch: RecordBatch,
    dedup: boolean,
  ): Promise<{ seq: number; duplicate: boolean }[]> {
    const subject = subjectOf(topic, partition);
    const acks = new Array<{ seq: number; duplicate: boolean }>(batch.count);
    const nonce = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
    const send = (i: number): Promise<PubAck> => {
      const payload = batch.data.subarray(batch.starts[i], batch.ends[i]);
      const { headers, msgID } = publishHeaders(
        batch.meta?.[i],
        dedup,
        `${nonce}.${i.toString(36)}`,
      );
      return this.#js.publish(subject, payload, { headers, msgID });
    };
    const started = Date.now();
    let todo: number[] | undefined;
    let delay = 100;
    for (let round = 0;; round++) {
      const failed: number[] = [];
      let firstError: unknown;
      const settle = async (xs: { i: number; p: Promise<PubAck> }[]) => {
        const rs = await Promise.allSettled(xs.map((x) => x.p));
        for (let k = 0; k < rs.length; k++) {
          const r = rs[k];
          if (r.status === "fulfilled") {
            // Sent before: a "duplicate" is most likely the earlier attempt, stored.
            acks[xs[k].i] = { seq: r.value.seq, duplicate: r.value.duplicate && round === 0 };
          } else {
            failed.push(xs[k].i);
            firstError ??= r.reason;
          }
        }
      };
      const n = todo ? todo.length : batch.count;
      const half = WINDOW / 2;
      let chunk: { i: number; p: Promise<PubAck> }[] = [];
      let previous: typeof chunk | undefined;
      let k = 0;
      for (; k < n; k++) {
        const i = todo ? todo[k] : k;
        chunk.push({ i, p: send(i) });
        if (chunk.length === half) {
          if (previous) await settle(previous);
          previous = chunk;
          chunk = [];
          // Something failed: send no more this round, retry from there.
          if (failed.length > 0) {
            k++;
            break;
          }
        }
      }
      if (previous) await settle(previous);
      await settle(chunk);
      for (; k < n; k++) failed.push(todo ? todo[k] : k);
      if (failed.length === 0) return acks;
      if (!this.#retry.mayRetry(firstError, started)) {
        let stored = 0;
        for (const a of acks) if (a) stored++;
        throw new MqError(
          "UNREACHABLE",
          `publishing to NATS failed: ${reasonOf(firstError)}`,
          { cause: firstError, details: { published: stored } },
        );
      }
      if (round > 0) this.#retry.trouble(`a publish to ${subject}`, firstError);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 2000);
      todo = failed.sort((x, y) => x - y);
    }
  }

  async openReader(topic: string, partition: number, from: number): Promise<LogReader> {
    this.#check();
    const stream = await this.#streams.ensure(topic, partition);
    const start = (await this.bounds(topic, partition)).start;
    return new StreamReader(
      this.#js,
      this.#retry,
      stream,
      Math.max(from, start),
      () => this.bounds(topic, partition),
    );
  }

  async bounds(topic: string, partition: number): Promise<PartitionBounds> {
    this.#check();
    const stream = streamName(topic, partition);
    try {
      const si = await this.#retry.run(
        `about stream ${stream}`,
        () => this.#jsm.streams.info(stream),
      );
      const end = si.state.last_seq;
      const start = si.state.messages === 0 ? end : si.state.first_seq - 1;
      return { start, end };
    } catch (e) {
      if (isNotFound(e)) return { start: 0, end: 0 };
      throw unreachable(e);
    }
  }

  async storedBytes(topic: string, partition: number): Promise<number> {
    const stream = streamName(topic, partition);
    try {
      return (await this.#retry.run(`about stream ${stream}`, () => this.#jsm.streams.info(stream)))
        .state.bytes;
    } catch (e) {
      if (isNotFound(e)) return 0;
      throw unreachable(e);
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
    // (The client subscribes again by itself after a reconnect.)
    const sub = this.#nc.subscribe(subjectOf(topic, partition), { max: 1, timeout: timeoutMs });
    const onAbort = () => sub.unsubscribe();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      // Aborted meanwhile (the listener came too late), or written meanwhile.
      if (signal.aborted || (await this.bounds(topic, partition)).end > offset) return;
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
    const stream = await this.#streams.ensure(topic, partition);
    await this.#retry.run(
      `purging stream ${stream}`,
      () => this.#jsm.streams.purge(stream, { seq: before + 1 }),
    ).catch((e) => {
      throw unreachable(e);
    });
  }

  async dropLog(topic: string): Promise<void> {
    this.#check();
    const prefix = streamName(topic, 0).replace(/_0$/, "_");
    const names = await this.#retry.run("listing streams", async () => {
      const out: string[] = [];
      for await (const name of this.#jsm.streams.names()) out.push(name);
      return out;
    }).catch((e) => {
      throw unreachable(e);
    });
    for (const name of names) {
      if (name.startsWith(prefix) && /^\d+$/.test(name.slice(prefix.length))) {
        await this.#retry.run(`deleting stream ${name}`, () => this.#jsm.streams.delete(name))
          .catch((e) => {
            if (!isNotFound(e)) throw unreachable(e);
          });
        this.#streams.forget(name);
      }
    }
  }

  getState(key: string[]): Promise<Versioned | undefined> {
    this.#check();
    return this.#state.get(key);
  }

  compareAndSet(key: string[], expected: string | null, value: Uint8Array): Promise<boolean> {
    this.#check();
    return this.#state.compareAndSet(key, expected, value);
  }

  deleteState(key: string[]): Promise<void> {
    this.#check();
    return this.#state.delete(key);
  }

  listState(prefix: string[]): Promise<string[]> {
    this.#check();
    return this.#state.list(prefix);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#nc.drain().catch(() => this.#nc.close());
  }
}
