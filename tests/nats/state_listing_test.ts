/**
 * Listing state documents on NATS ends while another client keeps writing
 * one of them (as a running group consumer does): `mq groups` hung under a
 * running `mq work --out` when the listing waited for the bucket to go quiet.
 */
import { deepStrictEqual as eq } from "node:assert/strict";
import { available, startNats } from "../../scripts/brokers.ts";
import { connectNats, NatsAdapter } from "../../adapters/nats/mod.ts";
import { parseBackendUrl } from "../../core/backend_url.ts";

const nats = available("nats-server");
const enc = new TextEncoder();

/** `p`, or a failure after `ms` (so that a hang is a failure, not a stuck suite). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not end within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

Deno.test({
  name: "nats: listing and removing state documents end while a document is written all along",
  ignore: !nats.ok,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const broker = await startNats();
    const writer = await NatsAdapter.open(await connectNats(parseBackendUrl(broker.url)));
    const reader = await NatsAdapter.open(await connectNats(parseBackendUrl(broker.url)));
    let stop = false;
    let writing: Promise<void> | undefined;
    try {
      for (const name of ["a", "b", "c"]) {
        eq(await writer.compareAndSet(["groups", "t", name], null, enc.encode("{}")), true);
      }
      await writer.deleteState(["groups", "t", "c"]);
      // Another consumer updates "a" every few milliseconds, for as long as the test runs.
      let writes = 0;
      writing = (async () => {
        for (let i = 0; !stop; i++, writes++) {
          const cur = await writer.getState(["groups", "t", "a"]);
          await writer.compareAndSet(
            ["groups", "t", "a"],
            cur?.version ?? null,
            enc.encode(`${i}`),
          );
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      // The listings below race a writer that is already going.
      for (let i = 0; writes < 20 && i < 4000; i++) await new Promise((r) => setTimeout(r, 5));
      eq(writes >= 20, true, "the writer is writing");
      // The kv.keys() listing ended only after 5 s without a write: here, never.
      const names = await within(reader.listState(["groups", "t"]), 20_000, "listState");
      eq(names.sort(), ["a", "b"]);
      await within(reader.deleteState(["groups", "t", "b"]), 20_000, "deleteState");
      eq(await within(reader.listState(["groups", "t"]), 20_000, "listState"), ["a"]);
    } finally {
      stop = true;
      await writing?.catch(() => {});
      await reader.close();
      await writer.close();
      await broker.stop();
    }
  },
});
