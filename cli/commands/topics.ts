/** `mq topics`: list, create, info, purge, rm. */
import type { Call } from "../definition.ts";
import { deadLetterTopic, formatDuration, parseDuration, type TopicConfig } from "../../connect.ts";
import { note, openBackend, print } from "../runtime.ts";
import { describeBinding, table } from "../format.ts";

/** The options of `mq topics create`, as parsed. */
export interface CreateOptions {
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

/** `mq topics` and `mq topics ls`: every topic with its partitions and messages. */
export async function topicsList(opts: { json?: boolean }, cmd: Call): Promise<void> {
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
}

/** `mq topics create <topic>`: a topic with settings. */
export async function topicsCreate(name: string, opts: CreateOptions, cmd: Call): Promise<void> {
  const settings: Partial<TopicConfig> = {
    partitions: opts.partitions,
    retentionAgeMs: opts.retentionAge === undefined ? undefined : parseDuration(opts.retentionAge),
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
      `mq: created topic "${name}" with ${c.partitions} partition${c.partitions === 1 ? "" : "s"}${
        c.replicas !== undefined && c.replicas > 1 ? `, ${c.replicas} replicas each` : ""
      }`,
    );
  } finally {
    await mq.close();
  }
}

/** `mq topics info <topic>`: settings, offsets, sizes, groups and bindings. */
export async function topicsInfo(name: string, opts: { json?: boolean }, cmd: Call): Promise<void> {
  const { mq } = await openBackend(cmd);
  try {
    const info = await mq.topics.info(name);
    const bindings = await mq.exchanges.bindingsTo(name);
    if (opts.json) return await print(JSON.stringify({ ...info, bindings }) + "\n");
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
      ` dlq=${deadLetterTopic(info.name, c.dlq)}` +
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
        table(["EXCHANGE", "BINDING"], bindings.map((b) => [b.exchange, describeBinding(b)]))
          .trimEnd(),
      );
    }
    await print(lines.join("\n") + "\n");
  } finally {
    await mq.close();
  }
}

/** `mq topics purge <topic>`: every message removed; offsets go on. */
export async function topicsPurge(name: string, cmd: Call): Promise<void> {
  const { mq } = await openBackend(cmd);
  try {
    const n = await mq.topics.purge(name);
    note(`mq: purged ${n} message${n === 1 ? "" : "s"} from "${name}"`);
  } finally {
    await mq.close();
  }
}

/** `mq topics rm <topic>`: the topic, its messages and groups removed. */
export async function topicsRemove(name: string, cmd: Call): Promise<void> {
  const { mq } = await openBackend(cmd);
  try {
    await mq.topics.remove(name);
    note(`mq: removed topic "${name}"`);
  } finally {
    await mq.close();
  }
}
