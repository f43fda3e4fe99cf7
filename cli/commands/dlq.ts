/** `mq dlq ls|replay|purge`: the dead letters of a topic. */
import type { Call } from "../definition.ts";
import {
  assertName,
  deadLetterTopic,
  DLQ_HEADERS,
  listDeadLetters,
  type Message,
  type Mq,
  purgeDeadLetters,
  replayDeadLetters,
} from "../../mod.ts";
import { MqError } from "../../core/errors.ts";
import { formatterFor } from "../message_format.ts";
import { toEnvelope } from "../envelope.ts";
import { note, openBackend, print } from "../runtime.ts";
import { table } from "../format.ts";

/** The dead-letter topic of `topic`; an unknown topic is a usage error (exit 2). */
async function deadLetterTopicOf(mq: Mq, topic: string): Promise<string> {
  assertName("topic", topic);
  const config = await mq.topicConfig(topic);
  if (!config) throw new MqError("INVALID_ARGUMENT", `topic "${topic}" does not exist`);
  return deadLetterTopic(topic, config.dlq);
}

/** One dead letter as `dlq ls --json` prints it: the envelope, and why it failed. */
function deadLetterJson(m: Message): Record<string, unknown> {
  const h = m.headers;
  const attempts = h[DLQ_HEADERS.attempts];
  return {
    ...JSON.parse(toEnvelope(m)),
    reason: h[DLQ_HEADERS.reason] ?? null,
    attempts: attempts === undefined ? null : Number(attempts),
    origin: {
      topic: h[DLQ_HEADERS.topic] ?? null,
      partition: h[DLQ_HEADERS.partition] === undefined ? null : Number(h[DLQ_HEADERS.partition]),
      offset: h[DLQ_HEADERS.offset] === undefined ? null : Number(h[DLQ_HEADERS.offset]),
    },
    first_failure: h[DLQ_HEADERS.firstFailure] ?? null,
    last_failure: h[DLQ_HEADERS.lastFailure] ?? null,
    stderr: h[DLQ_HEADERS.stderr] ?? null,
  };
}

/** A cell of the table: one line, at most `max` characters. */
function cell(text: string, max: number): string {
  const line = [...text].map((c) => (c < " " ? " " : c)).join("");
  return line.length > max ? line.slice(0, max - 3) + "..." : line;
}

/** Options of `mq dlq ls`. */
export interface DlqListOptions {
  format?: string;
  json?: boolean;
}

/**
 * Runs `mq dlq ls` with plain options.
 *
 * @example
 * ```ts ignore
 * await runDlqList(await connect("file:./data"), "jobs", { json: true });
 * ```
 * @throws {MqError} `INVALID_ARGUMENT` for an unknown topic (exit 2)
 */
export async function runDlqList(mq: Mq, topic: string, opts: DlqListOptions): Promise<void> {
  const format = opts.json || opts.format === undefined || opts.format === "table"
    ? undefined
    : formatterFor(opts.format);
  await deadLetterTopicOf(mq, topic);
  // The letters still waiting: one replayed from the middle (by mq ui) is not listed.
  const messages: Message[] = (await listDeadLetters(mq, topic)).map((l) => l.message);
  if (opts.json) return await print(JSON.stringify(messages.map(deadLetterJson)) + "\n");
  if (format) return await print(messages.map((m) => format(m) + "\n").join(""));
  if (messages.length === 0) return note(`mq: no dead letters for "${topic}"`);
  const rows = messages.map((m) => {
    const stderr = m.headers[DLQ_HEADERS.stderr];
    return [
      m.headers[DLQ_HEADERS.offset] ?? "-",
      m.headers[DLQ_HEADERS.attempts] ?? "-",
      m.headers[DLQ_HEADERS.reason] ?? "-",
      m.headers[DLQ_HEADERS.lastFailure] ?? "-",
      stderr === undefined ? "-" : cell(stderr.split("\n").at(-1) ?? "", 40),
      cell(m.text(), 40),
    ];
  });
  await print(
    table(["OFFSET", "ATTEMPTS", "REASON", "LAST FAILURE", "STDERR (LAST LINE)", "PAYLOAD"], rows),
  );
}

/** `mq dlq ls <topic>`: the dead letters of a topic. */
export async function dlqList(topic: string, opts: DlqListOptions, cmd: Call): Promise<void> {
  assertName("topic", topic);
  const { mq } = await openBackend(cmd);
  try {
    await runDlqList(mq, topic, opts);
  } finally {
    await mq.close();
  }
}

/** `mq dlq replay <topic>`: dead letters published back to their topic. */
export async function dlqReplay(topic: string, opts: { count?: number }, cmd: Call): Promise<void> {
  assertName("topic", topic);
  const { mq } = await openBackend(cmd);
  try {
    await deadLetterTopicOf(mq, topic);
    // One library call for the CLI and mq ui: ids kept, attempts from 1, a
    // letter replayed at most once, the groups' dead-lettered counts brought down.
    const n = await replayDeadLetters(mq, topic, { count: opts.count });
    if (n === 0) return note(`mq: no dead letters for "${topic}"`);
    note(`mq: replayed ${n} dead letter${n === 1 ? "" : "s"} to "${topic}"`);
  } finally {
    await mq.close();
  }
}

/** `mq dlq purge <topic>`: every dead letter of a topic removed. */
export async function dlqPurge(topic: string, cmd: Call): Promise<void> {
  assertName("topic", topic);
  const { mq } = await openBackend(cmd);
  try {
    await deadLetterTopicOf(mq, topic);
    const n = await purgeDeadLetters(mq, topic);
    note(`mq: purged ${n} dead letter${n === 1 ? "" : "s"} of "${topic}"`);
  } finally {
    await mq.close();
  }
}
