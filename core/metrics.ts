/**
 * An {@link Overview} in the Prometheus text exposition format (version
 * 0.0.4), as `GET /metrics` of `mq ui` and `mq metrics` print it.
 *
 * @module
 */
import type { Overview } from "./overview.ts";

/** The content type of {@link formatMetrics}' text. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

interface Family {
  name: string;
  type: "gauge" | "counter";
  help: string;
}

const TOPIC: [Family, (t: Overview["topics"][number]) => number | null][] = [
  [
    { name: "mq_topic_partitions", type: "gauge", help: "Partitions of the topic." },
    (t) => t.partitions,
  ],
  [
    { name: "mq_topic_messages", type: "gauge", help: "Messages stored in the topic." },
    (t) => t.messages,
  ],
  [
    { name: "mq_topic_bytes", type: "gauge", help: "Bytes the topic's messages take in storage." },
    (t) => t.bytes,
  ],
  [
    {
      name: "mq_topic_published_total",
      type: "counter",
      help: "Messages ever published to the topic.",
    },
    (t) => t.published,
  ],
  [
    {
      name: "mq_topic_dead_letters",
      type: "gauge",
      help: "Messages waiting in the topic's dead-letter topic.",
    },
    (t) => t.deadLetters,
  ],
  [
    { name: "mq_topic_delayed", type: "gauge", help: "Messages waiting for their delivery time." },
    (t) => t.delayed,
  ],
];

const GROUP: [Family, (g: Overview["topics"][number]["groups"][number]) => number][] = [
  [{
    name: "mq_group_lag",
    type: "gauge",
    help: "Messages of the topic the group has not settled.",
  }, (
    g,
  ) => g.lag],
  [
    {
      name: "mq_group_in_flight",
      type: "gauge",
      help: "Messages leased to the group's consumers.",
    },
    (
      g,
    ) => g.inFlight,
  ],
  [
    { name: "mq_group_retrying", type: "gauge", help: "Messages waiting for another attempt." },
    (g) => g.retrying,
  ],
  [
    {
      name: "mq_group_dead_letters_total",
      type: "counter",
      help: "Messages the group dead-lettered.",
    },
    (g) => g.deadLettered,
  ],
  [
    {
      name: "mq_group_expired_total",
      type: "counter",
      help: "Messages that expired before the group got them.",
    },
    (g) => g.expired,
  ],
  [
    {
      name: "mq_group_delivered_total",
      type: "counter",
      help: "Offsets handed out to the group's consumers.",
    },
    (g) => g.delivered,
  ],
  [
    {
      name: "mq_group_settled_total",
      type: "counter",
      help: "Offsets the group settled (acked or dead-lettered).",
    },
    (g) => g.settled,
  ],
];

/** A label value escaped as the format says: backslash, double quote and newline. */
function label(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/**
 * The Prometheus text of a snapshot: per topic `mq_topic_messages`,
 * `mq_topic_bytes`, `mq_topic_published_total`, ...; per group
 * `mq_group_lag`, `mq_group_in_flight`, `mq_group_dead_letters_total`,
 * `mq_group_delivered_total`, ...; and `mq_topics`.
 *
 * @example
 * ```ts
 * import { Mq } from "./client.ts";
 * import { overview } from "./overview.ts";
 * import { formatMetrics } from "./metrics.ts";
 * import { MemoryAdapter } from "../adapters/memory/mod.ts";
 * const mq = new Mq(new MemoryAdapter());
 * await mq.publish("orders", "x");
 * const text = formatMetrics(await overview(mq));
 * console.log(text.includes('mq_topic_messages{topic="orders"} 1')); // true
 * await mq.close();
 * ```
 */
export function formatMetrics(o: Overview): string {
  const lines: string[] = [
    "# HELP mq_topics Topics in the store.",
    "# TYPE mq_topics gauge",
    `mq_topics ${o.topics.length}`,
  ];
  for (const [f, value] of TOPIC) {
    lines.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
    for (const t of o.topics) {
      const v = value(t);
      if (v !== null) lines.push(`${f.name}{topic="${label(t.name)}"} ${v}`);
    }
  }
  for (const [f, value] of GROUP) {
    lines.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
    for (const t of o.topics) {
      const topic = label(t.name);
      for (const g of t.groups) {
        lines.push(`${f.name}{topic="${topic}",group="${label(g.name)}"} ${value(g)}`);
      }
    }
  }
  return lines.join("\n") + "\n";
}
