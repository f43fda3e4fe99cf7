/**
 * The filesystem backend (`file:<dir>`), the embedded default: append-only
 * segment files of CRC-checked records per partition, a sparse offset index,
 * state documents replaced atomically, file locks for several processes.
 *
 * @example
 * ```ts
 * import { FsAdapter } from "./mod.ts";
 * import { Mq } from "../../core/client.ts";
 * const dir = await Deno.makeTempDir();
 * const mq = new Mq(await FsAdapter.open(dir));
 * await mq.publish("greetings", "hello");
 * await mq.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */
export { FsAdapter, type FsOptions } from "./fs_adapter.ts";
export type { SyncPolicy } from "./partition_writer.ts";
