/**
 * A broker restart under long-running consumers (issue 10, defect 5): with
 * `mq sub T --group g` and `mq work T -c 4` running, nats-server stops for
 * 2 s and starts again on the same store. Both say each change of state in
 * one line, go on where they stopped and get every message, each once
 * (also those published after the restart), and exit 0 when stopped.
 * And a `mq pub` whose broker goes for good fails (exit 1) saying how many
 * messages it stored before the failure; that many are stored, at least.
 *
 * Seeded: the seed (printed on failure, `MQ_TORTURE_SEED` to repeat it)
 * picks when the broker stops and for how long (1 to 3 s).
 */
import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { available, startNats } from "../../scripts/brokers.ts";
import { streamName } from "../../adapters/nats/mod.ts";
import { collectStderr, linesOf, mqRun, numbered, spawnMq, until } from "./_cluster.ts";
import { streamCount } from "./_nats.ts";

const nats = available("nats-server");
const opts = { ignore: !nats.ok, sanitizeOps: false, sanitizeResources: false };
const dec = new TextDecoder();

/** A small seeded generator (mulberry32). */
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

const STATE = [
  /^mq: disconnected from NATS at 127\.0\.0\.1:\d+$/,
  /^mq: reconnecting to NATS$/,
  /^mq: reconnected to NATS at 127\.0\.0\.1:\d+$/,
  /^mq: NATS JetStream did not answer .*; retrying$/,
  /^mq: NATS JetStream answers again$/,
  // work's summary at the end (its counts are checked against the topic below).
  /^mq: work on "[^"]+": \d+ done, \d+ retried, \d+ dead-lettered$/,
];

/** Each stderr line is a state line, none twice in a row, and the connection went and came back. */
function assertStateLines(lines: string[], who: string): void {
  const text = `${who}:\n${lines.join("\n")}`;
  for (const l of lines) ok(STATE.some((re) => re.test(l)), text);
  for (let i = 1; i < lines.length; i++) ok(lines[i] !== lines[i - 1], text);
  eq(lines.filter((l) => STATE[0].test(l)).length, 1, text);
  eq(lines.filter((l) => STATE[2].test(l)).length, 1, text);
  ok(lines.length <= 8, text);
}

Deno.test({
  ...opts,
  name:
    "torture: a nats-server restart under sub --group and work -c 4: all once, one line per state",
  fn: async () => {
    const seed = Number(Deno.env.get("MQ_TORTURE_SEED") ?? Date.now() % 100_000);
    const rnd = random(seed);
    const N = 2000;
    const broker = await startNats();
    const home = await Deno.makeTempDir({ prefix: "mq-restart-" });
    const done = `${home}/done.txt`;
    const env = { MQ_URL: broker.url, MQ_HOME: `${home}/data`, DONE: done };
    const children: Deno.ChildProcess[] = [];
    try {
      eq((await mqRun(env, ["pub", "t", "-q"], numbered(0, N / 2))).code, 0);
      const sub = spawnMq(env, ["sub", "t", "--group", "g"]);
      const work = spawnMq(env, [
        "work",
        "t",
        "-g",
        "w",
        "-c",
        "4",
        "--",
        "sh",
        "-c",
        'printf "%s\\n" "$(cat)" >> "$DONE"',
      ]);
      children.push(sub, work);
      const subErr = collectStderr(sub), workErr = collectStderr(work);
      let printed = "";
      const reading = (async () => {
        for await (const c of sub.stdout) printed += dec.decode(c);
      })();
      const count = () => printed.split("\n").length - 1;
      // Stop while the worker is in the middle of the first half.
      const at = Math.floor(N / 8 + rnd() * N / 4);
      await until(async () => (await linesOf(done)).length >= at, 60_000, `${at} done`);
      const pause = 1000 + Math.floor(rnd() * 2000);
      await broker.stop({ keepStore: true });
      await new Promise((r) => setTimeout(r, pause));
      await broker.restart();
      const restartedAt = Date.now();
      const second = await mqRun(env, ["pub", "t", "-q"], numbered(N / 2, N));
      eq(second.code, 0, second.err);
      await until(
        async () => count() >= N && new Set(await linesOf(done)).size >= N,
        120_000,
        "every message printed and done",
      );
      const caughtUpMs = Date.now() - restartedAt;
      sub.kill("SIGTERM");
      work.kill("SIGTERM");
      const codes = [(await sub.status).code, (await work.status).code];
      await Promise.all([reading, subErr.done, workErr.done]);
      eq(codes, [0, 0], `seed ${seed}\n${subErr.lines.join("\n")}\n${workErr.lines.join("\n")}`);
      const want = numbered(0, N);
      eq(printed, want, `seed ${seed}: sub --group printed each once, in order`);
      const doneLines = await linesOf(done);
      eq([doneLines.length, new Set(doneLines).size], [N, N], `seed ${seed}: work did each once`);
      assertStateLines(subErr.lines, `seed ${seed}: sub`);
      assertStateLines(workErr.lines, `seed ${seed}: work`);
      console.error(
        `  seed ${seed}: stopped ${pause}ms at ${at} done; all ${N} in ${caughtUpMs}ms`,
      );
    } finally {
      for (const c of children) {
        try {
          c.kill("SIGKILL");
        } catch { /* ended */ }
        await c.status.catch(() => {});
      }
      await broker.stop();
      await Deno.remove(home, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  ...opts,
  name: "torture: mq pub whose broker goes for good says how many it stored (exit 1)",
  fn: async () => {
    const broker = await startNats();
    const home = await Deno.makeTempDir({ prefix: "mq-restart-" });
    const env = { MQ_URL: broker.url, MQ_HOME: `${home}/data` };
    try {
      const pub = spawnMq(env, ["pub", "p"], "piped");
      const err = collectStderr(pub);
      const w = pub.stdin.getWriter();
      await w.write(new TextEncoder().encode(numbered(0, 5000)));
      await until(
        async () => (await streamCount(broker.port, streamName("p", 0)).catch(() => 0)) >= 5000,
        30_000,
        "the first lines stored",
      );
      await broker.stop({ keepStore: true });
      await w.write(new TextEncoder().encode(numbered(5000, 8000))).catch(() => {});
      await w.close().catch(() => {});
      const t = Date.now();
      const status = await pub.status;
      await err.done;
      const last = err.lines.at(-1) ?? "";
      eq(status.code, 1, err.lines.join("\n"));
      const m =
        /^mq: error: publishing to NATS failed: .*; published (\d+) messages before the failure$/
          .exec(last);
      ok(m, err.lines.join("\n"));
      ok(Date.now() - t < 40_000, `gave up after ${Date.now() - t}ms`);
      await broker.restart();
      const stored = await streamCount(broker.port, streamName("p", 0));
      const said = Number(m![1]);
      ok(said >= 5000 && said <= stored, `said ${said}, stored ${stored}`);
    } finally {
      await broker.stop();
      await Deno.remove(home, { recursive: true }).catch(() => {});
    }
  },
});
