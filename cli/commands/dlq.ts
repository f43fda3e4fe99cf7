/** `mq dlq ls|replay|purge`: the dead letters of a topic. */
import type { Command } from "commander";
import { assertName } from "../../core/names.ts";
import { deadLetterTopic, DLQ_HEADERS, withoutDeadLetterHeaders } from "../../core/dead_letter.ts";
import { batchOf, type RecordMeta } from "../../core/record.ts";
import { formatterFor } from "../message_format.ts";
import { note, openBackend, print, wholeNumber } from "../runtime.ts";
import { table } from "./topics.ts";

/** Adds `dlq` to the program. */
export function registerDlq(program: Command): void {
  const dlq = program
    .command("dlq")
    .summary("inspect, replay and purge dead letters")
    .description("The dead letters of a topic (messages that failed --max-attempts times).")
    .addHelpText(
      "after",
      "\nExamples:\n  mq dlq ls jobs\n  mq dlq replay jobs -n 10\n  mq dlq purge jobs",
    );

  dlq
    .command("ls")
    .description("List dead letters: offset, attempts, reason, payload.")
    .argument("<topic>")
    .option("-f, --format <format>", "table, json, or a template", "table")
    .addHelpText(
      "after",
      `
Examples:
  mq dlq ls jobs                             offset, attempts, reason, payload
  mq dlq ls jobs --format json | jq .headers`,
    )
    .action(async (topic: string, opts: { format: string }, cmd: Command) => {
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
    });

  dlq
    .command("replay")
    .description(
      "Publish dead letters back to the topic with their ids, keys and headers (attempts start again) and remove them from the dead-letter topic.",
    )
    .argument("<topic>")
    .option("-n, --count <n>", "replay only the first N", wholeNumber("--count", 1))
    .addHelpText(
      "after",
      `
Examples:
  mq dlq replay jobs                         every dead letter back to jobs
  mq dlq replay jobs -n 1                    try the oldest one again`,
    )
    .action(async (topic: string, opts: { count?: number }, cmd: Command) => {
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
    });

  dlq
    .command("purge")
    .description("Remove every dead letter of a topic.")
    .argument("<topic>")
    .addHelpText(
      "after",
      `
Examples:
  mq dlq purge jobs                          drop them for good`,
    )
    .action(async (topic: string, _opts: unknown, cmd: Command) => {
      assertName("topic", topic);
      const { mq } = await openBackend(cmd);
      try {
        const name = deadLetterTopic(topic, (await mq.topicConfig(topic))?.dlq);
        const n = (await mq.topicConfig(name)) ? await mq.topics.purge(name) : 0;
        note(`mq: purged ${n} dead letter${n === 1 ? "" : "s"} of "${topic}"`);
      } finally {
        await mq.close();
      }
    });
}
