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
import { Mq, type MqOptions } from "./core/client.ts";
import type { OpenOptions } from "./core/registry.ts";
import { builtinRegistry } from "./adapters/builtin.ts";

export * from "./core/mod.ts";
export { builtinRegistry } from "./adapters/builtin.ts";

/**
 * Opens the backend named by `url` and returns a client.
 *
 * @example
 * ```ts
 * import { connect } from "./mod.ts";
 * const mq = await connect("memory:");
 * const { offset } = await mq.publish("t", "x");
 * await mq.close();
 * ```
 * @throws {MqError} `UNKNOWN_SCHEME`, `INVALID_URL`, `IO`, `UNREACHABLE`
 */
export async function connect(
  url: string,
  options: MqOptions & OpenOptions = {},
): Promise<Mq> {
  return new Mq(await builtinRegistry().open(url, { create: options.create }), options);
}
