/**
 * The one conformance suite: every rule of the core, run against every
 * adapter. An adapter joins with a five-line file that awaits
 * {@link conformance} with a factory; the suite opens the backend once to read
 * its declared `capabilities`, and a case they rule out is registered as
 * ignored (shown as such in the test summary), as Watermill's universal tests
 * skip what a backend's features exclude. Each case uses its own topic. The
 * cases live in `cases_*.ts`, one file per area: those through `Mq`, and the
 * raw storage contract (`cases_storage.ts`) run on the adapter directly.
 */
import type { Capabilities, StorageAdapter } from "../../core/adapter.ts";
import { Mq } from "../../core/client.ts";
import {
  type CaseNeeds,
  type DefineCase,
  type DefineStorageCase,
  type Features,
  ruledOut,
} from "./_helpers.ts";
import { logCases } from "./cases_log.ts";
import { groupCases } from "./cases_groups.ts";
import { adminCases } from "./cases_admin.ts";
import { routingCases } from "./cases_routing.ts";
import { readingCases } from "./cases_reading.ts";
import { transactionCases } from "./cases_transactions.ts";
import { storageCases } from "./cases_storage.ts";

export type { Features } from "./_helpers.ts";

/** The capabilities the suite goes by: the adapter's, `transactions` derived where unset. */
export function declared(adapter: StorageAdapter): Capabilities {
  const caps = adapter.capabilities;
  return {
    ...caps,
    transactions: caps.transactions ??
      (adapter.commitTransaction ? "atomic" : "effectively-once"),
  };
}

/** Registers the suite for one backend (opening it once to read its capabilities). */
export async function conformance(name: string, features: Features): Promise<void> {
  let caps: Capabilities | undefined;
  if (!features.skip) {
    const probe = await features.open();
    caps = declared(probe);
    await probe.close();
    await features.cleanup?.();
  }
  const ignored = (needs: CaseNeeds) =>
    features.skip !== undefined || caps === undefined || ruledOut(caps, needs) !== undefined;
  const test: DefineCase = (title, fn, needs: CaseNeeds = {}) => {
    Deno.test({
      name: `${name}: ${title}`,
      ignore: ignored(needs),
      sanitizeOps: false,
      sanitizeResources: false,
      fn: async () => {
        const mq = new Mq(await features.open());
        try {
          await fn(mq, features);
        } finally {
          await mq.close().catch(() => {});
          await features.cleanup?.();
        }
      },
    });
  };
  const storage: DefineStorageCase = (title, fn, needs: CaseNeeds = {}) => {
    Deno.test({
      name: `${name}: storage contract: ${title}`,
      ignore: ignored(needs),
      sanitizeOps: false,
      sanitizeResources: false,
      fn: async () => {
        const adapter = await features.open();
        try {
          await fn(adapter, features);
        } finally {
          await adapter.close().catch(() => {});
          await features.cleanup?.();
        }
      },
    });
  };
  storageCases(storage);
  logCases(test);
  groupCases(test);
  adminCases(test);
  routingCases(test);
  readingCases(test);
  transactionCases(test);
}
