/**
 * End to end: transactions through the real command: `mq pub --atomic` and
 * `mq work --out`, on every backend, with kill -9 at random points.
 *
 * `MQ_TX_ROUNDS` sets the kill -9 rounds of `mq work --out` (default 3; the
 * long form is 20), `MQ_TX_MESSAGES` the inputs (default 10,000; 2,000 on
 * nats, where each input is a transaction of its own), and `MQ_TX_SEED` the
 * seed of the random points (printed by each case).
 */
import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { cliTest, errorLine, mq, spawnMq } from "./_mq.ts";

const ROUNDS = Number(Deno.env.get("MQ_TX_ROUNDS") ?? 3);
/** Inputs of the kill -9 rounds per backend (nats, slower per message, fewer unless set). */
const MESSAGES = (backend: string) =>
  Number(Deno.env.get("MQ_TX_MESSAGES") ?? (backend === "nats" ? 2_000 : 10_000));
const SEED = Number(Deno.env.get("MQ_TX_SEED") ?? Date.now() % 1_000_000);

/** A small seeded generator (mulberry32), so that a failing run can be repeated. */
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The payloads of a topic, read to its end (none for a topic never made). */
async function payloads(home: string, topic: string): Promise<string[]> {
  const r = await mq(home, ["sub", topic, "-e"]);
  if (r.code === 1 && r.err === `mq: error: topic "${topic}" does not exist\n`) return [];
  eq(r.code, 0, r.err);
  return r.out === "" ? [] : r.out.replace(/\n$/, "").split("\n");
}

/** A group's counts, from `mq groups --json`. */
async function group(home: string, topic: string): Promise<Record<string, number>> {
  const r = await mq(home, ["groups", topic, "--json"]);
  eq(r.code, 0, r.err);
  return JSON.parse(r.out).find((g: { name: string }) => g.name === "default") ?? {};
}

cliTest(
  "pub --atomic: a bad line in the middle stores nothing; a good run stores all",
  async (h, backend) => {
    if (backend === "nats") {
      const r = await mq(h, ["pub", "t", "--atomic"], { stdin: "a\nb\n" });
      eq(r.code, 2);
      eq(
        errorLine(r),
        "mq: error: --atomic needs a backend that commits atomically; this one is effectively-once (nats-server 2.9 has no atomic batch)",
      );
      eq((await mq(h, ["topics", "--json"])).out.trim(), "[]");
      return;
    }
    const input = Array.from({ length: 5000 }, (_, i) => `k${i} v${i}`);
    input[2500] = "no-delimiter-here";
    let r = await mq(h, ["pub", "t", "--atomic", "-K", " "], { stdin: input.join("\n") + "\n" });
    eq(r.code, 2);
    eq(
      errorLine(r),
      'mq: error: line 2501: no key delimiter " " in the line; nothing was published (--atomic)',
    );
    eq(await payloads(h, "t"), []);
    // Without --atomic the lines before it stay (the default).
    r = await mq(h, ["pub", "plain", "-K", " "], { stdin: input.join("\n") + "\n" });
    eq(r.code, 2);
    eq((await payloads(h, "plain")).length, 2500);
    // Oversize in the middle: also nothing.
    await mq(h, ["topics", "create", "small", "--max-message-bytes", "8"]);
    r = await mq(h, ["pub", "small", "--atomic"], { stdin: "one\ntwo\nthis is too long\nfour\n" });
    eq(r.code, 2);
    eq(
      errorLine(r),
      'mq: error: line 3: message is 16 bytes; topic "small" allows at most 8 (--max-message-bytes); nothing was published (--atomic)',
    );
    eq(await payloads(h, "small"), []);
    // A good run: everything, once; arguments too.
    r = await mq(h, ["pub", "t", "--atomic", "-q"], { stdin: "x\ny\nz" });
    eq([r.code, r.err], [0, ""]);
    eq(await payloads(h, "t"), ["x", "y", "z"]);
    r = await mq(h, ["pub", "t", "--atomic", "--json", "p", "q"]);
    eq(r.code, 0, r.err);
    eq(JSON.parse(r.out).published, 2);
    eq(await payloads(h, "t"), ["x", "y", "z", "p", "q"]);
    r = await mq(h, ["pub", "--exchange", "ex", "--atomic", "a"]);
    eq([r.code, errorLine(r)], [
      2,
      "mq: error: --atomic publishes to a topic, not through --exchange",
    ]);
  },
);

cliTest("pub --atomic: kill -9 at random points stores nothing or everything", async (h) => {
  const rnd = random(SEED);
  console.log(`seed ${SEED} (MQ_TX_SEED)`);
  const n = 20_000;
  const body = new TextEncoder().encode(
    Array.from({ length: n }, (_, i) => `line ${i}`).join("\n") + "\n",
  );
  // How long a whole run takes here: the kills fall within it, and a little after.
  const t0 = performance.now();
  const full = spawnMq(h, ["pub", "whole", "--atomic", "-q"], "piped");
  const fw = full.stdin.getWriter();
  await fw.write(body);
  await fw.close();
  eq((await full.output()).code, 0);
  const took = performance.now() - t0;
  eq((await payloads(h, "whole")).length, n);
  const seen: number[] = [];
  for (let round = 0; round < 4; round++) {
    const topic = `t${round}`;
    const child = spawnMq(h, ["pub", topic, "--atomic", "-q"], "piped");
    const w = child.stdin.getWriter();
    const at = Math.floor(rnd() * took * 1.3);
    const killer = sleep(at).then(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* done already */ }
    });
    // The input in two halves (a kill may come while reading, committing or after).
    await w.write(body.subarray(0, body.length >> 1)).catch(() => {});
    await w.write(body.subarray(body.length >> 1)).catch(() => {});
    await w.close().catch(() => {});
    await killer;
    await child.output();
    const got = await payloads(h, topic);
    ok(got.length === 0 || got.length === n, `round ${round}: ${got.length} of ${n} stored`);
    if (got.length === n) eq(got[n - 1], `line ${n - 1}`);
    seen.push(got.length);
  }
  console.log(`a whole run: ${Math.round(took)} ms; stored per round: ${seen.join(", ")}`);
}, { backends: ["file", "kv"] });

cliTest(
  "work --out: each stdout line becomes a message, with the input's key on request",
  async (h) => {
    let r = await mq(h, ["pub", "in", "-K", ":", "-q"], { stdin: "a:1\nb:2\na:3\n" });
    eq(r.code, 0, r.err);
    r = await mq(h, [
      "work",
      "in",
      "--out",
      "out",
      "--out-key-from-input",
      "-e",
      "-q",
      "--",
      "sh",
      "-c",
      'read x; echo "$x"; echo "$x$x"',
    ]);
    eq([r.code, r.err], [0, ""]);
    r = await mq(h, ["sub", "out", "-e", "--format", "{key} {payload}"]);
    eq(r.out.split("\n").filter(Boolean).sort(), ["a 1", "a 11", "a 3", "a 33", "b 2", "b 22"]);
    eq((await group(h, "in")).lag, 0);
    // A command that prints nothing acks its input with no output.
    await mq(h, ["pub", "quiet", "x"]);
    r = await mq(h, ["work", "quiet", "--out", "none", "-e", "--", "true"]);
    eq(r.code, 0, r.err);
    eq(await payloads(h, "none"), []);
    eq((await group(h, "quiet")).lag, 0);
    r = await mq(h, ["work", "in", "--out-key-from-input", "-e", "--", "cat"]);
    eq([r.code, errorLine(r)], [2, "mq: error: --out-key-from-input goes with --out TOPIC"]);
    r = await mq(h, ["work", "in", "--out", "../x", "-e", "--", "cat"]);
    eq(r.code, 2);
  },
);

cliTest(
  "work --out: an output line the topic refuses fails the run; nothing of it is stored",
  async (h) => {
    await mq(h, ["topics", "create", "narrow", "--max-message-bytes", "4"]);
    await mq(h, ["pub", "in", "ok", "toolong"]);
    const r = await mq(h, [
      "work",
      "in",
      "--out",
      "narrow",
      "--max-attempts",
      "1",
      "-e",
      "--",
      "cat",
    ]);
    // A run of -e that dead-letters exits 1 (as xargs does), and says so.
    eq([r.code, r.err.trim().split("\n").slice(-2)], [1, [
      'mq: work on "in": 1 done, 0 retried, 1 dead-lettered',
      'mq: error: 1 message of "in" went to the dead-letter topic "in.dlq" (see mq dlq ls in)',
    ]]);
    eq(await payloads(h, "narrow"), ["ok"]);
    const dead = await mq(h, [
      "sub",
      "in.dlq",
      "-e",
      "--format",
      "{payload} {header.mq-dlq-reason}",
    ]);
    eq(
      dead.out.trim(),
      'toolong output line 1: message is 7 bytes; topic "narrow" allows at most 4 (--max-message-bytes)',
    );
  },
  { backends: ["file", "kv"] },
);

cliTest(
  `work --out: kill -9 at random points (${ROUNDS} rounds): every input acked once, one output each`,
  async (h, backend) => {
    const rnd = random(SEED + 1);
    const n = MESSAGES(backend);
    const inputs = Array.from({ length: n }, (_, i) => `m${i}`);
    let r = await mq(h, ["pub", "in", "-q"], { stdin: inputs.join("\n") + "\n" });
    eq(r.code, 0, r.err);
    // The kills fall at random points of the run: when this many are left.
    const points = Array.from({ length: ROUNDS }, () => Math.floor(rnd() * n * 0.9)).sort((a, b) =>
      b - a
    );
    console.log(`seed ${SEED} (MQ_TX_SEED), ${backend}, ${n} inputs, kills at lag ${points}`);
    const work = ["work", "in", "--out", "out", "-c", "4", "--visibility", "5s", "-q"];
    const lags: number[] = [];
    // The group's lag (no group yet: nothing acked yet), polled gently.
    const lag = async () => (await group(h, "in")).lag ?? n;
    for (const point of points) {
      const child = spawnMq(h, [...work, "--", "cat"]);
      const until = Date.now() + 120_000;
      while ((await lag()) > point && Date.now() < until) await sleep(300);
      await sleep(Math.floor(rnd() * 100));
      child.kill("SIGKILL");
      await child.output();
      lags.push(await lag());
    }
    console.log(`lag after each kill: ${lags.join(", ")}`);
    r = await mq(h, [...work, "-e", "--", "cat"]);
    eq([r.code, r.err], [0, ""]);
    const out = await payloads(h, "out");
    const counts = new Map<string, number>();
    for (const p of out) counts.set(p, (counts.get(p) ?? 0) + 1);
    const repeated = [...counts].filter(([, c]) => c > 1).map(([p]) => p);
    const missing = inputs.filter((p) => !counts.has(p));
    eq({ repeated: repeated.slice(0, 5), missing: missing.slice(0, 5) }, {
      repeated: [],
      missing: [],
    });
    eq(out.length, n);
    const g = await group(h, "in");
    eq([g.lag, g.inFlight, g.deadLettered], [0, 0, 0]);
  },
  { backends: ["file", "kv", "nats"] },
);
