/**
 * The memory backend (`memory:`): everything in this process, nothing kept.
 * The reference for the conformance suite and handy in tests.
 *
 * @example
 * ```ts
 * import { MemoryAdapter } from "./mod.ts";
 * import { Mq } from "../../core/client.ts";
 * const mq = new Mq(new MemoryAdapter());
 * await mq.publish("greetings", "hello");
 * ```
 *
 * @module
 */
export { MemoryAdapter } from "./memory_adapter.ts";
