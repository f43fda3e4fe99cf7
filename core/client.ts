/**
 * The client: publish and subscribe over any {@link StorageAdapter}. Every
 * rule a user can observe (names, sizes, partitioning, groups) is applied by
 * the core; `Mq` is its facade and delegates: publishing to `_publish.ts`,
 * topic settings to `_topic_configs.ts`, reading to `subscription.ts`,
 * peeking to `_group_peek.ts`. What a program does not use is not loaded:
 * consuming, transactions, receipts, peeking, request/reply, the doctor,
 * topic administration (`mq.topics`), exchanges (`mq.exchanges`), delayed
 * cancelling and publishing itself are imported on their first call (dynamic `import()`: evaluated then, and
 * needing no permission a static import would not).
 *
 * @module
 */
import type { Capabilities, ReconnectPolicy, StorageAdapter } from "./adapter.ts";
import { MqError } from "./errors.ts";
import { type Clock, clockWithNow, systemClock } from "./clock.ts";
import { assertName } from "./names.ts";
import { batchOf, type RecordBatch, type RecordMeta } from "./record.ts";
import type { TopicConfig } from "./topic_config.ts";
import { openSubscription, type Subscription } from "./subscription.ts";
import type { TopicAdmin } from "./topic_admin.ts";
import type { ExchangeAdmin } from "./exchanges.ts";
import { deferred } from "./_deferred.ts";
import type { Publisher } from "./_publish.ts";
import { firstInvalid } from "./_record_checks.ts";
import { TopicConfigs } from "./_topic_configs.ts";
import { bindAdapter } from "./_access.ts";
import type { ReceivedMessage } from "./message.ts";
import type { ConsumeOptions, ConsumeResult } from "./consume.ts";
import type { DoctorOptions, DoctorReport } from "./doctor.ts";
import type { RequestOptions } from "./request_reply.ts";
import type { Transaction, TransactionResult } from "./transaction.ts";
import type { Settlement } from "./_receipts.ts";
import type {
  MessageHandler,
  MessageLimit,
  MqOptions,
  OutgoingMessage,
  Payload,
  PublishOptions,
  PublishRecordsOptions,
  PublishResult,
  SubscribeOptions,
} from "./types.ts";

export type * from "./types.ts";

/** The modules loaded on first use. */
const load = {
  consume: () => import("./consume.ts"),
  doctor: () => import("./doctor.ts"),
  peek: () => import("./_group_peek.ts"),
  receipts: () => import("./_receipts.ts"),
  rpc: () => import("./request_reply.ts"),
  tx: () => import("./transaction.ts"),
  publish: () => import("./_publish.ts"),
  topics: () => import("./topic_admin.ts"),
  exchanges: () => import("./exchanges.ts"),
  delayed: () => import("./_delayed_index.ts"),
};

/**
 * A connection to one backend.
 *
 * @example
 * ```ts
 * import { Mq } from "./client.ts";
 * import { MemoryAdapter } from "../adapters/memory/mod.ts";
 * const mq = new Mq(new MemoryAdapter());
 * await mq.publish("orders", "hello", { key: "c1" });
 * for await (const m of mq.subscribe("orders", { follow: false })) console.log(m.text());
 * await mq.close();
 * ```
 */
export class Mq {
  #adapter: StorageAdapter;
  #configs: TopicConfigs;
  #publisher: Publisher;
  /** The time and the timers of this client. */
  readonly clock: Clock;
  /** The current time, ms since the epoch (the clock's). */
  readonly now: () => number;
  /** Topic and group administration. */
  readonly topics: TopicAdmin;
  /** Exchanges and bindings. */
  readonly exchanges: ExchangeAdmin;

  /** A client over `adapter` (see `connect` in `mod.ts` to open one by URL). */
  constructor(adapter: StorageAdapter, options: MqOptions = {}) {
    this.#adapter = adapter;
    bindAdapter(this, adapter, options.onCorrupt);
    const clock = options.clock ?? (options.now ? clockWithNow(options.now) : systemClock);
    this.clock = clock;
    this.now = () => clock.now();
    this.#configs = new TopicConfigs(adapter, this.now);
    const config = (t: string) => this.topicConfig(t);
    // Loaded on their first call: publishing and reading need neither.
    this.topics = deferred(async () =>
      new (await load.topics()).TopicAdmin(
        adapter,
        config,
        (t) => this.forgetTopic(t),
        this.now,
        clock,
      )
    );
    this.exchanges = deferred(async () =>
      new (await load.exchanges()).ExchangeAdmin(adapter, this.now)
    );
    // Loaded on the first publish (or limit check): reading needs none of it.
    this.#publisher = deferred(async () =>
      new (await load.publish()).Publisher(
        adapter,
        this.now,
        this.#configs,
        (exchange) => this.exchanges.resolver(exchange),
        clock,
      )
    );
  }

  /** What the backend can do (persistent, shared, transactions, limits, ...). */
  get capabilities(): Readonly<Capabilities> {
    return this.#adapter.capabilities;
  }

  /**
   * Publishes one message; resolves to its partition and offset once stored
   * (or `duplicate: true`, offset -1, when its id was seen within the window).
   *
   * @throws {MqError} `INVALID_NAME`, `MESSAGE_TOO_LARGE`, `INVALID_ARGUMENT`
   */
  publish(
    topic: string,
    payload: Payload,
    options: PublishOptions = {},
  ): Promise<{ partition: number; offset: number; duplicate: boolean }> {
    return this.#publisher.publish(topic, payload, options);
  }

  /**
   * Publishes several messages in one write per partition. If one is refused,
   * the ones before it are stored and the error's `details.published` says how many.
   */
  publishBatch(topic: string, messages: (OutgoingMessage | Payload)[]): Promise<PublishResult> {
    return this.#publisher.publishBatch(topic, messages);
  }

  /** Publishes a prepared {@link RecordBatch}: the fast path (no object per message). */
  publishRecords(
    topic: string,
    batch: RecordBatch,
    options: PublishRecordsOptions = {},
  ): Promise<PublishResult> {
    return this.#publisher.publishRecords(topic, batch, options);
  }

  /**
   * Checks `batch` against the topic's limits (its defaults when it is new)
   * and the backend's, as a publish would, writing nothing.
   *
   * @throws {MqError} `MESSAGE_TOO_LARGE`, `INVALID_ARGUMENT`, with
   * `details.index` the refused record's and `details.published` 0
   */
  checkRecords(topic: string, batch: RecordBatch): Promise<void> {
    return this.#publisher.checkRecords(topic, batch);
  }

  /**
   * Publishes through an exchange: a copy to each topic its bindings route
   * the message to, in one atomic write where the backend can (else topic by
   * topic), every record checked against every target's limits first.
   *
   * @example
   * ```ts
   * import { Mq } from "./client.ts";
   * import { MemoryAdapter } from "../adapters/memory/mod.ts";
   * const mq = new Mq(new MemoryAdapter());
   * await mq.exchanges.create("events", "topic");
   * await mq.exchanges.bind("events", { destination: "eu", destinationKind: "topic", key: "*.eu" });
   * await mq.publishVia("events", "orders.eu", ["hello"]);
   * ```
   * @throws {MqError} `UNROUTABLE` (unless `allowUnroutable`), `INVALID_ARGUMENT`, `MESSAGE_TOO_LARGE`
   */
  publishVia(
    exchange: string,
    routingKey: string,
    messages: (OutgoingMessage | Payload)[] | RecordBatch,
    options: { allowUnroutable?: boolean } = {},
  ): Promise<{ count: number; topics: string[]; unroutable: number }> {
    return this.#publisher.publishVia(exchange, routingKey, messages, options);
  }

  /**
   * Reads topics: without a group from a position (several topics and
   * patterns such as `orders.*` or `logs.#`, the last N, until a point, some
   * partitions, filtered), or one topic as a member of a group (see
   * {@link SubscribeOptions}).
   *
   * @throws {MqError} `INVALID_NAME`; `INVALID_ARGUMENT` for a group with
   * several topics, a pattern or a plain-read option
   */
  subscribe(topics: string | readonly string[], options: SubscribeOptions = {}): Subscription {
    return openSubscription(
      {
        adapter: this.#adapter,
        now: this.now,
        clock: this.clock,
        topicConfig: (t, o) => this.topicConfig(t, o),
        deadLetters: (dlq, payloads, meta) => this.#deadLetters(dlq, payloads, meta),
      },
      topics,
      options,
    );
  }

  /** Dead letters are published as they are: never dropped as duplicates of themselves. */
  async #deadLetters(dlq: string, payloads: Uint8Array[], meta: RecordMeta[]): Promise<void> {
    await this.publishRecords(dlq, batchOf(payloads, meta, this.now()), { deduplicate: false });
  }

  /**
   * Runs `handler` for each message of a group, `concurrency` at a time: a
   * handler that resolves acks; one that throws is retried with backoff and
   * dead-lettered after the topic's `maxAttempts`.
   */
  async consume(
    topic: string,
    options: ConsumeOptions,
    handler: MessageHandler<unknown>,
  ): Promise<ConsumeResult> {
    const sub = this.subscribe(topic, { ...options, batchSize: options.prefetch ?? 256 });
    return (await load.consume()).consume(sub, options, handler, this.clock);
  }

  /**
   * Runs `fn` with a {@link Transaction} and commits what it added, all or
   * nothing: its publishes and its acks and nacks of group deliveries (see
   * `transaction.ts` for how each backend holds it).
   *
   * @throws {MqError} `MESSAGE_TOO_LARGE`, `INVALID_ARGUMENT`, `TRANSACTION_TOO_LARGE`,
   * `LEASE_EXPIRED`, `TOPIC_FULL` (nothing is written on an atomic backend)
   */
  async transaction(fn: (tx: Transaction) => unknown): Promise<TransactionResult> {
    return (await load.tx()).runTransaction({
      adapter: this.#adapter,
      now: this.now,
      clock: this.clock,
      topicConfig: (t, o) => this.topicConfig(t, o),
      invalidRecord: (batch, config, topic) => firstInvalid(batch, config, topic, this.#adapter),
    }, fn);
  }

  /** Sends a request and resolves to the first reply. @throws {MqError} `TIMEOUT` */
  async request(
    topic: string,
    payload: Payload,
    options: RequestOptions = {},
  ): Promise<ReceivedMessage> {
    return (await load.rpc()).request(this, topic, payload, options);
  }

  /** Answers requests of `topic` with what `handler` returns (undefined: no reply). */
  async reply(
    topic: string,
    options: ConsumeOptions,
    handler: MessageHandler<Payload | undefined>,
  ): Promise<ConsumeResult> {
    return (await load.rpc()).reply(this, topic, options, handler);
  }

  /** Acks the delivery a receipt names (as `mq take` prints it). @throws {MqError} `INVALID_ARGUMENT` */
  ack(topic: string, receipt: string): Promise<void> {
    return this.#settle(topic, receipt, { kind: "ack" });
  }

  /**
   * Nacks the delivery a receipt names: delivered again after `delayMs`
   * (default: backoff), or dead-lettered on its last attempt.
   *
   * @throws {MqError} `INVALID_ARGUMENT` for an unknown or expired receipt
   */
  nack(
    topic: string,
    receipt: string,
    options: { delayMs?: number; reason?: string } = {},
  ): Promise<void> {
    return this.#settle(topic, receipt, { kind: "nack", ...options });
  }

  async #settle(topic: string, receipt: string, how: Settlement): Promise<void> {
    return (await load.receipts()).settleReceipt(
      {
        adapter: this.#adapter,
        now: this.now,
        clock: this.clock,
        config: (t) => this.topicConfig(t),
        publishDeadLetter: (dlq, payload, meta) => this.#deadLetters(dlq, [payload], [meta]),
      },
      topic,
      receipt,
      how,
    );
  }

  /** The next messages a group would get, without taking them. @throws {MqError} `TOPIC_NOT_FOUND` */
  async peek(
    topic: string,
    options: { group: string; count?: number },
  ): Promise<ReceivedMessage[]> {
    const config = await this.#existing(topic);
    assertName("group", options.group);
    const { peekGroup } = await load.peek();
    return peekGroup(this.#adapter, topic, config, options.group, options.count ?? 10, this.now());
  }

  /** Cancels a delayed message not delivered yet; false when none with that id waits. */
  async cancel(topic: string, id: string): Promise<boolean> {
    await this.#existing(topic);
    return (await load.delayed()).cancelDelayed(this.#adapter, topic, id, this.now());
  }

  async #existing(topic: string): Promise<TopicConfig> {
    const config = await this.topicConfig(topic);
    if (!config) throw new MqError("TOPIC_NOT_FOUND", `topic "${topic}" does not exist`);
    return config;
  }

  /** The largest payload `topic` takes (its limit, or the backend's where lower), and why. */
  messageLimit(topic: string): Promise<MessageLimit> {
    return this.#publisher.messageLimit(topic);
  }

  /** A topic's settings; with `create`, a missing topic is made with `settings`. */
  topicConfig(
    topic: string,
    options: { create?: boolean; settings?: Partial<TopicConfig> } = {},
  ): Promise<TopicConfig | undefined> {
    return this.#configs.get(topic, options);
  }

  /** Forgets cached topic settings (after another client changed them). */
  forgetTopic(topic: string): void {
    this.#configs.forget(topic);
  }

  /**
   * Checks the store and, with `repair`, fixes what can be fixed without
   * losing an acknowledged message; what `mq doctor` runs.
   *
   * @throws {MqError} `TOPIC_NOT_FOUND` for a topic named that does not exist
   */
  async doctor(options: DoctorOptions = {}): Promise<DoctorReport> {
    const report = await (await load.doctor()).checkStore(this.#adapter, {
      now: this.now,
      ...options,
    });
    this.#configs.clear();
    return report;
  }

  /** How a networked backend rides through failures (a no-op on others). */
  setReconnectPolicy(policy: ReconnectPolicy): void {
    this.#adapter.setReconnectPolicy?.(policy);
  }

  /** Closes the backend. */
  async close(): Promise<void> {
    await this.#adapter.close();
  }
}
