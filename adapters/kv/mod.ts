/**
 * The Deno KV backend (`kv:<path>`, `kv::memory:`, `kv:https://...`).
 *
 * @example
 * ```ts
 * import { KvAdapter } from "./mod.ts";
 * import { Mq } from "../../core/client.ts";
 * const mq = new Mq(await KvAdapter.open(":memory:"));
 * await mq.publish("greetings", "hello");
 * await mq.close();
 * ```
 *
 * @module
 */
export { KvAdapter, MAX_APPEND_BYTES, MAX_PAYLOAD_BYTES, MAX_STATE_BYTES } from "./kv_adapter.ts";
export type { KvOptions } from "./kv_adapter.ts";
export type { KvCallLimits } from "./_kv_calls.ts";
