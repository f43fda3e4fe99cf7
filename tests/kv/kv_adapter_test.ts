/**
 * The kv backend's own regressions, against the adapter: record sizes with
 * headers, storedBytes, trims in the background, multi-commit appends under
 * a partition lock (and a lock left by a crash), appendAtomic,
 * appendDeduplicated, large state documents.
 */
import { deepStrictEqual as eq, ok, rejects } from "node:assert/strict";
import { MAX_PAYLOAD_BYTES, MAX_STATE_BYTES } from "../../adapters/kv/mod.ts";
import { ByteSink, encodeFrames } from "../../adapters/_frame_codec.ts";
import { Mq } from "../../core/client.ts";
import { MqError } from "../../core/errors.ts";
import { batchOf } from "../../core/record.ts";
import { rawValues, readAll, texts, withKv } from "./_kv.ts";
import { adapterOf } from "../../core/internal.ts";

const enc = new TextEncoder(), dec = new TextDecoder();
const code = (c: string) => (e: unknown) => MqError.is(e, c as never);

Deno.test("kv: three records of 20 KB payload and 20 KB headers are stored as one batch, byte-exact", () =>
  withKv(async (s) => {
    const a = await s.open();
    const payloads = ["a", "b", "c"].map((c) => c.repeat(20_000));
    const headers = ["x", "y", "z"].map((c) => ({ h: c.repeat(20_000) }));
    const first = await a.append("t", 0, texts(payloads, headers.map((h) => ({ headers: h }))));
    eq(first, 0);
    const got = await readAll(a, "t");
    eq(got.map((r) => [r.offset, r.text, r.headers]), [
      [0, payloads[0], headers[0]],
      [1, payloads[1], headers[1]],
      [2, payloads[2], headers[2]],
    ]);
    // Each value holds what fits 64 KiB: here one record each.
    const raw = await s.raw();
    const values = await rawValues(raw, ["log", "t", 0]);
    eq(values.length, 3);
    ok(values.every((v) => v.bytes <= 65_536), JSON.stringify(values));
  }));

Deno.test("kv: frames are cut by encoded size, also for the fs target (keys, ids and headers count)", () => {
  const batch = batchOf(
    Array.from({ length: 6 }, () => enc.encode("p".repeat(100))),
    Array.from({ length: 6 }, (_, i) => ({ id: `id-${i}`, headers: { h: "v".repeat(30_000) } })),
  );
  const sink = new ByteSink(16);
  const ends = encodeFrames(batch, 0, sink, 65_528);
  let from = 0;
  for (const end of ends) {
    ok(end - from <= 65_536, `frame of ${end - from} bytes`);
    from = end;
  }
  eq(ends.length, 3, "two records a frame");
});

Deno.test("kv: a record that cannot fit one value is refused with MESSAGE_TOO_LARGE; those before it are stored", () =>
  withKv(async (s) => {
    const a = await s.open();
    const batch = texts(["before", "z".repeat(60_000), "after"], [
      undefined,
      { headers: { h: "y".repeat(8_000) } },
      undefined,
    ]);
    const e = await a.append("t", 0, batch).then(() => undefined, (e) => e);
    ok(MqError.is(e, "MESSAGE_TOO_LARGE"), String(e));
    eq(e.details, { index: 1, published: 1 });
    eq(
      e.message,
      `message is 68008 bytes with its key, id and headers (payload 60000); the kv backend stores at most ${
        MAX_PAYLOAD_BYTES - 4
      } in one Deno KV value`,
    );
    eq((await readAll(a, "t")).map((r) => r.text), ["before"]);
    // Exactly at the limit fits; one byte more does not.
    const limit = MAX_PAYLOAD_BYTES - 2 - 4; // an id and headers
    const header = { h: "h".repeat(100) };
    const extra = 2 + JSON.stringify(header).length; // id "ab" and the headers' JSON
    await a.append("u", 0, texts(["x".repeat(limit - extra)], [{ id: "ab", headers: header }]));
    await rejects(
      a.append("u", 0, texts(["x".repeat(limit - extra + 1)], [{ id: "ab", headers: header }])),
      code("MESSAGE_TOO_LARGE"),
    );
    eq((await a.bounds("u", 0)).end, 1);
  }));

Deno.test("kv: storedBytes counts the bytes from the start to the end, exactly, through trims", () =>
  withKv(async (s) => {
    const a = await s.open();
    const raw = await s.raw();
    eq(await a.storedBytes("t", 0), 0);
    for (let i = 0; i < 10; i++) {
      await a.append("t", 0, texts(Array.from({ length: 10 }, (_, j) => `m${i}-${j}`.padEnd(50))));
    }
    const all = await rawValues(raw, ["log", "t", 0]);
    eq(all.length, 10);
    const total = all.reduce((n, v) => n + v.bytes, 0);
    eq(await a.storedBytes("t", 0), total);
    // A cut inside the fourth value: the first three go, and 5 records of the fourth count no more.
    await a.trim("t", 0, 35);
    eq(await a.bounds("t", 0), { start: 35, end: 100 });
    eq((await rawValues(raw, ["log", "t", 0])).length, 7);
    const record = 4 + 9 + 50; // length, timestamp and flags, payload
    eq(await a.storedBytes("t", 0), total - 3 * all[0].bytes - 5 * record);
    eq((await readAll(a, "t"))[0].offset, 35);
    await a.trim("t", 0, 100);
    eq(await a.storedBytes("t", 0), 0);
    eq((await rawValues(raw, ["log", "t", 0])).length, 0);
  }));

Deno.test("kv: --max-bytes retention keeps a topic within its bytes (the core uses storedBytes)", () =>
  withKv(async (s) => {
    const mq = new Mq(await s.open());
    try {
      await mq.topics.create("t", { maxBytes: 20_000 });
      for (let i = 0; i < 20; i++) {
        await mq.publishBatch(
          "t",
          Array.from({ length: 50 }, (_, j) => `${i * 50 + j}`.padEnd(40, ".")),
        );
      }
      const stored = await adapterOf(mq).storedBytes!("t", 0);
      ok(stored <= 20_000 && stored > 10_000, `${stored} bytes`);
      const b = await adapterOf(mq).bounds("t", 0);
      eq(b.end, 1000);
      ok(b.start > 500, `start ${b.start}`);
      const kept = (await readAll(adapterOf(mq), "t")).map((r) => r.text.replace(/\.+$/, ""));
      eq(kept[kept.length - 1], "999");
      eq(kept.length, 1000 - b.start);
    } finally {
      await mq.close();
    }
  }));

Deno.test("kv: a trim moves the start at once and deletes in bounded commits, the rest in the background", () =>
  withKv(async (s) => {
    const a = await s.open();
    const raw = await s.raw();
    // 1,200 values of one record each: more than one KV commit may delete.
    for (let i = 0; i < 1200; i++) await a.append("t", 0, texts([`r${i}`.padEnd(20)]));
    const perValue = (await a.storedBytes("t", 0)) / 1200;
    await a.trim("t", 0, 1190);
    const left = (await rawValues(raw, ["log", "t", 0])).length;
    ok(left <= 1200 - 2 * 64 && left > 1200 - 6 * 64, `${left} values left as the trim returned`);
    // Readers and bounds see the new start at once; appends go on meanwhile.
    eq(await a.bounds("t", 0), { start: 1190, end: 1200 });
    eq(
      (await readAll(a, "t", 0, 5)).map((r) => r.offset),
      Array.from({ length: 10 }, (_, i) => 1190 + i),
    );
    eq(await a.append("t", 0, texts(["next".padEnd(20)])), 1200);
    eq(await a.storedBytes("t", 0), 11 * perValue, "exact, also while deleting");
    await a.settled();
    eq((await rawValues(raw, ["log", "t", 0])).length, 11);
    eq(await a.storedBytes("t", 0), 11 * perValue);
    eq(BigInt((await raw.get<Deno.KvU64>(["bytes", "t", 0])).value!.value), BigInt(11 * perValue));
  }));

Deno.test("kv: an append larger than one commit is one contiguous run, also with a second writer", () =>
  withKv(async (s) => {
    const a = await s.open(), b = await s.open();
    // 120,000 one-byte records: about 1.7 MB framed, several commits.
    const big = batchOf(Array.from({ length: 120_000 }, (_, i) => enc.encode(String(i % 10))));
    const small = () => texts(Array.from({ length: 10 }, (_, i) => `b${i}`));
    let stop = false;
    const others: number[] = [];
    const racing = (async () => {
      while (!stop) others.push(await b.append("t", 0, small()));
    })();
    const first = await a.append("t", 0, big);
    stop = true;
    await racing;
    // No batch of b lands inside a's run.
    for (const o of others) ok(o + 10 <= first || o >= first + 120_000, `b at ${o}, a at ${first}`);
    const got = await readAll(a, "t", 0, first);
    eq(
      got.slice(0, 120_000).map((r) => r.text).join(""),
      Array.from({ length: 120_000 }, (_, i) => String(i % 10)).join(""),
    );
    eq(got[0].offset, first);
  }));

Deno.test("kv: a partition lock left by a crashed writer expires; the next writer removes what it left", () =>
  withKv(async (s) => {
    const a = await s.open();
    await a.append("t", 0, texts(["one", "two"]));
    await a.appendDeduplicated("t", 0, texts(["three"], [{ id: "x" }]), 60_000);
    const raw = await s.raw();
    // A crash in the middle of a multi-commit append: the head locked (end unchanged),
    // values and a dedup entry written past the end.
    const head = await raw.get(["head", "t", 0]);
    const frames = new ByteSink();
    const ends = encodeFrames(texts(["orphan-1", "orphan-2"]), 3, frames, 65_528);
    await raw.atomic()
      .check(head)
      .set(["head", "t", 0], {
        end: 3,
        owner: "dead",
        until: Date.now() - 1,
        dedupWindowMs: 60_000,
      })
      .set(["log", "t", 0, 3], frames.bytes.slice(0, ends[0]))
      .set(["dedup", "t", 0, "y"], dedupEntry(Date.now() + 60_000, 3, "dead"))
      .commit();
    const b = await s.open();
    eq(await b.bounds("t", 0), { start: 0, end: 3 });
    eq((await readAll(b, "t")).map((r) => r.text), ["one", "two", "three"], "never the orphans");
    // The next writer takes the lock over, deletes the orphans, and writes at 3.
    eq(await b.append("t", 0, texts(["four"])), 3);
    eq((await readAll(b, "t")).map((r) => r.text), ["one", "two", "three", "four"]);
    eq(await b.append("t", 0, texts(["five", "six"])), 4);
    eq((await readAll(b, "t")).map((r) => r.text), ["one", "two", "three", "four", "five", "six"]);
    // The dead writer's dedup entry does not count; a live one does.
    const d = await b.appendDeduplicated(
      "t",
      0,
      texts(["y again", "x again"], [{ id: "y" }, { id: "x" }]),
      60_000,
    );
    eq(d, { first: 6, kept: [0] });
  }));

Deno.test("kv: a reader never returns a stray value that overlaps committed ones, nor a corrupt one", () =>
  withKv(async (s) => {
    const a = await s.open();
    await a.append("t", 0, texts(Array.from({ length: 10 }, (_, i) => `r${i}`)));
    await a.append("t", 0, texts(["r10", "r11"]));
    const raw = await s.raw();
    // A value under a key inside the first one's run (left by a topic removed
    // during an append), and a value whose bytes were damaged.
    const stray = new ByteSink();
    const ends = encodeFrames(texts(["stray-5", "stray-6"]), 5, stray, 65_528);
    await raw.set(["log", "t", 0, 5], stray.bytes.slice(0, ends[0]));
    const damaged = (await raw.get<Uint8Array>(["log", "t", 0, 10])).value!;
    damaged[damaged.length - 1] ^= 0xff;
    await raw.set(["log", "t", 0, 10], damaged);
    eq(
      (await readAll(a, "t")).map((r) => `${r.offset} ${r.text}`),
      Array.from({ length: 10 }, (_, i) => `${i} r${i}`),
    );
    eq((await readAll(a, "t", 0, 7)).map((r) => r.offset), [7, 8, 9]);
  }));

Deno.test("kv: a live lock makes other writers wait until it is released", () =>
  withKv(async (s) => {
    const a = await s.open();
    await a.append("t", 0, texts(["one"]));
    const raw = await s.raw();
    const head = await raw.get(["head", "t", 0]);
    const locked = await raw.atomic().check(head)
      .set(["head", "t", 0], {
        end: 1,
        owner: "live",
        until: Date.now() + 60_000,
        dedupWindowMs: 0,
      })
      .commit();
    ok(locked.ok);
    const b = await s.open();
    let done = false;
    const waiting = b.append("t", 0, texts(["two"])).then((o) => (done = true, o));
    await new Promise((r) => setTimeout(r, 300));
    eq(done, false, "waits while the lock is live");
    await raw.set(["head", "t", 0], 1n);
    eq(await waiting, 1);
  }));

Deno.test("kv: appendAtomic writes several topics in one commit, or nothing when it does not fit", () =>
  withKv(async (s) => {
    const a = await s.open();
    await a.append("x", 0, texts(["x0"]));
    const firsts = await a.appendAtomic([
      { topic: "x", partition: 0, batch: texts(["x1", "x2"]) },
      { topic: "y", partition: 1, batch: texts(["y0"]) },
      { topic: "x", partition: 0, batch: texts(["x3"]) },
    ]);
    eq(firsts, [1, 0, 3]);
    eq((await readAll(a, "x")).map((r) => r.text), ["x0", "x1", "x2", "x3"]);
    eq((await readAll(a, "y", 1)).map((r) => r.text), ["y0"]);
    // 2 x 500 KB: over one commit's 800 KiB: undefined, nothing written.
    const half = () => batchOf(Array.from({ length: 10 }, () => new Uint8Array(50_000)));
    eq(
      await a.appendAtomic([
        { topic: "x", partition: 0, batch: half() },
        { topic: "z", partition: 0, batch: half() },
      ]),
      undefined,
    );
    eq((await a.bounds("x", 0)).end, 4);
    eq((await a.bounds("z", 0)).end, 0);
    // More partitions than KV's 100 checks: undefined.
    const many = Array.from(
      { length: 101 },
      (_, p) => ({ topic: "m", partition: p, batch: texts(["m"]) }),
    );
    eq(await a.appendAtomic(many), undefined);
    eq((await a.bounds("m", 0)).end, 0);
    // A second client's write in between is seen (versionstamp checks), not overwritten.
    const b = await s.open();
    await b.append("x", 0, texts(["from b"]));
    eq(
      await a.appendAtomic([{ topic: "x", partition: 0, batch: texts(["x5"]) }, {
        topic: "y",
        partition: 1,
        batch: texts(["y1"]),
      }]),
      [5, 1],
    );
    eq((await readAll(a, "x")).map((r) => r.text), ["x0", "x1", "x2", "x3", "from b", "x5"]);
  }));

Deno.test("kv: appendDeduplicated drops ids seen within the window and repeats within a batch", () =>
  withKv(async (s) => {
    const a = await s.open();
    const r1 = await a.appendDeduplicated(
      "t",
      0,
      texts(["a", "b", "a again", "no id"], [{ id: "a" }, { id: "b" }, { id: "a" }, undefined]),
      300,
    );
    eq(r1, { first: 0, kept: [0, 1, 3] });
    const r2 = await a.appendDeduplicated(
      "t",
      0,
      texts(["b2", "c"], [{ id: "b" }, { id: "c" }]),
      300,
    );
    eq(r2, { first: 3, kept: [1] });
    eq(await a.appendDeduplicated("t", 0, texts(["a3"], [{ id: "a" }]), 300), {
      first: -1,
      kept: [],
    });
    // Another partition has its own ids.
    eq(await a.appendDeduplicated("t", 1, texts(["a"], [{ id: "a" }]), 300), {
      first: 0,
      kept: [0],
    });
    await new Promise((r) => setTimeout(r, 350));
    eq(await a.appendDeduplicated("t", 0, texts(["a4"], [{ id: "a" }]), 300), {
      first: 4,
      kept: [0],
    });
    eq((await readAll(a, "t")).map((r) => r.text), ["a", "b", "no id", "c", "a4"]);
    // dropLog forgets the ids.
    await a.dropLog("t");
    eq(await a.appendDeduplicated("t", 0, texts(["a5"], [{ id: "a" }]), 60_000), {
      first: 0,
      kept: [0],
    });
  }));

Deno.test("kv: 3,000 ids in one batch (several commits), and two clients racing on the same ids store each once", () =>
  withKv(async (s) => {
    const a = await s.open(), b = await s.open();
    const ids = (tag: string, n: number) =>
      texts(
        Array.from({ length: n }, (_, i) => `${tag}${i}`),
        Array.from({ length: n }, (_, i) => ({ id: `order-${i}` })),
      );
    const first = await a.appendDeduplicated("t", 0, ids("a", 3000), 60_000);
    eq([first.first, first.kept.length], [0, 3000]);
    eq(await a.appendDeduplicated("t", 0, ids("b", 3000), 60_000), { first: -1, kept: [] });
    const [x, y] = await Promise.all([
      a.appendDeduplicated("u", 0, ids("x", 1500), 60_000),
      b.appendDeduplicated("u", 0, ids("y", 1500), 60_000),
    ]);
    eq(x.kept.length + y.kept.length, 1500);
    const stored = await readAll(a, "u");
    eq(stored.length, 1500);
    eq(new Set(stored.map((r) => r.id)).size, 1500);
  }));

Deno.test("kv: state documents above 64 KiB are stored in chunks, versioned for compare-and-set", () =>
  withKv(async (s) => {
    const a = await s.open();
    const raw = await s.raw();
    const big = new Uint8Array(300_000).map((_, i) => i * 7);
    ok(await a.compareAndSet(["exchanges", "ev"], null, big));
    const v1 = await a.getState(["exchanges", "ev"]);
    eq(v1?.value, big);
    ok(!(await a.compareAndSet(["exchanges", "ev"], null, big)), "must not exist");
    // A stale version fails; the current one wins.
    const bigger = new Uint8Array(MAX_STATE_BYTES).fill(3);
    ok(await a.compareAndSet(["exchanges", "ev"], v1!.version, bigger));
    ok(!(await a.compareAndSet(["exchanges", "ev"], v1!.version, big)));
    const v2 = await a.getState(["exchanges", "ev"]);
    eq(v2?.value.length, MAX_STATE_BYTES);
    eq((await rawValues(raw, ["chunk", "exchanges", "ev"])).length, 12);
    // Small again: one value, the chunks gone. A second client reads the same.
    ok(await a.compareAndSet(["exchanges", "ev"], v2!.version, enc.encode("small")));
    eq((await rawValues(raw, ["chunk", "exchanges", "ev"])).length, 0);
    const b = await s.open();
    eq(dec.decode((await b.getState(["exchanges", "ev"]))!.value), "small");
    eq(await b.listState(["exchanges"]), ["ev"]);
    // Beyond one commit: a clear error, nothing written.
    const e = await a.compareAndSet(["exchanges", "ev"], null, new Uint8Array(MAX_STATE_BYTES + 1))
      .then(() => undefined, (e) => e);
    ok(MqError.is(e, "IO"));
    eq(
      e.message,
      `state document exchanges/ev is ${
        MAX_STATE_BYTES + 1
      } bytes; the kv backend stores state documents of up to 786432 bytes (12 Deno KV values of 64 KiB written in one atomic commit)`,
    );
    await a.compareAndSet(["exchanges", "ev", "child"], null, big);
    await a.deleteState(["exchanges", "ev"]);
    eq(await a.getState(["exchanges", "ev", "child"]), undefined);
    eq((await rawValues(raw, ["chunk"])).length, 0);
  }));

function dedupEntry(until: number, offset: number, owner: string): Uint8Array {
  const o = enc.encode(owner);
  const v = new Uint8Array(16 + o.length);
  const dv = new DataView(v.buffer);
  dv.setFloat64(0, until, true);
  dv.setFloat64(8, offset, true);
  v.set(o, 16);
  return v;
}

Deno.test("kv: appends racing the removal of their topic never leave a gap in the log", () =>
  withKv(async (s) => {
    const remover = await s.open(), writer = await s.open();
    for (let round = 0; round < 15; round++) {
      const topic = `t${round}`;
      await writer.append(topic, 0, texts(Array.from({ length: 300 }, (_, i) => `pre${i}`)));
      let stop = false;
      const writing = (async () => {
        for (let i = 0; !stop; i++) {
          await writer.append(topic, 0, texts(Array.from({ length: 50 }, (_, j) => `r${i}.${j}`)));
        }
      })();
      await new Promise((r) => setTimeout(r, 5 + round * 3));
      await remover.dropLog(topic);
      await new Promise((r) => setTimeout(r, 10));
      stop = true;
      await writing;
      // What the writer stored after the removal is a log of its own, from 0, dense.
      const { start, end } = await remover.bounds(topic, 0);
      const rows = await readAll(remover, topic, 0, start);
      eq(rows.map((r) => r.offset), Array.from({ length: end - start }, (_, i) => start + i));
      eq(start, 0, `round ${round}: the new log starts at ${start}`);
      const findings = await remover.checkStorage({
        topics: [{ name: topic, partitions: 1 }],
        wholeStore: false,
        repair: false,
      });
      eq(findings, [], `round ${round}`);
    }
  }));
