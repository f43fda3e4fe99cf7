/**
 * The torture suite: seeded, reproducible rounds of faults against the real
 * `mq` on fs and kv, each followed by the invariants of issue 10:
 *
 * - every acknowledged message is readable or reported as corrupt;
 * - none is delivered to a group after its ack;
 * - no offset is reused;
 * - every `-e` ends (each run has a deadline);
 * - the store opens and takes new messages.
 *
 * Rounds: kill -9 at a random point of `pub`, `sub --group`, `work` and
 * `bridge`; random byte flips and truncations of segments and state
 * documents, then reads, group drains and `mq doctor --repair`; `topics rm`
 * racing a publisher and a consumer. (A full disk is `defects_test.ts`'s
 * defect 10; a NATS broker restart belongs to the NATS tests.)
 *
 * `MQ_TORTURE_SEED=N` replays a run; `MQ_TORTURE_ROUNDS=N` sets the rounds
 * of each kind (3 by default, as CI runs it; the README's long run used 20).
 * Every failure names its seed, round and kind. A summary line per test
 * (rounds, faults, messages checked) goes to stderr.
 */
import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { type Backend, mq as mqIn, type Result, spawnMq as spawnIn, withHome } from "../cli/_mq.ts";
import { groupDoc, mqWithin as mqWithinIn, segmentOf } from "./_store.ts";

const SEED = Number(Deno.env.get("MQ_TORTURE_SEED") ?? Math.floor(Math.random() * 2 ** 31));
const ROUNDS = Number(Deno.env.get("MQ_TORTURE_ROUNDS") ?? 3);
const dec = new TextDecoder();

/** mulberry32: a small seeded generator. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Tallies of a torture test, printed at its end. */
interface Tally {
  rounds: number;
  faults: number;
  messages: number;
  corruptReported: number;
}

/**
 * Runs the rounds of `body` (`parallel` at a time: rounds of one kind use
 * topics of their own), each with a generator of its own seeded from the
 * run's seed, the kind, the backend and the round, so that a seed replays
 * a failure whatever ran beside it. A failure names seed, round and kind.
 */
async function rounds(
  kind: string,
  backend: Backend,
  body: (round: number, rnd: () => number, tally: Tally) => Promise<void>,
  parallel = 1,
): Promise<void> {
  const tally: Tally = { rounds: 0, faults: 0, messages: 0, corruptReported: 0 };
  let next = 0;
  const lane = async () => {
    while (next < ROUNDS) {
      const round = next++;
      const rnd = random(SEED ^ hash(`${kind}/${backend}/${round}`));
      try {
        await body(round, rnd, tally);
      } catch (e) {
        throw new Error(
          `torture ${kind} [${backend}] failed in round ${round} (MQ_TORTURE_SEED=${SEED}): ${
            (e as Error).message
          }`,
          { cause: e },
        );
      }
      tally.rounds++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, ROUNDS) }, lane));
  console.error(
    `torture ${kind} [${backend}]: ${tally.rounds} rounds, ${tally.faults} faults, ${tally.messages} messages checked, ${tally.corruptReported} reported corrupt, none lost (MQ_TORTURE_SEED=${SEED})`,
  );
}

function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Kills `child` with SIGKILL after `ms` and collects its output. */
async function killAfter(child: Deno.ChildProcess, ms: number): Promise<string> {
  await sleep(ms);
  try {
    child.kill("SIGKILL");
  } catch { /* ended already */ }
  const out = await child.output();
  return dec.decode(out.stdout);
}

/** The payloads `tag-0` ... `tag-(n-1)`, one per line. */
function tagged(tag: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${tag}-${i}`);
}

/** Every message of `topic` as `[offset, payload]`, read with a deadline. */
async function readAll(h: string, topic: string): Promise<[number, string][]> {
  const r = await mqWithin(h, ["sub", topic, "-e", "--format", "{offset} {payload}"], 60_000);
  eq(r.code, 0, r.err);
  return r.out.split("\n").filter(Boolean).map((l) => {
    const sp = l.indexOf(" ");
    return [Number(l.slice(0, sp)), l.slice(sp + 1)];
  });
}

/** Offsets strictly increasing: none reused. */
function assertIncreasing(rows: [number, string][]): void {
  for (let i = 1; i < rows.length; i++) {
    ok(rows[i][0] > rows[i - 1][0], `offset ${rows[i][0]} after ${rows[i - 1][0]}: reused`);
  }
}

/** The store takes a new message, at an offset after every one given before. */
async function assertTakesNew(h: string, topic: string, before: number): Promise<void> {
  const pub = await mq(h, ["pub", topic, "after-the-round"]);
  eq(pub.code, 0, pub.err);
  const rows = await readAll(h, topic);
  const last = rows[rows.length - 1];
  eq(last[1], "after-the-round");
  ok(last[0] >= before, `new message at offset ${last[0]}, below ${before}: reused`);
}

const BACKENDS: readonly Backend[] = ["file", "kv"];

/** The environment of a store: `file:` (the default under the folder) or `kv:` there. */
const stores = new Map<string, Record<string, string>>();
function envOf(h: string): Record<string, string> {
  return stores.get(h) ?? {};
}
function mq(h: string, args: string[], o: { stdin?: string } = {}): Promise<Result> {
  return mqIn(h, args, { ...o, env: envOf(h) });
}
function mqWithin(h: string, args: string[], ms: number): Promise<Result> {
  return mqWithinIn(h, args, ms, { env: envOf(h) });
}
function spawnMq(h: string, args: string[], stdin: "piped" | "null" = "null"): Deno.ChildProcess {
  return spawnIn(h, args, stdin, envOf(h));
}

/**
 * One test per kind of fault, its rounds on each backend side by side (the
 * rounds mostly wait on processes; in a row they would take twice as long).
 */
function tortureTest(
  title: string,
  backends: readonly Backend[],
  fn: (h: string, backend: Backend) => Promise<void>,
  options: { sideBySide?: boolean } = {},
): void {
  const one = (backend: Backend) =>
    withHome(async (h) => {
      stores.set(h, backend === "kv" ? { MQ_URL: `kv:${h}/mq.sqlite` } : {});
      try {
        await fn(h, backend);
      } finally {
        stores.delete(h);
      }
    });
  Deno.test({
    name: `torture: ${title}`,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      if (options.sideBySide === false) { for (const b of backends) await one(b); }
      else await Promise.all(backends.map(one));
    },
  });
}

tortureTest(
  "kill -9 of pub: what is stored is a clean prefix, in order, offsets dense",
  BACKENDS,
  async (h, backend) => {
    await rounds("pub", backend, async (round, rnd, tally) => {
      const topic = `p${round}`;
      const sent = tagged(`r${round}`, 20_000 + Math.floor(rnd() * 40_000));
      const child = spawnMq(h, ["pub", topic, "-q"], "piped");
      const w = child.stdin.getWriter();
      // Fed over about 4 s, killed at a random point of it; a write that
      // fails once the child is gone is the point.
      const writing = (async () => {
        const chunk = Math.ceil(sent.length / 80);
        for (let k = 0; k < sent.length; k += chunk) {
          await w.write(new TextEncoder().encode(sent.slice(k, k + chunk).join("\n") + "\n"));
          await sleep(50);
        }
        await w.close();
      })().catch(() => {});
      await killAfter(child, 1000 + Math.floor(rnd() * 3000));
      await writing;
      tally.faults++;
      // Killed before it stored anything: no topic yet.
      const listed = await mq(h, ["topics", "--json"]);
      const made = listed.out.includes(`"${topic}"`);
      const stored = made ? await readAll(h, topic) : [];
      eq(stored.map((r) => r[1]), sent.slice(0, stored.length), "a prefix of what was sent");
      eq(stored.map((r) => r[0]), stored.map((_, i) => i), "dense offsets from 0");
      tally.messages += stored.length;
      await assertTakesNew(h, topic, stored.length);
    });
  },
  // Side by side, the fs publisher stored nothing in 4 s on this machine (two
  // cores shared); one backend at a time it stores thousands.
  { sideBySide: false },
);

tortureTest(
  "kill -9 of sub --group: every message comes at least once, none after its ack",
  BACKENDS,
  async (h, backend) => {
    await rounds("sub --group", backend, async (round, rnd, tally) => {
      const topic = `s${round}`;
      const sent = tagged(`r${round}`, 1000 + Math.floor(rnd() * 3000));
      eq((await mq(h, ["pub", topic, "-q"], { stdin: sent.join("\n") + "\n" })).code, 0);
      const child = spawnMq(h, ["sub", topic, "--group", "g", "--visibility", "1s"]);
      const first = (await killAfter(child, 100 + Math.floor(rnd() * 600))).split("\n");
      first.pop(); // a line cut by the kill
      tally.faults++;
      const drain = await mqWithin(
        h,
        ["sub", topic, "--group", "g", "-e", "--visibility", "60s"],
        60_000,
      );
      eq(drain.code, 0, drain.err);
      const rest = drain.out.split("\n").filter(Boolean);
      eq(new Set(rest).size, rest.length, "the drain delivers each once");
      const seen = new Set([...first, ...rest]);
      eq(sent.filter((m) => !seen.has(m)), [], "every message delivered at least once");
      ok(rest.every((m) => sent.includes(m)));
      // Everything is acked now: nothing comes again.
      const again = await mqWithin(h, ["sub", topic, "--group", "g", "-e"], 30_000);
      eq([again.code, again.out], [0, ""]);
      tally.messages += sent.length;
      await assertTakesNew(h, topic, sent.length);
    }, 3);
  },
);

tortureTest(
  "kill -9 of work: every job runs at least once, the group ends settled",
  BACKENDS,
  async (h, backend) => {
    await rounds("work", backend, async (round, rnd, tally) => {
      const topic = `w${round}`;
      const out = `${h}/work-${round}.out`;
      const sent = tagged(`r${round}`, 60 + Math.floor(rnd() * 120));
      eq((await mq(h, ["pub", topic, "-q"], { stdin: sent.join("\n") + "\n" })).code, 0);
      const job = ["--", "sh", "-c", `printf '%s\\n' "$(cat)" >> ${out}`];
      const child = spawnMq(h, ["work", topic, "-c", "4", "-q", "--visibility", "2s", ...job]);
      await killAfter(child, 200 + Math.floor(rnd() * 800));
      tally.faults++;
      const drain = await mqWithin(
        h,
        // Its own leases long: on a loaded machine a job may take seconds.
        ["work", topic, "-e", "-c", "4", "-q", "--visibility", "60s", ...job],
        90_000,
      );
      eq(drain.code, 0, drain.err);
      const done = new Set((await Deno.readTextFile(out)).split("\n").filter(Boolean));
      eq(sent.filter((m) => !done.has(m)), [], "every job ran");
      const [g] = JSON.parse((await mq(h, ["groups", topic, "--json"])).out);
      eq([g.lag, g.inFlight, g.deadLettered], [0, 0, 0], JSON.stringify(g));
      tally.messages += sent.length;
    }, 3);
  },
);

tortureTest(
  "kill -9 of bridge: the target gets every message once (redeliveries dropped by id)",
  BACKENDS,
  async (h, backend) => {
    await rounds("bridge", backend, async (round, rnd, tally) => {
      const topic = `b${round}`;
      const target = `file:${h}/target`;
      const sent = tagged(`r${round}`, 1000 + Math.floor(rnd() * 2000));
      for (let i = 0; i < sent.length; i += 1000) {
        const part = sent.slice(i, i + 1000).map((m) => JSON.stringify({ id: m, payload: m }));
        await mq(h, ["pub", topic, "--json-lines", "-q"], { stdin: part.join("\n") + "\n" });
      }
      const args = ["bridge", "--to", target, "--topics", topic, "--visibility", "1s", "-q"];
      await killAfter(spawnMq(h, args), 100 + Math.floor(rnd() * 600));
      tally.faults++;
      // Its own leases long: on a loaded machine a batch may take seconds.
      const drain = await mqWithin(
        h,
        [...args.slice(0, -3), "--visibility", "60s", "-q", "-e"],
        90_000,
      );
      eq(drain.code, 0, drain.err);
      const got = await mqWithin(h, ["sub", topic, "-e", "--url", target], 60_000);
      eq(got.out.split("\n").filter(Boolean), sent, "each once, in order");
      tally.messages += sent.length;
    }, 3);
  },
);

tortureTest(
  "byte flips and truncations of segments and group documents; reads, drains and doctor --repair",
  ["file"],
  async (h, backend) => {
    await rounds("damage", backend, async (round, rnd, tally) => {
      const topic = `d${round}`;
      const sent = tagged(`r${round}`, 3000 + Math.floor(rnd() * 5000));
      for (let i = 0; i < sent.length; i += 500) {
        await mq(h, ["pub", topic, "-q"], { stdin: sent.slice(i, i + 500).join("\n") + "\n" });
      }
      await mq(h, ["sub", topic, "--group", "g", "-n", String(Math.floor(sent.length / 3)), "-q"]);
      const end = sent.length;
      const seg = segmentOf(h, topic);
      const bytes = await Deno.readFile(seg);
      const truncate = rnd() < 0.3;
      if (truncate) {
        await Deno.truncate(seg, Math.floor(bytes.length * (0.3 + rnd() * 0.7)));
      } else {
        for (let k = 1 + Math.floor(rnd() * 4); k > 0; k--) {
          bytes[Math.floor(rnd() * bytes.length)] ^= 1 << Math.floor(rnd() * 8);
        }
        await Deno.writeFile(seg, bytes);
      }
      tally.faults++;
      const damageDoc = rnd() < 0.5;
      if (damageDoc) {
        const doc = await Deno.readFile(groupDoc(h, topic, "g"));
        doc[Math.floor(rnd() * doc.length)] ^= 1 << Math.floor(rnd() * 8);
        await Deno.writeFile(groupDoc(h, topic, "g"), doc);
        tally.faults++;
      }
      // A plain read ends, returns only what was sent, in order, and says what it skipped.
      const read = await mqWithin(
        h,
        ["sub", topic, "-e", "--format", "{offset} {payload}"],
        60_000,
      );
      eq(read.code, 0, read.err);
      const rows = read.out.split("\n").filter(Boolean).map((l) => l.split(" "));
      for (const [o, p] of rows) eq(p, sent[Number(o)], `offset ${o} holds what was sent there`);
      const missing = sent.length - rows.length;
      if (missing > 0) {
        ok(
          /mq: warning: (skipped corrupt bytes|.*lost to damage)/.test(read.err),
          `${missing} lost without a word`,
        );
      }
      tally.corruptReported += missing;
      tally.messages += sent.length;
      // A group drain ends: with one clear line if its document is damaged.
      const drain = await mqWithin(h, ["sub", topic, "--group", "g", "-e", "-q"], 30_000).catch(
        async (e) => {
          const doc = await Deno.readTextFile(groupDoc(h, topic, "g")).catch(() => "");
          throw new Error(`${e.message}\ngroup document: ${doc.slice(0, 2000)}`);
        },
      );
      if (drain.code !== 0) {
        eq(drain.code, 1);
        ok(/^mq: error: group "g" of topic ".*is damaged: /m.test(drain.err), drain.err);
      }
      // doctor --repair leaves a clean store, and nothing readable is lost by it.
      const repair = await mqWithin(h, ["doctor", "--repair", "-q"], 60_000);
      eq(repair.code, 0, repair.out + repair.err);
      const again = await mqWithin(h, ["doctor", "-q"], 60_000);
      eq(again.code, 0, again.out + again.err);
      const after = await readAll(h, topic);
      ok(after.length >= rows.length - 0, "the repair lost nothing readable");
      eq(after.map((r) => r[1]), rows.map((r) => r[1]));
      const groupDrain = await mqWithin(h, ["sub", topic, "--group", "g", "-e", "-q"], 60_000);
      eq(groupDrain.code, 0, groupDrain.err);
      await assertTakesNew(h, topic, end);
    });
  },
);

tortureTest(
  "topics rm racing a publisher and a group consumer: all end, the store stays sound",
  BACKENDS,
  async (h, backend) => {
    await rounds("topics rm", backend, async (round, rnd, tally) => {
      const topic = `x${round}`;
      await mq(h, ["pub", topic, "-q"], { stdin: tagged("pre", 500).join("\n") + "\n" });
      const consumer = spawnMq(h, ["sub", topic, "--group", "g"]);
      const publisher = spawnMq(h, ["pub", topic, "-q"], "piped");
      const w = publisher.stdin.getWriter();
      const feeding = (async () => {
        for (let i = 0; i < 40; i++) {
          await w.write(new TextEncoder().encode(tagged(`r${round}.${i}`, 50).join("\n") + "\n"));
          await sleep(10);
        }
        await w.close();
      })().catch(() => {});
      await sleep(100 + Math.floor(rnd() * 400));
      const rm = await mq(h, ["topics", "rm", topic]);
      tally.faults++;
      ok(rm.code === 0 || rm.code === 1, rm.err);
      await feeding;
      const pub = await publisher.output();
      ok(pub.code === 0, dec.decode(pub.stderr));
      // The consumer stops with one line when its topic went; if the publisher
      // made it again meanwhile, it goes on and is stopped here.
      const timer = setTimeout(() => {
        try {
          consumer.kill("SIGTERM");
        } catch { /* gone */ }
      }, 5000);
      const c = await consumer.output();
      clearTimeout(timer);
      const err = dec.decode(c.stderr).trim();
      ok(
        c.code === 0 || (c.code === 1 && err === `mq: error: topic "${topic}" was removed`) ||
          c.code === 143,
        `consumer: exit ${c.code}: ${err}`,
      );
      // Whatever is left is sound: readable, drainable, repairable, and takes new messages.
      const exists = (await mq(h, ["topics", "--json"])).out.includes(`"${topic}"`);
      if (exists) {
        const rows = await readAll(h, topic);
        assertIncreasing(rows);
        tally.messages += rows.length;
        const drain = await mqWithin(h, ["sub", topic, "--group", "g2", "-e", "-q"], 30_000);
        eq(drain.code, 0, drain.err);
      }
      const repair = await mqWithin(h, ["doctor", "--repair", "-q"], 60_000);
      eq(repair.code, 0, repair.out + repair.err);
      await assertTakesNew(h, topic, 0);
      const clean = await mqWithin(h, ["doctor", "-q"], 60_000);
      eq(clean.code, 0, clean.out + clean.err);
    });
  },
);
