/**
 * Issue 10's defects, end to end through the real `mq`: each case fails
 * without its fix (the commit that adds it says which).
 */
import { deepStrictEqual as eq, match, ok } from "node:assert/strict";
import { cliTest, errorLine, mq, spawnMq, withHome } from "../cli/_mq.ts";
import {
  dataDir,
  exists,
  filesEndingWith,
  flipByte,
  groupDoc,
  lines,
  mqWithin,
  segmentOf,
} from "./_store.ts";

const dec = new TextDecoder();

function fsTest(name: string, fn: (home: string) => Promise<void>): void {
  Deno.test({ name, sanitizeOps: false, sanitizeResources: false, fn: () => withHome(fn) });
}

/** Publishes three batches of 1,000 (three frames of one segment). */
async function threeBatches(home: string, topic: string): Promise<void> {
  for (let b = 0; b < 3; b++) {
    eq((await mq(home, ["pub", topic, "-q"], { stdin: lines(1000, "m", b * 1000) })).code, 0);
  }
}

/** Reads stdout of a child until `want` lines came (or it ended). */
async function readLines(child: Deno.ChildProcess, want: number): Promise<string[]> {
  const reader = child.stdout.getReader();
  let text = "";
  while (text.split("\n").length - 1 < want) {
    const { value, done } = await reader.read();
    if (done) break;
    text += dec.decode(value);
  }
  reader.releaseLock();
  return text.split("\n").slice(0, want);
}

cliTest(
  "defect 1: topics rm while a group consumer runs: it stops with one line (exit 1), no group state is left, the new topic starts clean",
  async (h, backend) => {
    await mq(h, ["pub", "t", "-q"], { stdin: lines(50) });
    const sub = spawnMq(h, ["sub", "t", "--group", "g"]);
    eq((await readLines(sub, 50)).length, 50);
    const rm = await mq(h, ["topics", "rm", "t"]);
    eq(rm.code, 0, rm.err);
    const deadline = setTimeout(() => sub.kill("SIGKILL"), 15_000);
    const [status, err] = await Promise.all([
      sub.status,
      new Response(sub.stderr).text(),
    ]);
    clearTimeout(deadline);
    await sub.stdout.cancel().catch(() => {});
    eq(status.code, 1, err);
    eq(err.trim(), 'mq: error: topic "t" was removed');
    if (backend === "file") eq(await exists(`${dataDir(h)}/state/groups/t`), false);
    // Made again: its messages go to the group, none to a dead-letter topic.
    await mq(h, ["pub", "t", "-q"], { stdin: lines(5, "new") });
    const again = await mqWithin(h, ["sub", "t", "--group", "g", "-e"], 20_000);
    eq([again.code, again.out], [0, lines(5, "new")]);
    const [g] = JSON.parse((await mq(h, ["groups", "t", "--json"])).out);
    eq([g.name, g.lag, g.inFlight, g.deadLettered], ["g", 0, 0, 0]);
    eq((await mq(h, ["topics", "--json"])).out.includes('"t.dlq"'), false);
  },
  { backends: ["file", "kv"] },
);

fsTest(
  "defect 2: a corrupt frame in the middle of a segment: group drains end, the group moves on",
  async (h) => {
    await threeBatches(h, "t");
    const seg = segmentOf(h, "t");
    await flipByte(seg, Math.floor((await Deno.stat(seg)).size / 2));
    const sub = await mqWithin(h, ["sub", "t", "--group", "g", "-e"], 30_000);
    eq(sub.code, 0, sub.err);
    eq(sub.out.split("\n").length - 1, 2000);
    const work = await mqWithin(h, [
      "work",
      "t",
      "--group",
      "w",
      "-c",
      "4",
      "-e",
      "-q",
      "--",
      "true",
    ], 60_000);
    eq(work.code, 0, work.err);
    // The ordered claim path (one in flight per key) passes the damage too.
    const ordered = await mqWithin(
      h,
      ["work", "t", "--group", "o", "--ordered", "-c", "4", "-e", "-q", "--", "true"],
      60_000,
    );
    eq(ordered.code, 0, ordered.err);
    const groups = JSON.parse((await mq(h, ["groups", "t", "--json"])).out);
    eq(
      groups.map((
        g: { name: string; lag: number; inFlight: number },
      ) => [g.name, g.lag, g.inFlight]),
      [["g", 0, 0], ["o", 0, 0], ["w", 0, 0]],
    );
  },
);

fsTest(
  "defect 3: a read that skips corrupt bytes says so once: file, byte range, offsets",
  async (h) => {
    await threeBatches(h, "t");
    const seg = segmentOf(h, "t");
    await flipByte(seg, Math.floor((await Deno.stat(seg)).size / 2));
    const r = await mqWithin(h, ["sub", "t", "-e"], 20_000);
    eq(r.code, 0);
    eq(r.out.split("\n").length - 1, 2000);
    const warn = r.err.trim().split("\n");
    eq(warn.length, 1, r.err);
    match(
      warn[0],
      new RegExp(
        `^mq: warning: skipped corrupt bytes \\d+-\\d+ of ${seg} \\(1000 offsets, 1000-1999\\)$`,
      ),
    );
  },
);

fsTest(
  "defect 4: a corrupt last frame after a group read it: new messages get new offsets, the group gets them",
  async (h) => {
    await threeBatches(h, "t");
    eq((await mqWithin(h, ["sub", "t", "--group", "g", "-e", "-q"], 20_000)).code, 0);
    const seg = segmentOf(h, "t");
    await flipByte(seg, -10);
    const before = (await Deno.stat(seg)).size;
    const pub = await mq(h, ["pub", "t", "-q"], { stdin: lines(5, "late") });
    eq(pub.code, 0, pub.err);
    eq(
      pub.err.replace(/bytes \d+-/, "bytes X-"),
      `mq: warning: cut corrupt bytes X-${before} of ${seg}, kept in ${seg}.corrupt (1000 offsets, 2000-2999 lost to damage; offsets go on from 3000)\n`,
    );
    const r = await mqWithin(h, [
      "sub",
      "t",
      "--group",
      "g",
      "-e",
      "--format",
      "{offset} {payload}",
    ], 20_000);
    eq(r.out, [0, 1, 2, 3, 4].map((i) => `${3000 + i} late-${i}\n`).join(""));
    // The cut bytes are kept beside the segment.
    ok((await Deno.stat(`${segmentOf(h, "t")}.corrupt`)).size > 1000);
  },
);

cliTest(
  "defect 6: a dead-letter topic that loops back is refused (exit 2), nothing is created",
  async (h) => {
    const self = await mq(h, ["topics", "create", "a", "--dlq", "a"]);
    eq(self.code, 2);
    eq(
      errorLine(self),
      'mq: error: --dlq "a" is the topic itself: its dead letters would loop for ever',
    );
    eq((await mq(h, ["topics", "create", "b", "--dlq", "c"])).code, 0);
    const cycle = await mq(h, ["topics", "create", "c", "--dlq", "b"]);
    eq(cycle.code, 2);
    eq(
      errorLine(cycle),
      'mq: error: --dlq "b" makes a cycle of dead-letter topics ("c" -> "b" -> "c"): dead letters would loop for ever',
    );
    eq(JSON.parse((await mq(h, ["topics", "--json"])).out).map((t: { name: string }) => t.name), [
      "b",
    ]);
  },
  { backends: ["file", "kv"] },
);

cliTest(
  "defect 7: a topic of 200 characters dead-letters (its dead-letter topic's name fits)",
  async (h) => {
    const name = "t".repeat(200);
    await mq(h, ["topics", "create", name, "--max-attempts", "1"]);
    await mq(h, ["pub", name, "x"]);
    // work -e exits 1 when a message was dead-lettered, naming the dead-letter topic.
    const work = await mqWithin(h, ["work", name, "-e", "-q", "--", "false"], 30_000);
    eq(work.code, 1, work.err);
    ok(work.err.includes(`dead-letter topic "${"t".repeat(187)}-6c481c85.dlq"`), work.err);
    const topics = JSON.parse((await mq(h, ["topics", "--json"])).out).map((t: { name: string }) =>
      t.name
    );
    eq(topics, [`${"t".repeat(187)}-6c481c85.dlq`, name]);
    const dead = await mq(h, [
      "sub",
      topics[0],
      "-e",
      "--format",
      "{payload} {header.mq-dlq-topic}",
    ]);
    eq(dead.out, `x ${name}\n`);
    ok(topics.every((t: string) => t.length <= 200));
  },
  { backends: ["file", "kv"] },
);

const DAMAGE: [string, (doc: string) => Uint8Array, RegExp][] = [
  ["0 bytes", () => new Uint8Array(0), /is damaged: it is empty/],
  ["a flipped byte", (d) => {
    const b = new TextEncoder().encode(d);
    b[b.indexOf(0x7b, 3)] ^= 0x10; // the first "{" after the version line
    return b;
  }, /is damaged: not valid JSON/],
  [
    "valid JSON of the wrong shape",
    () => new TextEncoder().encode("7\n[1,2]"),
    /it holds a list, not an object/,
  ],
  [
    '"next":"x"',
    (d) => new TextEncoder().encode(d.replace(/"next":\d+/, '"next":"x"')),
    /partitions\.0\.next is "x", not a whole number/,
  ],
];

for (const [what, damage, why] of DAMAGE) {
  fsTest(
    `defect 8: a group document with ${what}: one line naming file and group (exit 1); reset, rm, purge and topics rm work`,
    async (h) => {
      await mq(h, ["pub", "t", "-q"], { stdin: lines(10) });
      await mq(h, ["sub", "t", "--group", "g", "-n", "3", "-q"]);
      const path = groupDoc(h, "t", "g");
      await Deno.writeFile(path, damage(await Deno.readTextFile(path)));
      const sub = await mqWithin(h, ["sub", "t", "--group", "g", "-e"], 20_000);
      eq(sub.code, 1);
      const line = errorLine(sub);
      ok(line.startsWith(`mq: error: group "g" of topic "t": ${path} is damaged: `), line);
      match(line, why);
      eq((await mq(h, ["groups", "t"])).code, 1);
      const reset = await mq(h, ["groups", "reset", "t", "g", "--to", "beginning"]);
      eq(reset.code, 0, reset.err);
      eq((await mqWithin(h, ["sub", "t", "--group", "g", "-e"], 20_000)).out, lines(10));
      await Deno.writeFile(path, damage(await Deno.readTextFile(path)));
      eq((await mq(h, ["topics", "purge", "t"])).code, 0);
      const rm = await mq(h, ["groups", "rm", "t", "g"]);
      eq([rm.code, rm.err], [0, 'mq: removed group "g" of "t"\n']);
      await mq(h, ["sub", "t", "--group", "g2", "-e", "-q"]);
      await Deno.writeFile(groupDoc(h, "t", "g2"), damage("1\n{}"));
      eq((await mq(h, ["topics", "rm", "t"])).code, 0);
      eq(await exists(`${dataDir(h)}/state/groups/t`), false);
    },
  );
}

fsTest(
  "defect 8: damaged topic settings name the file (exit 1); topics rm still removes the topic",
  async (h) => {
    await mq(h, ["pub", "t", "x"]);
    const path = `${dataDir(h)}/state/topics/t.doc`;
    await Deno.writeTextFile(path, '1\n{"partitions":"x"}');
    const sub = await mq(h, ["sub", "t", "-e"]);
    eq(sub.code, 1);
    eq(
      errorLine(sub),
      `mq: error: settings of topic "t": ${path} is damaged: "partitions" is "x", not a whole number`,
    );
    eq((await mq(h, ["topics", "rm", "t"])).code, 0);
    eq(await exists(path), false);
  },
);

cliTest("groups rm: removes a group; an unknown one is exit 2", async (h) => {
  await mq(h, ["pub", "t", "-q"], { stdin: lines(3) });
  await mq(h, ["sub", "t", "--group", "g", "-e", "-q"]);
  const rm = await mq(h, ["groups", "rm", "t", "g"]);
  eq([rm.code, rm.err], [0, 'mq: removed group "g" of "t"\n']);
  eq(JSON.parse((await mq(h, ["groups", "t", "--json"])).out), []);
  const again = await mq(h, ["groups", "rm", "t", "g"]);
  eq(again.code, 2);
  eq(errorLine(again), 'mq: error: topic "t" has no group "g"');
}, { backends: ["file", "kv"] });

cliTest(
  "defect 9: failed commands write nothing: pub --partition 3, take and work -e on a missing topic",
  async (h, backend) => {
    const pub = await mq(h, ["pub", "t", "--partition", "3", "x"]);
    eq(pub.code, 2);
    eq(errorLine(pub), 'mq: error: partition 3 does not exist: topic "t" has 1 (0 to 0)');
    eq((await mq(h, ["topics", "--json"])).out, "[]\n");
    eq((await mq(h, ["take", "nope"])).code, 3);
    eq((await mqWithin(h, ["work", "nope", "-e", "-q", "--", "true"], 20_000)).code, 0);
    eq((await mq(h, ["topics", "--json"])).out, "[]\n");
    if (backend === "file") eq(await exists(`${dataDir(h)}/state/groups`), false);
  },
  { backends: ["file", "kv"] },
);

fsTest("defect 9: context add checks the whole URL as --url does", async (h) => {
  for (
    const [url, why] of [
      ["nats://localhost:99999", /port 1 to 65535/],
      ["file://otherhost/data", /names a host/],
      ["file:./data?sync=1", /unknown file: URL option "sync"/],
      ["file:./data?fsync=sometimes", /fsync must be always, batch or never/],
    ] as const
  ) {
    const r = await mq(h, ["context", "add", "x", url]);
    eq(r.code, 2, url);
    match(errorLine(r), why);
  }
  eq((await mq(h, ["context", "ls", "--json"])).out, "[]\n");
});

/** A small tmpfs, where this process may mount one (root, with mount): the folder, or why not. */
function mountable(): { ok: true } | { ok: false; why: string } {
  if (Deno.build.os !== "linux") return { ok: false, why: "tmpfs mounts are Linux only" };
  try {
    const dir = Deno.makeTempDirSync({ prefix: "mq-tmpfs-probe-" });
    const r = new Deno.Command("mount", { args: ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir] })
      .outputSync();
    if (r.success) new Deno.Command("umount", { args: [dir] }).outputSync();
    Deno.removeSync(dir);
    return r.success ? { ok: true } : {
      ok: false,
      why: `cannot mount a tmpfs here: ${dec.decode(r.stderr).trim()}`,
    };
  } catch (e) {
    return { ok: false, why: `cannot mount a tmpfs here: ${(e as Error).message}` };
  }
}

const tmpfs = mountable();
if (!tmpfs.ok) console.error(`defect 10 (a full disk) is skipped: ${tmpfs.why}`);

Deno.test({
  name:
    "defect 10: a full disk: pub says how many it stored (a clean prefix), no *.tmp is left, the store recovers",
  ignore: !tmpfs.ok,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withHome(async (h) => {
      await Deno.mkdir(dataDir(h));
      const mount = new Deno.Command("mount", {
        args: ["-t", "tmpfs", "-o", "size=512k", "tmpfs", dataDir(h)],
      }).outputSync();
      ok(mount.success, dec.decode(mount.stderr));
      try {
        const stdin = lines(200_000, "full-disk-line");
        const pub = await mqWithin(h, ["pub", "t", "-q"], 60_000, { stdin });
        eq(pub.code, 1);
        const m = /; published (\d+) messages? before the failure$/.exec(errorLine(pub));
        ok(m, pub.err);
        const stored = Number(m[1]);
        ok(stored > 0 && stored < 200_000, `stored ${stored}`);
        // Group state on the full disk: fails with one line, leaves no temporary file.
        const sub = await mqWithin(h, ["sub", "t", "--group", "g", "-e", "-q"], 30_000);
        ok(sub.code === 0 || sub.code === 1, sub.err);
        eq(await filesEndingWith(dataDir(h), ".tmp"), []);
        const all = await mqWithin(h, ["sub", "t", "-e"], 30_000);
        eq(all.out, stdin.split("\n").slice(0, stored).map((l) => l + "\n").join(""));
        // Room again: the store takes new messages at the next offsets.
        await mq(h, ["topics", "purge", "t"]);
        const more = await mq(h, ["pub", "t", "again"]);
        eq(more.code, 0, more.err);
        eq((await mq(h, ["sub", "t", "-e", "--format", "{offset}"])).out, `${stored}\n`);
      } finally {
        new Deno.Command("umount", { args: ["-l", dataDir(h)] }).outputSync();
      }
    }),
});
