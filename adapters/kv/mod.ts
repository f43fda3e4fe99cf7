/**
 * The Deno KV backend (`kv:<path>`, `kv::memory:`, `kv:https://...`).
 *
 * @example
 * ```ts ignore
 * import { KvAdapter } from "./mod.ts";
 * import { Mq } from "../../core/client.ts";
 * const mq = new Mq(await KvAdapter.open(":memory:"));
 * await mq.publish("greetings", "hello");
 * await mq.close();
 * ```
 *
 * @module
 */
export { KvAdapter } from "./kv_adapter.ts";
