/** `mq metrics`: the Prometheus text of every topic and group, once. */
import { type CommandDefinition, load } from "../definition.ts";
import type * as Metrics from "../commands/metrics.ts";

/** `mq metrics`, as a definition. */
export const command: CommandDefinition = {
  name: "metrics",
  reads: true,
  summary: "print Prometheus metrics of every topic and group, once",
  description:
    "Print per topic messages, bytes, published total, dead letters; per group lag, in flight, dead letters, delivered total; in the Prometheus text format.",
  options: [{
    long: "topics",
    value: "pattern",
    help: "only topics matching (repeatable; * one word, # any)",
    repeatable: true,
    complete: "topic",
  }],
  examples: [
    ["mq metrics", "every topic and group"],
    ["mq metrics --topics 'orders.*' | grep mq_group_lag"],
    [
      "mq metrics > /var/lib/node_exporter/textfile/mq.prom",
      "for node_exporter's textfile collector",
    ],
  ],
  run: async (call) => {
    const { metricsCommand } = await load<typeof Metrics>(
      import.meta.url,
      "../commands/metrics.ts",
    );
    await metricsCommand(call.options as { topics: string[] }, call);
  },
};
