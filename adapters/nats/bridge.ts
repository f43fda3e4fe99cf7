/**
 * What `mq bridge` needs of NATS, loaded only when a bridge uses it: a sink
 * onto subjects (`--to nats://...`) and bringing subjects in (`--from`).
 *
 * @module
 */
import type { BridgeSink, SinkOptions } from "../../core/bridge.ts";
import type { BackendUrl } from "../../core/backend_url.ts";
import type { Mq } from "../../core/client.ts";
import { connectNats } from "./connection.ts";
import { bridgeFromNats, type FromNatsOptions, natsSubjectSink } from "./subject_bridge.ts";

export { connectNats } from "./connection.ts";
export { bridgeFromNats, type FromNatsOptions, natsSubjectSink } from "./subject_bridge.ts";

/** A sink onto the subjects named like the topics (JetStream where a stream covers them). */
export async function subjectSink(
  url: BackendUrl,
  _options: SinkOptions = {},
): Promise<BridgeSink> {
  return natsSubjectSink(await connectNats(url));
}

/** Brings `options.subjects` into a local topic; resolves to how many messages were stored. */
export async function bridgeInto(
  url: BackendUrl,
  target: Mq,
  options: FromNatsOptions,
): Promise<number> {
  const nc = await connectNats(url);
  try {
    return await bridgeFromNats(nc, target, options);
  } finally {
    await nc.drain().catch(() => {});
  }
}
