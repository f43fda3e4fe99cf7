/** `mq topics`: list, create, info, purge, rm. */
import type { Command } from "commander";
import { formatDuration, parseDuration } from "../../core/duration.ts";
import type { TopicConfig } from "../../core/topic_config.ts";
import { note, openBackend, print, wholeNumber } from "../runtime.ts";
import { describe } from "./exchange.ts";

const EXAMPLES = `
Examples:
  mq topics                                  list topics with message counts
  mq topics create orders --partitions 4     a topic with four partitions
  mq topics create logs --retention-age 7d --max-bytes 1000000000
  mq topics info orders                      offsets, sizes, groups with lag
  mq topics purge orders                     remove every message (offsets go on)
  mq topics rm orders                        delete the topic, its messages and groups`;

interface CreateOptions {
  partitions?: number;
  retentionAge?: string;
  maxMessages?: number;
  maxBytes?: number;
  overflow?: string;
  dedupWindow?: string;
  maxAttempts?: number;
  dlq?: string;
  dlqExpired?: boolean;
  maxMessageBytes?: number;
  replicas?: number;
}

/** Adds `topics` and its subcommands to the program. */
export function registerTopics(program: Command): void {
  const topics = program
    .command("topics")
    .summary("list and manage topics")
    .description(
      "List topics with message counts; subcommands create, inspect, purge and remove them.",
    )
    .option("--json", "print JSON")
    .addHelpText("after", EXAMPLES)
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const { mq } = await openBackend(cmd);
      try {
        const list = await mq.topics.list();
        if (opts.json) return await print(JSON.stringify(list) + "\n");
        if (list.length === 0) return note("mq: no topics yet (mq pub <topic> creates one)");
        await print(
          table(
            ["TOPIC", "PARTITIONS", "MESSAGES"],
            list.map((t) => [t.name, t.partitions, t.messages]),
          ),
        );
      } finally {
        await mq.close();
      }
    });

  topics
    .command("create")
    .description("Create a topic with settings (a publish creates one with defaults).")
    .argument("<topic>")
    .option(
      "--partitions <n>",
      "partitions (a key's hash picks one)",
      wholeNumber("--partitions", 1),
    )
    .option("--retention-age <dur>", "remove messages older than this")
    .option(
      "--max-messages <n>",
      "keep at most N messages per partition",
      wholeNumber("--max-messages", 1),
    )
    .option(
      "--max-bytes <n>",
      "keep at most N bytes per partition (as stored)",
      wholeNumber("--max-bytes", 1),
    )
    .option("--overflow <policy>", "when full: drop-oldest or reject", "drop-oldest")
    .option("--dedup-window <dur>", "drop a repeated message id within this window", "2m")
    .option(
      "--max-attempts <n>",
      "deliveries before a message is dead-lettered",
      wholeNumber("--max-attempts", 1),
    )
    .option("--dlq <topic>", "dead-letter topic (default <topic>.dlq)")
    .option("--dlq-expired", "move expired messages (pub --ttl) to the dead-letter topic too")
    .option(
      "--max-message-bytes <n>",
      "largest message accepted",
      wholeNumber("--max-message-bytes", 1),
    )
    .option(
      "--replicas <n>",
      "copies of each message on different servers, 1 to 5 (a NATS cluster; default ?replicas= of the URL)",
      wholeNumber("--replicas", 1),
    )
    .addHelpText(
      "after",
      `
Examples:
  mq topics create orders --partitions 4          keys spread over four partitions
  mq --url nats://h1:4222,h2:4222,h3:4222 topics create orders --replicas 3
  mq topics create logs --retention-age 7d --max-bytes 1000000000
  mq topics create jobs --max-attempts 3 --dlq jobs.failed
  mq topics create feed --max-messages 1000 --overflow reject   full: pub fails (exit 1)`,
    )
    .action(async (name: string, opts: CreateOptions, cmd: Command) => {
      const settings: Partial<TopicConfig> = {
        partitions: opts.partitions,
        retentionAgeMs: opts.retentionAge === undefined
          ? undefined
          : parseDuration(opts.retentionAge),
        maxMessages: opts.maxMessages,
        maxBytes: opts.maxBytes,
        overflow: opts.overflow as TopicConfig["overflow"],
        dedupWindowMs: opts.dedupWindow === undefined ? undefined : parseDuration(opts.dedupWindow),
        maxAttempts: opts.maxAttempts,
        dlq: opts.dlq,
        deadLetterExpired: opts.dlqExpired,
        maxMessageBytes: opts.maxMessageBytes,
        replicas: opts.replicas,
      };
      const { mq } = await openBackend(cmd);
      try {
        const c = await mq.topics.create(name, settings);
        note(
          `mq: created topic "${name}" with ${c.partitions} partition${
            c.partitions === 1 ? "" : "s"
          }${c.replicas !== undefined && c.replicas > 1 ? `, ${c.replicas} replicas each` : ""}`,
        );
      } finally {
        await mq.close();
      }
    });

  topics
    .command("info")
    .description("Show a topic's settings, offsets, sizes and groups (lag, in flight).")
    .argument("<topic>")
    .option("--json", "print JSON")
    .addHelpText(
      "after",
      `
Examples:
  mq topics info orders                      settings, offsets, groups with lag
  mq topics info orders --json | jq '.groups[] | {name, lag}'`,
    )
    .action(async (name: string, opts: { json?: boolean }, cmd: Command) => {
      const { mq } = await openBackend(cmd);
      try {
        const info = await mq.topics.info(name);
        const bindings = await mq.exchanges.bindingsTo(name);
        // `--json` after the name may land on the parent `topics` command.
        const json = opts.json || cmd.parent?.opts().json;
        if (json) return await print(JSON.stringify({ ...info, bindings }) + "\n");
        const c = info.config;
        const lines = [
          `topic:      ${info.name}`,
          `messages:   ${info.messages}`,
          `partitions: ${c.partitions}`,
          `settings:   max-message-bytes=${c.maxMessageBytes} dedup-window=${
            formatDuration(c.dedupWindowMs)
          } max-attempts=${c.maxAttempts} overflow=${c.overflow}` +
          (c.retentionAgeMs ? ` retention-age=${formatDuration(c.retentionAgeMs)}` : "") +
          (c.maxMessages ? ` max-messages=${c.maxMessages}` : "") +
          (c.maxBytes ? ` max-bytes=${c.maxBytes}` : "") +
          ` dlq=${c.dlq ?? info.name + ".dlq"}` +
          (c.deadLetterExpired ? " dlq-expired" : "") +
          (c.replicas !== undefined ? ` replicas=${c.replicas}` : ""),
          "",
          table(
            ["PARTITION", "START", "END", "BYTES"],
            info.partitions.map((p) => [p.partition, p.start, p.end, p.bytes ?? "-"]),
          ).trimEnd(),
        ];
        if (info.groups.length > 0) {
          lines.push(
            "",
            table(
              ["GROUP", "LAG", "IN-FLIGHT", "RETRYING", "DELAYED", "DEAD-LETTERED", "EXPIRED"],
              info.groups.map((
                g,
              ) => [g.name, g.lag, g.inFlight, g.retrying, g.delayed, g.deadLettered, g.expired]),
            ).trimEnd(),
          );
        }
        if (bindings.length > 0) {
          lines.push(
            "",
            table(["EXCHANGE", "BINDING"], bindings.map((b) => [b.exchange, describe(b)]))
              .trimEnd(),
          );
        }
        await print(lines.join("\n") + "\n");
      } finally {
        await mq.close();
      }
    });

  topics
    .command("purge")
    .description("Remove every message of a topic; offsets go on from where they were.")
    .argument("<topic>")
    .addHelpText(
      "after",
      `
Examples:
  mq topics purge orders                     empty it; settings and groups stay`,
    )
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { mq } = await openBackend(cmd);
      try {
        const n = await mq.topics.purge(name);
        note(`mq: purged ${n} message${n === 1 ? "" : "s"} from "${name}"`);
      } finally {
        await mq.close();
      }
    });

  topics
    .command("rm")
    .description("Delete a topic with its messages and groups.")
    .argument("<topic>")
    .addHelpText(
      "after",
      `
Examples:
  mq topics rm orders                        gone, with its messages and groups
  mq topics --json | jq -r '.[].name' | grep '^tmp-' | xargs -n1 mq topics rm`,
    )
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { mq } = await openBackend(cmd);
      try {
        await mq.topics.remove(name);
        note(`mq: removed topic "${name}"`);
      } finally {
        await mq.close();
      }
    });
}

/** A plain text table with aligned columns. */
export function table(head: string[], rows: (string | number)[][]): string {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const widths = head.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  return cells.map((r) =>
    r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join("  ")
  ).join("\n") + "\n";
}
