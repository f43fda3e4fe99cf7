/**
 * The one conformance suite: every rule of the core, run against every
 * adapter. An adapter joins with a five-line file that calls
 * {@link conformance} with a factory and its features; a case is skipped only
 * where a feature or a capability rules it out (as Watermill's universal tests
 * do). Each case uses its own topic. The cases live in `cases_*.ts`, one file
 * per area.
 */
import { Mq } from "../../core/client.ts";
import type { CaseNeeds, DefineCase, Features } from "./_helpers.ts";
import { logCases } from "./cases_log.ts";
import { groupCases } from "./cases_groups.ts";
import { adminCases } from "./cases_admin.ts";
import { routingCases } from "./cases_routing.ts";
import { readingCases } from "./cases_reading.ts";
import { transactionCases } from "./cases_transactions.ts";

export type { Features } from "./_helpers.ts";

/** Registers the suite for one backend. */
export function conformance(name: string, features: Features): void {
  const test: DefineCase = (title, fn, needs: CaseNeeds = {}) => {
    Deno.test({
      name: `${name}: ${title}`,
      ignore: Boolean(features.skip) || (needs.persistent === true && !features.persistent) ||
        (needs.atomicTransactions === true && features.transactions !== "atomic") ||
        (needs.transactionLimit === true && features.maxTransactionBytes === undefined),
      sanitizeOps: false,
      sanitizeResources: false,
      fn: async (t) => {
        const adapter = await features.open();
        if (needs.multiProcess && !adapter.capabilities.multiProcess) {
          await adapter.close();
          await features.cleanup?.();
          console.log(`${name}: skipped "${title}": the backend is not shared by processes`);
          return void t;
        }
        const mq = new Mq(adapter);
        try {
          await fn(mq, features);
        } finally {
          await mq.close().catch(() => {});
          await features.cleanup?.();
        }
      },
    });
  };
  logCases(test);
  groupCases(test);
  adminCases(test);
  routingCases(test);
  readingCases(test);
  transactionCases(test);
}
