/** `mq metrics`: the Prometheus text of every topic and group, once. */
import type { Call } from "../definition.ts";
import { assertPattern, formatMetrics, type Mq, overview } from "../../mod.ts";
import { openBackend, print } from "../runtime.ts";

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

/** `mq metrics`, with its options as parsed (see `cli/definitions/metrics.ts`). */
export async function metricsCommand(opts: { topics: string[] }, cmd: Call): Promise<void> {
  const { mq } = await openBackend(cmd);
  try {
    await print(await metricsText(mq, { topics: opts.topics }));
  } finally {
    await mq.close();
  }
}
