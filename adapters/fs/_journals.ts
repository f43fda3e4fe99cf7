/**
 * What the fs adapter needs of transactions before any is used: the guard's
 * signal, the size limit, and whether the backend folder holds journals at
 * all. With none there (the usual case), a process that only publishes or
 * reads never loads the journal code (`_transactions.ts`).
 *
 * @module
 */

/** Thrown by a guard: a journal touching this lock must be rolled forward first. */
export const TX_PENDING: unique symbol = Symbol("a transaction to roll forward");

/** The most record bytes one fs transaction holds (its journal is built in memory). */
export const MAX_FS_TRANSACTION_BYTES = 256 * 1024 * 1024;

/**
 * Whether the journal folder `dir` holds a journal (committed, `.commit`, or
 * one being written, `.tmp`); false when there is no such folder.
 */
export function hasJournals(dir: string): boolean {
  // Synchronous: a folder that is missing or nearly empty is listed faster than
  // a round trip to Deno's thread pool, and this runs before every append.
  try {
    for (const e of Deno.readDirSync(dir)) {
      if (e.isFile && (e.name.endsWith(".commit") || e.name.endsWith(".tmp"))) return true;
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return false;
}
