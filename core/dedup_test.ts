import { deepStrictEqual as eq } from "node:assert/strict";
import { DedupIndex } from "./_dedup.ts";
import { batchOf } from "./record.ts";

const one = new Uint8Array(1);
const batch = (ids: (string | undefined)[]) =>
  batchOf(ids.map(() => one), ids.map((id) => (id === undefined ? undefined : { id })));

Deno.test("DedupIndex: ids within the window are hits at their offsets, repeats in a batch are dropped", () => {
  const ix = new DedupIndex();
  const b = batch(["a", "b", "a", undefined, "c"]);
  const f = ix.filter(b, 1000, 0);
  eq(f.hits, []);
  const kept = f.keep();
  eq(kept, [0, 1, 3, 4]);
  ix.noteBatch(b, kept, 0, 10);
  const g = ix.filter(batch(["c", "d", "a"]), 1000, 999);
  eq(g.hits, [{ index: 0, offset: 13 }, { index: 2, offset: 10 }]);
  // The backend confirms one of the two (the other's stored id differs: a hash alike).
  eq(g.keep(new Set([0])), [1, 2]);
  // Out of the window: no hits.
  eq(ix.filter(batch(["a", "b", "c"]), 1000, 1000).hits, []);
});

Deno.test("DedupIndex: 300,000 ids through growth, pruning and ids stored again", () => {
  const ix = new DedupIndex();
  const N = 300_000;
  for (let i = 0; i < N; i++) ix.note(`id-${i}`, i, i);
  eq(ix.size, N);
  // Every id is found at its own offset (no entry lost by growth or rehashing).
  const all = ix.filter(batch(Array.from({ length: N }, (_, i) => `id-${i}`)), 1e9, N);
  eq(all.hits.length, N);
  eq(all.hits.every((h) => h.offset === h.index), true);
  // A window of 1,000 ms keeps the ids stored less than that before.
  ix.prune(1000, N);
  eq(ix.size, 999);
  const f = ix.filter(batch([`id-${N - 1000}`, `id-${N - 999}`, `id-${N - 1}`]), 1000, N);
  eq(f.hits.map((h) => h.index), [1, 2]);
  // An id stored again is found at its new offset; new ids after pruning are found too.
  ix.note(`id-${N - 1}`, N, N + 5);
  for (let i = 0; i < 5000; i++) ix.note(`new-${i}`, N, N + 10 + i);
  eq(ix.filter(batch([`id-${N - 1}`, "new-4999", "new-0"]), 1000, N).hits, [
    { index: 0, offset: N + 5 },
    { index: 1, offset: N + 10 + 4999 },
    { index: 2, offset: N + 10 },
  ]);
  ix.clear();
  eq([ix.size, ix.filter(batch(["new-0"]), 1000, N).hits], [0, []]);
});

Deno.test("reserveIds: a reservation never stored is taken over once its grace has passed since it was made, on the client's clock", async () => {
  const { reserveIds, RESERVATION_GRACE_MS } = await import("./_dedup.ts");
  const { ManualClock } = await import("./clock.ts");
  const { MemoryAdapter } = await import("../adapters/memory/mod.ts");
  const adapter = new MemoryAdapter();
  const t0 = 1_000_000;
  // A publisher reserved "x" at t0 and died before its append (nothing stored).
  const first = await reserveIds(adapter, "t", batch(["x"]), 60_000, t0, 2);
  eq(first.keep, [0]);
  // A retry 100 ms before the grace ends waits those 100 ms, not a grace of its own.
  const clock = new ManualClock(t0 + RESERVATION_GRACE_MS - 100);
  let kept: number[] | undefined;
  const retry = reserveIds(adapter, "t", batch(["x"]), 60_000, clock.now(), 2, clock).then((r) => {
    kept = r.keep;
  });
  for (let i = 0; i < 2000 && clock.pendingTimers === 0; i++) {
    await new Promise((r) => setTimeout(r, 5));
  }
  eq(
    [kept, clock.pendingTimers],
    [undefined, 1],
    "waiting on the clock for the publish in progress",
  );
  await clock.advance(100);
  await retry;
  eq(kept, [0], "taken over: the retry stores the message");
  await adapter.close();
});
