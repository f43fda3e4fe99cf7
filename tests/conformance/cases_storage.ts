/**
 * Conformance cases of the raw storage contract (`core/adapter.ts`), run on
 * the adapter itself, beside the cases through `Mq`: dense offsets per
 * batch, compare-and-set on state documents, trim, and the wake-up of
 * `waitFor`. Run against every adapter by `conformance.ts`.
 */
import { deepStrictEqual as eq } from "node:assert/strict";
import type { StorageAdapter } from "../../core/adapter.ts";
import { batchOf, type StoredRecord } from "../../core/record.ts";
import { dec, type DefineStorageCase, topicName } from "./_helpers.ts";

const enc = new TextEncoder();

/** A batch of text payloads. */
const batch = (lines: string[]) => batchOf(lines.map((l) => enc.encode(l)), undefined, Date.now());

/** Every record of a partition from `from` to its end. */
async function readAll(a: StorageAdapter, topic: string, from = 0): Promise<StoredRecord[]> {
  const { end } = await a.bounds(topic, 0);
  const reader = await a.openReader(topic, 0, from);
  const out: StoredRecord[] = [];
  try {
    while (out.length === 0 || out[out.length - 1].offset < end - 1) {
      const got = await reader.read(1000);
      if (got.length === 0) break;
      out.push(...got);
    }
  } finally {
    reader.close();
  }
  return out;
}

const shown = (rs: StoredRecord[]) => rs.map((r) => [r.offset, dec.decode(r.payload)]);

/** Registers the cases. */
export function storageCases(test: DefineStorageCase): void {
  test("append returns the first offset of a dense run; bounds and readers agree", async (a) => {
    const t = topicName("raw-dense");
    eq(await a.bounds(t, 0), { start: 0, end: 0 }, "never written");
    eq(await a.append(t, 0, batch(["a", "b", "c"])), 0);
    eq(await a.append(t, 0, batch(["d"])), 3);
    eq(await a.append(t, 0, batch(["e", "f"])), 4);
    eq(await a.bounds(t, 0), { start: 0, end: 6 });
    eq(shown(await readAll(a, t)), [[0, "a"], [1, "b"], [2, "c"], [3, "d"], [4, "e"], [5, "f"]]);
    eq(shown(await readAll(a, t, 4)), [[4, "e"], [5, "f"]], "a reader starts where asked");
    eq(await a.bounds(t, 1), { start: 0, end: 0 }, "another partition is apart");
  });

  test("concurrent appends on one client: each batch is one dense run, none lost", async (a) => {
    const t = topicName("raw-concurrent-one");
    const lines = (k: number) => Array.from({ length: 30 }, (_, i) => `${k}-${i}`);
    const firsts = await Promise.all(
      Array.from({ length: 12 }, (_, k) => a.append(t, 0, batch(lines(k)))),
    );
    const all = await readAll(a, t);
    eq(all.map((r) => r.offset), Array.from({ length: 360 }, (_, i) => i), "dense, none lost");
    eq([...firsts].sort((x, y) => x - y), Array.from({ length: 12 }, (_, k) => k * 30));
    firsts.forEach((first, k) => {
      eq(all.slice(first, first + 30).map((r) => dec.decode(r.payload)), lines(k), `batch ${k}`);
    });
  });

  test(
    "concurrent appends from two clients: each batch is one dense run, none lost",
    async (a, f) => {
      const t = topicName("raw-concurrent");
      const b = await f.open({ reopen: true });
      try {
        const lines = (who: string, k: number) =>
          Array.from({ length: 25 }, (_, i) => `${who}${k}-${i}`);
        const firsts: { who: string; k: number; first: number }[] = [];
        await Promise.all(
          [["a", a], ["b", b]].map(async ([who, client]) => {
            for (let k = 0; k < 8; k++) {
              const first = await (client as StorageAdapter).append(
                t,
                0,
                batch(lines(who as string, k)),
              );
              firsts.push({ who: who as string, k, first });
            }
          }),
        );
        const all = await readAll(a, t);
        eq(all.length, 2 * 8 * 25, "none lost");
        eq(all.map((r) => r.offset), Array.from({ length: 400 }, (_, i) => i), "dense");
        for (const { who, k, first } of firsts) {
          eq(
            all.slice(first, first + 25).map((r) => dec.decode(r.payload)),
            lines(who, k),
            `batch ${who}${k} at ${first} is one run`,
          );
        }
      } finally {
        await b.close();
      }
    },
    { multiProcess: true, denseConcurrentAppends: true },
  );

  test("compareAndSet writes only over the version expected; deleteState and listState", async (a) => {
    const k = ["raw-cas", topicName("doc")];
    eq(await a.getState(k), undefined);
    eq(await a.compareAndSet(k, null, enc.encode("v1")), true, "created");
    eq(await a.compareAndSet(k, null, enc.encode("again")), false, "exists: not created twice");
    const v1 = (await a.getState(k))!;
    eq(dec.decode(v1.value), "v1");
    eq(await a.compareAndSet(k, v1.version, enc.encode("v2")), true);
    eq(await a.compareAndSet(k, v1.version, enc.encode("stale")), false, "a stale version");
    const v2 = (await a.getState(k))!;
    eq(dec.decode(v2.value), "v2");
    eq(v2.version === v1.version, false, "the version changed");
    // Racing writers on one version: exactly one wins.
    const wins = await Promise.all(
      Array.from({ length: 6 }, (_, i) => a.compareAndSet(k, v2.version, enc.encode(`w${i}`))),
    );
    eq(wins.filter(Boolean).length, 1);
    eq(await a.compareAndSet([...k, "child"], null, enc.encode("c")), true);
    eq(await a.listState(k), ["child"]);
    eq((await a.listState(["raw-cas"])).includes(k[1]), true);
    await a.deleteState(k);
    eq(await a.getState(k), undefined);
    eq(await a.getState([...k, "child"]), undefined, "documents below go too");
    eq(await a.compareAndSet(k, null, enc.encode("new")), true, "created anew");
  });

  test("trim removes the records below its offset; readers start past them", async (a) => {
    const t = topicName("raw-trim");
    await a.append(t, 0, batch(Array.from({ length: 10 }, (_, i) => `m${i}`)));
    await a.trim(t, 0, 4);
    eq(await a.bounds(t, 0), { start: 4, end: 10 });
    eq(shown(await readAll(a, t)).slice(0, 2), [[4, "m4"], [5, "m5"]], "from 0: the start");
    await a.trim(t, 0, 2);
    eq((await a.bounds(t, 0)).start, 4, "a trim below the start changes nothing");
    eq(await a.append(t, 0, batch(["m10"])), 10, "offsets go on, never reused");
    await a.trim(t, 0, 11);
    eq(await a.bounds(t, 0), { start: 11, end: 11 }, "trimmed to the end: empty");
    eq(await readAll(a, t), []);
    eq(await a.append(t, 0, batch(["m11"])), 11);
    eq(shown(await readAll(a, t)), [[11, "m11"]]);
  });

  test("waitFor returns at once past the end, wakes on an append, and ends on abort", async (a) => {
    const t = topicName("raw-wait");
    await a.append(t, 0, batch(["x"]));
    const none = new AbortController();
    // The end (1) is beyond offset 0: no waiting.
    await a.waitFor(t, 0, 0, none.signal, 60_000);
    // Waiting at the end: an append wakes it, long before its timeout.
    let woke = false;
    const waiting = a.waitFor(t, 0, 1, none.signal, 60_000).then(() => woke = true);
    await new Promise((r) => setTimeout(r, 50));
    eq(woke, false, "nothing new yet");
    await a.append(t, 0, batch(["y"]));
    const timedOut = new Promise<"timeout">((r) => {
      const timer = setTimeout(() => r("timeout"), 20_000);
      waiting.finally(() => clearTimeout(timer));
    });
    eq(await Promise.race([waiting.then(() => "woke" as const), timedOut]), "woke");
    // An abort ends a wait with nothing new.
    const stop = new AbortController();
    const aborted = a.waitFor(t, 0, 2, stop.signal, 60_000);
    stop.abort();
    const late = new Promise<"timeout">((r) => {
      const timer = setTimeout(() => r("timeout"), 20_000);
      aborted.finally(() => clearTimeout(timer));
    });
    eq(await Promise.race([aborted.then(() => "ended" as const), late]), "ended");
  });
}
