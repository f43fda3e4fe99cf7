/**
 * What the fs backend is, known without opening it: its capabilities, and
 * whether a path can be its data folder. `mq info` asks only this, so it
 * loads neither the adapter nor the log code.
 *
 * @module
 */
import type { Capabilities } from "../../core/adapter.ts";
import { MqError } from "../../core/errors.ts";
import { MAX_FS_TRANSACTION_BYTES } from "./_journals.ts";

/** What every fs backend can do. */
export function fsCapabilities(): Capabilities {
  return {
    persistent: true,
    multiProcess: true,
    transactions: "atomic",
    maxTransactionBytes: MAX_FS_TRANSACTION_BYTES,
  };
}

/**
 * Checks that `root` can be a data folder: a folder, or nothing yet (the
 * first write makes it, so that reading commands leave no folder behind).
 *
 * @throws {MqError} `IO` when `root` is a file or cannot be looked at
 */
export function checkDataFolder(root: string): void {
  try {
    // Synchronous: one stat costs less than a round trip to the thread pool.
    let st: Deno.FileInfo | undefined;
    try {
      st = Deno.statSync(root);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    if (st && !st.isDirectory) throw new Error("not a directory");
  } catch (cause) {
    throw new MqError(
      "IO",
      `cannot use ${root} as the data folder: ${(cause as Error).message}`,
      { cause },
    );
  }
}
