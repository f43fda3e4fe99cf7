/**
 * Request/reply over topics: a request carries `reply-to` (a temporary topic)
 * and `correlation-id` headers; a replier publishes its answer there. Reply
 * topics are removed when the request ends, and replies to a request that
 * timed out are dropped rather than kept in a topic forever.
 *
 * @module
 */
import type { ConsumeOptions, ConsumeResult } from "./consume.ts";
import { MqError } from "./errors.ts";
import type { ReceivedMessage } from "./message.ts";
import { batchOf, type RecordBatch } from "./record.ts";
import type { OutgoingMessage, PublishRecordsOptions, PublishResult } from "./types.ts";
import type { Subscription } from "./subscription.ts";
import type { SubscribeOptions } from "./types.ts";
import type { TopicAdmin } from "./topic_admin.ts";
import { adapterOf } from "./_access.ts";
import type { Clock } from "./clock.ts";

const enc = new TextEncoder();

/** The header naming where a reply goes. */
export const REPLY_TO = "reply-to";
/** The header tying a reply to its request. */
export const CORRELATION_ID = "correlation-id";
const PREFIX = "mq-reply.";
/** How long after its deadline a crashed requester's reply topic is removed. */
const STALE_MS = 60_000;

/** Options of a request. */
export interface RequestOptions {
  /** How long to wait for the reply (ms). @default 5000 */
  timeoutMs?: number;
  /** Headers of the request. */
  headers?: Record<string, string>;
  /** Key of the request. */
  key?: string;
}

/** What request/reply uses of a client (an `Mq`), named here so that this module needs no client. */
export interface RequestClient {
  readonly now: () => number;
  /** The client's timers (a request's timeout). */
  readonly clock: Clock;
  readonly topics: Pick<TopicAdmin, "create" | "remove">;
  publishBatch(topic: string, messages: OutgoingMessage[]): Promise<PublishResult>;
  publishRecords(
    topic: string,
    batch: RecordBatch,
    options?: PublishRecordsOptions,
  ): Promise<PublishResult>;
  subscribe(topic: string, options?: SubscribeOptions): Subscription;
  consume(
    topic: string,
    options: ConsumeOptions,
    handler: (m: ReceivedMessage) => unknown | Promise<unknown>,
  ): Promise<ConsumeResult>;
  forgetTopic(topic: string): void;
}

function randomId(): string {
  const b = crypto.getRandomValues(new Uint8Array(9));
  return [...b].map((x) => x.toString(36).padStart(2, "0")).join("").slice(0, 14);
}

/**
 * Publishes a request to `topic` and resolves to the first reply.
 *
 * @throws {MqError} `TIMEOUT` when no reply arrives in time
 */
export async function request(
  mq: RequestClient,
  topic: string,
  payload: Uint8Array | string,
  options: RequestOptions = {},
): Promise<ReceivedMessage> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const deadline = mq.now() + timeoutMs;
  await removeStaleReplyTopics(mq);
  const replyTopic = `${PREFIX}${deadline.toString(36)}.${randomId()}`;
  const correlationId = randomId();
  await mq.topics.create(replyTopic, {});
  const stop = new AbortController();
  const timer = mq.clock.setTimeout(() => stop.abort(), timeoutMs);
  try {
    const message: OutgoingMessage = {
      payload,
      key: options.key,
      headers: { ...options.headers, [REPLY_TO]: replyTopic, [CORRELATION_ID]: correlationId },
    };
    await mq.publishBatch(topic, [message]);
    for await (const m of mq.subscribe(replyTopic, { signal: stop.signal })) {
      if (m.headers[CORRELATION_ID] === correlationId) return m;
    }
    throw new MqError("TIMEOUT", `no reply from "${topic}" within ${timeoutMs}ms`);
  } finally {
    timer.cancel();
    await mq.topics.remove(replyTopic).catch(() => {});
  }
}

/** Removes reply topics left by requesters that died long ago. */
async function removeStaleReplyTopics(mq: RequestClient): Promise<void> {
  const now = mq.now();
  for (const name of await adapterOf(mq).listState(["topics"])) {
    if (!name.startsWith(PREFIX)) continue;
    const deadline = parseInt(name.slice(PREFIX.length).split(".")[0], 36);
    if (Number.isFinite(deadline) && deadline + STALE_MS < now) {
      await mq.topics.remove(name).catch(() => {});
    }
  }
}

/**
 * Answers the requests of `topic` with what `handler` returns (undefined
 * sends no reply). A request whose requester is gone is answered into
 * nothing: no topic is created for it.
 */
export function reply(
  mq: RequestClient,
  topic: string,
  options: ConsumeOptions,
  handler: (
    m: ReceivedMessage,
  ) => Promise<Uint8Array | string | undefined> | Uint8Array | string | undefined,
): Promise<ConsumeResult> {
  return mq.consume(topic, options, async (m) => {
    const answer = await handler(m);
    const to = m.headers[REPLY_TO];
    if (answer === undefined || !to) return;
    // A request that timed out took its reply topic with it: the reply is
    // dropped, never written into a topic created anew.
    mq.forgetTopic(to);
    await mq.publishRecords(
      to,
      batchOf([typeof answer === "string" ? enc.encode(answer) : answer], [{
        headers: { [CORRELATION_ID]: m.headers[CORRELATION_ID] ?? "" },
      }], mq.now()),
      { ifExists: true },
    );
  });
}
