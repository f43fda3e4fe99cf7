/**
 * mq: message queues from TypeScript and the shell, over pluggable backends.
 * `connect(url)` opens a backend by URL (`file:<dir>`, `memory:`, ...) and
 * gives a client to publish, subscribe and administer topics.
 *
 * @example
 * ```ts
 * import { connect } from "./mod.ts";
 * const mq = await connect("memory:");
 * await mq.publish("orders", "hello", { key: "customer-1" });
 * for await (const m of mq.subscribe("orders", { group: "billing", follow: false })) {
 *   console.log(m.offset, m.text());
 *   m.ack();
 * }
 * await mq.close();
 * ```
 *
 * @module
 */
export * from "./core/mod.ts";
export { builtinRegistry } from "./adapters/builtin.ts";
export { connect } from "./connect.ts";
