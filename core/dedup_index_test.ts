import { deepStrictEqual as eq } from "node:assert/strict";
import { DedupIndex } from "./_dedup_index.ts";
import { batchOf } from "./record.ts";

const one = new Uint8Array(1);
const batch = (ids: (string | undefined)[]) =>
  batchOf(ids.map(() => one), ids.map((id) => (id === undefined ? undefined : { id })));
const offsetsOf = (ix: DedupIndex, ids: string[], windowMs: number, now: number) =>
  ix.filter(batch(ids), windowMs, now).hits.map((h) => h.offset);

Deno.test("DedupIndex (compact): 16 bytes an id in chunks, and pruned chunks are given back", () => {
  const ix = new DedupIndex({ chunkSize: 1024 });
  const N = 100_000;
  for (let i = 0; i < N; i++) ix.note(`id-${i}`, i, i);
  // The chunks (16 bytes an id, the last one part used) and a table of at most 8 bytes an id.
  eq(ix.bytes <= N * 16 + 1024 * 16 + N * 2 * 4 * 2, true, `${ix.bytes} bytes`);
  eq(ix.bytes >= N * 16, true);
  ix.prune(1000, N);
  eq(ix.size, 999);
  // Two or three chunks of 1024 hold the 999 left (and one spare): the rest went.
  eq(ix.bytes <= 4 * 1024 * 16 + N * 2 * 4 * 2, true, `${ix.bytes} bytes after the prune`);
  eq(offsetsOf(ix, [`id-${N - 1000}`, `id-${N - 999}`, `id-${N - 1}`], 1000, N), [N - 999, N - 1]);
});

Deno.test("DedupIndex (compact): ids across chunk boundaries expire in order and new ones take the freed chunks", () => {
  const ix = new DedupIndex({ chunkSize: 16 });
  let offset = 0;
  // Rounds of 40 ids a millisecond apart, each round pruned to a window of 25 ms.
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < 40; i++, offset++) ix.note(`r${round}-${i}`, offset, offset);
    ix.prune(25, offset - 1);
    eq(ix.size, 25, `round ${round}`);
    const ids = Array.from({ length: 40 }, (_, i) => `r${round}-${i}`);
    eq(offsetsOf(ix, ids, 25, offset - 1), Array.from({ length: 25 }, (_, i) => offset - 25 + i));
    // 40 ids in chunks of 16 take at most 4, and one spare: freed chunks are used again.
    eq(ix.bytes <= 5 * 16 * 16 + 4096 * 4, true, `round ${round}: ${ix.bytes} bytes`);
  }
  // Everything out of the window: nothing held, and the next ids start afresh.
  ix.prune(25, offset + 1000);
  eq(ix.size, 0);
  ix.note("late", offset + 1000, offset);
  eq(offsetsOf(ix, ["late", "r49-39"], 25, offset + 1000), [offset]);
});

Deno.test("DedupIndex (compact): times and offsets far from the first ones (the bases move)", () => {
  const ix = new DedupIndex({ chunkSize: 16 });
  const t0 = 1_700_000_000_000, day = 86_400_000;
  const o0 = 2 ** 40;
  ix.note("a", t0, o0);
  ix.note("b", t0 + 10, o0 + 1);
  // 30 days later: past an Int32 of milliseconds from the first time.
  const t1 = t0 + 30 * day;
  ix.note("c", t1, o0 + 2 ** 31);
  ix.note("d", t1 + 1, o0 + 2 ** 31 + 7);
  // A window of 31 days still has a and b, at their times and offsets.
  eq(offsetsOf(ix, ["a", "b", "c", "d"], 31 * day, t1 + 2), [
    o0,
    o0 + 1,
    o0 + 2 ** 31,
    o0 + 2 ** 31 + 7,
  ]);
  // b is 1 ms inside a window that ends at t0 + 10 + w.
  eq(offsetsOf(ix, ["a", "b"], 30 * day - 9, t1), [o0 + 1]);
  ix.prune(30 * day - 9, t1);
  eq(ix.size, 3);
  // An offset 2^32 past b's: b no longer fits beside it and is forgotten; c and d stay.
  ix.note("e", t1 + 2, o0 + 1 + 2 ** 32);
  eq(ix.size, 3);
  eq(offsetsOf(ix, ["b", "c", "d", "e"], 31 * day, t1 + 2), [
    o0 + 2 ** 31,
    o0 + 2 ** 31 + 7,
    o0 + 1 + 2 ** 32,
  ]);
  ix.prune(day, t1 + 2);
  eq(ix.size, 3);
  ix.prune(day, t1 + day + 1);
  eq([ix.size, offsetsOf(ix, ["c", "d", "e"], day, t1 + day + 1)], [1, [o0 + 1 + 2 ** 32]]);
});

Deno.test("DedupIndex (compact): ids whose hashes collide are hits, told apart by the stored ids", () => {
  // Every id hashes alike: only the store's ids tell them apart.
  const ix = new DedupIndex({ hash: () => [7, 7] });
  const stored = new Map<number, string>();
  const hits: number[] = [];
  const store = (ids: string[], at: number) => {
    const b = batch(ids);
    const f = ix.filter(b, 60_000, at);
    hits.push(f.hits.length);
    const same = new Set(
      f.hits.filter((h) => stored.get(h.offset) === ids[h.index]).map((h) => h.index),
    );
    const kept = f.keep(same);
    const first = stored.size;
    kept.forEach((i, k) => stored.set(first + k, ids[i]));
    ix.noteBatch(b, kept, at, first);
    return kept.map((i) => ids[i]);
  };
  eq(
    store(["x", "y", "x", "z"], 0),
    ["x", "y", "z"],
    "a repeat in the batch is its id, not its hash",
  );
  // The newest entry of the hash answers (z at offset 2): z is the same, w is not.
  eq(store(["z", "w"], 1), ["w"]);
  eq(stored, new Map([[0, "x"], [1, "y"], [2, "z"], [3, "w"]]));
  // Both ids of the second batch were hits (their hash is z's): the store told w apart.
  eq(hits, [0, 2]);
});
