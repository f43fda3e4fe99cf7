/** `mq metrics`: the Prometheus text of every topic and group, once. */
import type { Command } from "commander";
import type { Mq } from "../../core/client.ts";
import { formatMetrics } from "../../core/metrics.ts";
import { overview } from "../../core/overview.ts";
import { assertPattern } from "../../core/routing.ts";
import { collect, openBackend, print } from "../runtime.ts";

/** Options of {@link metricsText}. */
export interface MetricsOptions {
  /** Only topics matching these names or patterns (`*`, `#`). */
  topics: string[];
}

/**
 * The Prometheus text `mq metrics` prints (and `GET /metrics` of `mq ui` serves).
 *
 * @throws {MqError} `INVALID_ARGUMENT` for a bad pattern
 */
export async function metricsText(mq: Mq, options: MetricsOptions): Promise<string> {
  for (const p of options.topics) assertPattern(p);
  return formatMetrics(await overview(mq, { topics: options.topics }));
}

/** Adds `metrics` to the program. */
export function registerMetrics(program: Command): void {
  program
    .command("metrics")
    .summary("print Prometheus metrics of every topic and group, once")
    .description(
      "Print per topic messages, bytes, published total, dead letters; per group lag, in flight, dead letters, delivered total; in the Prometheus text format.",
    )
    .option(
      "--topics <pattern>",
      "only topics matching (repeatable; * one word, # any)",
      collect,
      [],
    )
    .addHelpText(
      "after",
      `
Examples:
  mq metrics                                  every topic and group
  mq metrics --topics 'orders.*' | grep mq_group_lag
  mq metrics > /var/lib/node_exporter/textfile/mq.prom   for node_exporter's textfile collector`,
    )
    .action(async (opts: { topics: string[] }, cmd: Command) => {
      const { mq } = await openBackend(cmd);
      try {
        await print(await metricsText(mq, { topics: opts.topics }));
      } finally {
        await mq.close();
      }
    });
}
