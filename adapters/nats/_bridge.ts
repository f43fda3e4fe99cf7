/**
 * What `mq bridge` needs of NATS, loaded only when a bridge uses it: a sink
 * onto subjects (`--to nats://...`) and bringing subjects in (`--from`), as
 * the connector contract (`BrokerConnector` in core/bridge.ts) has it.
 *
 * @module
 */
import type { BridgeSink, IntoOptions, SinkOptions } from "../../core/bridge.ts";
import type { BackendUrl } from "../../core/backend_url.ts";
import type { Mq } from "../../core/client.ts";
import { connectNats } from "./connection.ts";
import { bridgeFromNats, natsSubjectSink } from "./_subject_bridge.ts";

export { connectNats } from "./connection.ts";
export { bridgeFromNats, type FromNatsOptions, natsSubjectSink } from "./_subject_bridge.ts";

/**
 * A sink onto the subjects named by `options.target` (default: like the
 * topics), through JetStream where a stream covers them.
 *
 * @example
 * ```ts ignore
 * import { parseBackendUrl } from "../../core/backend_url.ts";
 * const sink = await subjectSink(parseBackendUrl("nats://127.0.0.1:4222"), { target: "mq.{topic}" });
 * ```
 */
export async function subjectSink(url: BackendUrl, options: SinkOptions = {}): Promise<BridgeSink> {
  return natsSubjectSink(await connectNats(url), { target: options.target });
}

/** Brings `options.subjects` into a local topic; resolves to how many messages were stored. */
export async function bridgeInto(
  url: BackendUrl,
  target: Mq,
  options: IntoOptions,
): Promise<number> {
  const nc = await connectNats(url);
  try {
    return await bridgeFromNats(nc, target, options);
  } finally {
    await nc.drain().catch(() => {});
  }
}
