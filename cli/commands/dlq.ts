/** `mq dlq ls|replay|purge`: the dead letters of a topic. */
import type { Call } from "../definition.ts";
import { assertName } from "../../core/names.ts";
import { deadLetterTopic, DLQ_HEADERS, withoutDeadLetterHeaders } from "../../core/dead_letter.ts";
import { batchOf, type RecordMeta } from "../../core/record.ts";
import { formatterFor } from "../message_format.ts";
import { note, openBackend, print } from "../runtime.ts";
import { table } from "./topics.ts";

/** `mq dlq ls <topic>`: the dead letters of a topic. */
export async function dlqList(topic: string, opts: { format: string }, cmd: Call): Promise<void> {
  assertName("topic", topic);
  const format = opts.format === "table" ? undefined : formatterFor(opts.format);
  const { mq } = await openBackend(cmd);
  try {
    const name = deadLetterTopic(topic, (await mq.topicConfig(topic))?.dlq);
    if (!(await mq.topicConfig(name))) return note(`mq: no dead letters for "${topic}"`);
    const rows: (string | number)[][] = [];
    const lines: string[] = [];
    for await (const m of mq.subscribe(name, { follow: false })) {
      if (format) lines.push(format(m));
      else {
        const text = [...m.text()].map((c) => (c < " " ? " " : c)).join("");
        rows.push([
          m.headers[DLQ_HEADERS.offset] ?? "-",
          m.headers[DLQ_HEADERS.attempts] ?? "-",
          m.headers[DLQ_HEADERS.reason] ?? "-",
          m.headers[DLQ_HEADERS.lastFailure] ?? "-",
          text.length > 40 ? text.slice(0, 37) + "..." : text,
        ]);
      }
    }
    if (format) await print(lines.map((l) => l + "\n").join(""));
    else if (rows.length === 0) note(`mq: no dead letters for "${topic}"`);
    else await print(table(["OFFSET", "ATTEMPTS", "REASON", "LAST FAILURE", "PAYLOAD"], rows));
  } finally {
    await mq.close();
  }
}

/** `mq dlq replay <topic>`: dead letters published back to their topic. */
export async function dlqReplay(topic: string, opts: { count?: number }, cmd: Call): Promise<void> {
  assertName("topic", topic);
  const { mq } = await openBackend(cmd);
  try {
    const name = deadLetterTopic(topic, (await mq.topicConfig(topic))?.dlq);
    if (!(await mq.topicConfig(name))) return note(`mq: no dead letters for "${topic}"`);
    const payloads: Uint8Array[] = [];
    const meta: RecordMeta[] = [];
    const lastOffset = new Map<number, number>();
    for await (const m of mq.subscribe(name, { follow: false, count: opts.count })) {
      payloads.push(m.payload.slice());
      // The original id (dead letters keep it), the key and the headers
      // without mq's dead-letter ones; a new timestamp and attempts from 1.
      meta.push({ id: m.id, key: m.key, headers: withoutDeadLetterHeaders(m.record.headers) });
      lastOffset.set(m.partition, m.offset);
    }
    // Not deduplicated: a replay is not a duplicate of the message it replays.
    if (payloads.length > 0) {
      await mq.publishRecords(topic, batchOf(payloads, meta), { deduplicate: false });
    }
    for (const [p, o] of lastOffset) await mq.adapter.trim(name, p, o + 1);
    note(
      `mq: replayed ${payloads.length} dead letter${
        payloads.length === 1 ? "" : "s"
      } to "${topic}"`,
    );
  } finally {
    await mq.close();
  }
}

/** `mq dlq purge <topic>`: every dead letter of a topic removed. */
export async function dlqPurge(topic: string, cmd: Call): Promise<void> {
  assertName("topic", topic);
  const { mq } = await openBackend(cmd);
  try {
    const name = deadLetterTopic(topic, (await mq.topicConfig(topic))?.dlq);
    const n = (await mq.topicConfig(name)) ? await mq.topics.purge(name) : 0;
    note(`mq: purged ${n} dead letter${n === 1 ? "" : "s"} of "${topic}"`);
  } finally {
    await mq.close();
  }
}
