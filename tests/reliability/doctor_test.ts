/** `mq doctor`: finds each kind of damage, repairs it without losing a message, then finds none. */
import { deepStrictEqual as eq, match, ok } from "node:assert/strict";
import { cliTest, errorLine, mq, withHome } from "../cli/_mq.ts";
import { dataDir, exists, flipByte, groupDoc, lines, mqWithin, segmentOf } from "./_store.ts";

function fsTest(name: string, fn: (home: string) => Promise<void>): void {
  Deno.test({ name, sanitizeOps: false, sanitizeResources: false, fn: () => withHome(fn) });
}

async function threeBatches(home: string, topic: string): Promise<void> {
  for (let b = 0; b < 3; b++) {
    eq((await mq(home, ["pub", topic, "-q"], { stdin: lines(1000, "m", b * 1000) })).code, 0);
  }
}

/** Runs `mq doctor args`: exit code, stdout lines, stderr. */
async function doctor(h: string, ...args: string[]) {
  const r = await mqWithin(h, ["doctor", ...args], 60_000);
  return { code: r.code, lines: r.out.trimEnd().split("\n").filter(Boolean), err: r.err };
}

/** After a repair: clean, and every message still there is readable without a warning. */
async function assertClean(h: string, scope = "1 topic, 0 groups, their logs"): Promise<void> {
  const d = await doctor(h);
  eq([d.code, d.lines, d.err], [0, [], `mq: doctor: clean (${scope})\n`]);
}

cliTest("doctor: a clean store is exit 0 with one summary line", async (h) => {
  await mq(h, ["pub", "t", "-q"], { stdin: lines(10) });
  await mq(h, ["sub", "t", "--group", "g", "-e", "-q"]);
  const logs = "their logs";
  const d = await doctor(h);
  eq([d.code, d.lines, d.err], [0, [], `mq: doctor: clean (1 topic, 1 group, ${logs})\n`]);
  const json = JSON.parse((await mq(h, ["doctor", "--json", "-q"])).out);
  eq([json.clean, json.findings, json.topics, json.groups], [true, [], 1, 1]);
  const unknown = await mq(h, ["doctor", "nope"]);
  eq([unknown.code, errorLine(unknown)], [1, 'mq: error: topic "nope" does not exist']);
}, { backends: ["file", "kv"] });

fsTest(
  "doctor: a corrupt frame mid-segment is found; --repair quarantines it; reads are clean after",
  async (h) => {
    await threeBatches(h, "t");
    const seg = segmentOf(h, "t");
    await flipByte(seg, Math.floor((await Deno.stat(seg)).size / 2));
    const d = await doctor(h);
    eq(d.code, 1);
    eq(d.lines.length, 1, d.lines.join("\n"));
    match(
      d.lines[0],
      new RegExp(`^${seg}: bytes \\d+-\\d+ are corrupt \\(offsets 1000-1999 unreadable\\)$`),
    );
    eq(
      errorLine({ ...d, out: "", stdout: new Uint8Array(), err: d.err }),
      "mq: error: doctor found 1 problem (1 topic, 0 groups, their logs); mq doctor --repair fixes what it can",
    );
    const r = await doctor(h, "--repair");
    eq(r.code, 0, r.err);
    eq(r.lines.length, 2);
    match(r.lines[1], new RegExp(`^  repaired: moved bytes \\d+-\\d+ to ${seg}\\.corrupt$`));
    eq(r.err, "mq: doctor: repaired 1 problem (1 topic, 0 groups, their logs)\n");
    await assertClean(h);
    const sub = await mqWithin(h, ["sub", "t", "-e", "--format", "{offset}"], 20_000);
    eq(sub.out.trim().split("\n").map(Number), [
      ...Array.from({ length: 1000 }, (_, i) => i),
      ...Array.from({ length: 1000 }, (_, i) => 2000 + i),
    ]);
    eq(sub.err, "");
    // New messages go on after the last offset ever given.
    await mq(h, ["pub", "t", "new"]);
    eq(
      (await mq(h, ["sub", "t", "--from", "3000", "-e", "--format", "{offset} {payload}"])).out,
      "3000 new\n",
    );
  },
);

fsTest(
  "doctor: a damaged group document is reset to its last known position, a copy kept",
  async (h) => {
    await mq(h, ["pub", "t", "-q"], { stdin: lines(10) });
    await mq(h, ["sub", "t", "--group", "g", "-n", "3", "-q"]);
    const path = groupDoc(h, "t", "g");
    await Deno.writeTextFile(
      path,
      (await Deno.readTextFile(path)).replace(/"next":\d+/, '"next":"x"'),
    );
    const d = await doctor(h);
    eq(d.code, 1);
    eq(d.lines, [
      `${path}: group "g" of topic "t": ${path} is damaged: partitions.0.next is "x", not a whole number`,
    ]);
    const r = await doctor(h, "--repair");
    eq(r.code, 0, r.err);
    match(
      r.lines[1],
      new RegExp(
        `^  repaired: reset to offset 3; the damaged document is kept as ${
          dataDir(h)
        }/state/damaged/groups/t/g-\\d+\\.doc$`,
      ),
    );
    await assertClean(h, "1 topic, 1 group, their logs");
    eq((await mqWithin(h, ["sub", "t", "--group", "g", "-e"], 20_000)).out, lines(7, "m", 3));
  },
);

fsTest(
  "doctor: leftovers (a *.tmp file, the log and groups of a removed topic) are found and removed",
  async (h) => {
    await mq(h, ["pub", "t", "x"]);
    await mq(h, ["pub", "gone", "y"]);
    await mq(h, ["sub", "gone", "--group", "g", "-e", "-q"]);
    await Deno.remove(`${dataDir(h)}/state/topics/gone.doc`);
    await Deno.writeFile(`${dataDir(h)}/state/topics/t.tmp`, new Uint8Array(0));
    const d = await doctor(h);
    eq(d.code, 1);
    eq(d.lines, [
      `${dataDir(h)}/state/topics/t.tmp: a temporary file a failed or crashed write left behind`,
      `${dataDir(h)}/log/gone: the log of topic "gone", which does not exist (removed)`,
      `${
        dataDir(h)
      }/state/groups/gone: the group state of topic "gone", which does not exist (removed)`,
    ]);
    const r = await doctor(h, "--repair");
    eq(r.code, 0, r.err);
    eq(r.lines.filter((l) => l === "  repaired: removed it").length, 3);
    eq(await exists(`${dataDir(h)}/log/gone`), false);
    await assertClean(h);
  },
);

fsTest("doctor: a damaged index is rebuilt; a torn tail is cut off; offsets go on", async (h) => {
  await threeBatches(h, "t");
  const seg = segmentOf(h, "t");
  const idx = seg.replace(/\.log$/, ".idx");
  const wrong = new Uint8Array(8);
  new DataView(wrong.buffer).setUint32(4, 12345, true);
  await Deno.writeFile(idx, wrong);
  const torn = new Uint8Array(40).fill(7);
  new DataView(torn.buffer).setUint32(0, 500, true);
  await Deno.writeFile(seg, torn, { append: true });
  const d = await doctor(h);
  eq(d.code, 1);
  const size = (await Deno.stat(seg)).size;
  eq(d.lines, [
    `${seg}: a torn tail at bytes ${size - 40}-${size} (a write that never completed)`,
    `${seg}: its index ${idx}: entry 0 points at byte 12345, where no frame holds offset 0`,
  ]);
  const r = await doctor(h, "--repair");
  eq(r.code, 0, r.err);
  await assertClean(h);
  await mq(h, ["pub", "t", "more"]);
  const sub = await mq(h, ["sub", "t", "-e", "--format", "{offset}"]);
  eq(sub.out.trim().split("\n").map(Number), Array.from({ length: 3001 }, (_, i) => i));
  ok(!sub.err);
});

cliTest("doctor on kv: a corrupt frame is found; reads skip it and group drains end", async (h) => {
  for (let b = 0; b < 3; b++) {
    await mq(h, ["pub", "t", "-q"], { stdin: lines(100, "m", b * 100) });
  }
  const kv = await Deno.openKv(`${h}/mq.sqlite`);
  const keys: Deno.KvKey[] = [];
  try {
    for await (const e of kv.list<Uint8Array>({ prefix: ["log", "t", 0] })) {
      keys.push(e.key);
      if (keys.length === 2 || keys.length === 3) {
        const v = new Uint8Array(e.value);
        v[v.length - 3] ^= 1; // the middle and the last frame
        await kv.set(e.key, v);
      }
    }
  } finally {
    kv.close();
  }
  eq(keys.length, 3);
  const d = await doctor(h);
  eq(d.code, 1);
  eq(d.lines, [
    `kv key ${
      JSON.stringify(keys[1])
    }: its frame is corrupt (checksum); the offsets from 100 are unreadable`,
    `kv key ${
      JSON.stringify(keys[2])
    }: its frame is corrupt (checksum); the offsets from 200 are unreadable`,
  ]);
  eq((await mqWithin(h, ["sub", "t", "-e"], 20_000)).out, lines(100));
  const drain = await mqWithin(h, ["sub", "t", "--group", "g", "-e"], 20_000);
  eq([drain.code, drain.out], [0, lines(100)]);
  match(
    drain.err,
    /group "g" passed unreadable messages of topic "t" partition 0 \(200 offsets, 100-299\)/,
  );
  const [g] = JSON.parse((await mq(h, ["groups", "t", "--json"])).out);
  eq([g.lag, g.inFlight], [0, 0]);
}, { backends: ["kv"] });
