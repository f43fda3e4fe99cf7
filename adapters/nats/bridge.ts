/** What `mq bridge` needs of NATS, loaded only when a bridge uses it. */
export { connectNats } from "./connection.ts";
export { bridgeFromNats, type FromNatsOptions, natsSubjectSink } from "./subject_bridge.ts";
