/**
 * The NATS JetStream backend (`nats://[user:pass@]host:port`): how `mq` scales
 * past one machine, on an existing NATS cluster.
 *
 * @example
 * ```ts ignore
 * import { connect } from "../../mod.ts";
 * const mq = await connect("nats://127.0.0.1:4222");
 * await mq.publish("orders", "hello");
 * await mq.close();
 * ```
 *
 * @module
 */
export { NatsAdapter, streamName, subjectOf } from "./nats_adapter.ts";
export { connectNats, replicasOf } from "./connection.ts";
