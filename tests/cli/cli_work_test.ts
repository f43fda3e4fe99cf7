/**
 * End to end: `mq work`, `take`, `ack`, `nack`, `peek`, `cancel`, `dlq`,
 * `groups` and the topic settings of work queues, through the real command.
 * Cases about processes and signals run on the file backend only (the
 * backend plays no part there); the rest run on every backend.
 */
import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { cliTest, envFor, errorLine, MQ, mq, type Result, spawnMq } from "./_mq.ts";

const dec = new TextDecoder();

/** Polls `check` until it holds, failing after `ms` (generous: the machine may be busy). */
async function waitUntil(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The lines of a file (none when it does not exist yet). */
async function lines(path: string): Promise<string[]> {
  try {
    return (await Deno.readTextFile(path)).split("\n").filter((l) => l !== "");
  } catch {
    return [];
  }
}

/** A group's counts, from `mq groups --json`. */
async function group(h: string, topic: string, name = "default"): Promise<Record<string, number>> {
  const r = await mq(h, ["groups", topic, "--json"]);
  eq(r.code, 0, r.err);
  const g = JSON.parse(r.out).find((x: { name: string }) => x.name === name);
  return g ?? {};
}

/** The summary line `mq work` prints on stderr (unless -q). */
function summary(topic: string, done: number, retried: number, dead: number): string {
  return `mq: work on "${topic}": ${done} done, ${retried} retried, ${dead} dead-lettered\n`;
}

/** Waits for a spawned mq to exit (failing the case after `ms`); its exit code, stderr and how long it took. */
async function exitOf(
  child: Deno.ChildProcess,
  ms: number,
): Promise<{ code: number; err: string; ms: number }> {
  const t = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      reject(new Error(`mq did not exit within ${ms} ms`));
    }, ms);
  });
  try {
    const out = await Promise.race([child.output(), late]);
    return { code: out.code, err: dec.decode(out.stderr), ms: performance.now() - t };
  } finally {
    clearTimeout(timer);
  }
}

/** True while a process with this pid runs (a zombie waiting to be reaped does not). */
function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    // Deno refuses /proc without --allow-all (NotCapable), as the test task runs: ask ps.
  }
  try {
    const r = new Deno.Command("ps", { args: ["-o", "stat=", "-p", String(pid)], stdout: "piped" })
      .outputSync();
    const state = new TextDecoder().decode(r.stdout).trim();
    return state !== "" && !state.startsWith("Z");
  } catch { /* no ps */ }
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

/** Kills what a case left running (on failure), by the pids it recorded. */
async function killRecorded(path: string): Promise<void> {
  for (const pid of await lines(path)) {
    try {
      Deno.kill(Number(pid), "SIGKILL");
    } catch { /* gone */ }
  }
}

/** A shell word. */
const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** Runs `mq args` on a pseudo-terminal (`script`), stdin piped to it; resolves to the terminal's output. */
function onTerminal(
  h: string,
  args: string[],
): { child: Deno.ChildProcess; input: WritableStreamDefaultWriter<Uint8Array> } {
  const child = new Deno.Command("script", {
    // exec: mq itself leads the terminal's foreground group, no shell in between.
    args: ["-qfec", `exec ${[...MQ, ...args].map(quote).join(" ")}`, "/dev/null"],
    env: envFor(h, { SHELL: "/bin/sh" }),
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  return { child, input: child.stdin.getWriter() };
}

const hasScript = (() => {
  try {
    return new Deno.Command("script", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

// --- the command's environment ---------------------------------------------------

cliTest("work: the payload on stdin and MQ_* in the environment, exactly", async (h) => {
  eq((await mq(h, ["topics", "create", "jobs", "--partitions", "2"])).code, 0);
  const pub = await mq(h, [
    "pub",
    "jobs",
    "-q",
    "--partition",
    "1",
    "-k",
    "cust-7",
    "--id",
    "job-1",
    "-H",
    "trace-id=abc",
    "-H",
    "Tenant=acme",
    "first payload",
  ]);
  eq(pub.code, 0, pub.err);
  eq((await mq(h, ["pub", "jobs", "-q", "--partition", "0", "second"])).code, 0);
  // Fails its first attempt (to see MQ_ATTEMPT move), then acks.
  const script = `printf '%s|%s|%s|%s|%s|%s|%s|%s|%s|%s\\n' "$MQ_TOPIC" "$MQ_GROUP" "$MQ_ID" ` +
    `"$MQ_OFFSET" "$MQ_PARTITION" "$MQ_KEY" "$MQ_ATTEMPT" "$MQ_HEADER_TRACE_ID" ` +
    `"$MQ_HEADER_TENANT" "$(cat)" >> "${h}/env"; [ "$MQ_ATTEMPT" -ge 2 ]`;
  const r = await mq(h, [
    "work",
    "jobs",
    "-g",
    "billing",
    "-e",
    "--backoff",
    "10ms",
    "--",
    "sh",
    "-c",
    script,
  ]);
  eq([r.code, r.err, r.out], [0, summary("jobs", 2, 2, 0), ""]);
  eq((await lines(`${h}/env`)).sort(), [
    "jobs|billing|0-0|0|0||1|||second",
    "jobs|billing|0-0|0|0||2|||second",
    "jobs|billing|job-1|0|1|cust-7|1|abc|acme|first payload",
    "jobs|billing|job-1|0|1|cust-7|2|abc|acme|first payload",
  ]);
  const g = await group(h, "jobs", "billing");
  eq([g.lag, g.inFlight, g.retrying, g.deadLettered], [0, 0, 0, 0]);
});

// --- time limits and signals -----------------------------------------------------

cliTest(
  "work: --visibility kills a command that runs too long, with what it started, and retries it",
  async (h) => {
    eq((await mq(h, ["pub", "t", "-q", "x"])).code, 0);
    const script = `echo $$ >> "${h}/pids"; if [ "$MQ_ATTEMPT" = 1 ]; then ` +
      `sleep 60 >/dev/null 2>&1 & echo $! >> "${h}/pids"; wait; fi; echo "$MQ_ATTEMPT $(cat)" >> "${h}/done"`;
    try {
      const r = await mq(h, [
        "work",
        "t",
        "-e",
        "--visibility",
        "1s",
        "--backoff",
        "10ms",
        "--",
        "sh",
        "-c",
        script,
      ]);
      eq([r.code, r.err], [0, summary("t", 1, 1, 0)]);
      eq(await lines(`${h}/done`), ["2 x"]);
      const [sh1, sleep1] = (await lines(`${h}/pids`)).map(Number);
      eq([alive(sh1), alive(sleep1)], [false, false], "the command and its sleep are gone");
      const g = await group(h, "t");
      eq([g.lag, g.inFlight, g.retrying], [0, 0, 0]);
    } finally {
      await killRecorded(`${h}/pids`);
    }
  },
  { backends: ["file"] },
);

cliTest(
  "work: SIGTERM with every slot busy: exits after --grace, the messages released without an attempt",
  async (h) => {
    eq((await mq(h, ["pub", "t", "-q"], { stdin: "a\nb\nc\n" })).code, 0);
    const script =
      `echo $$ >> "${h}/pids"; cat > /dev/null; sleep 30 >/dev/null 2>&1 & echo $! >> "${h}/pids"; wait`;
    const w = spawnMq(h, ["work", "t", "-c", "2", "--grace", "1s", "--", "sh", "-c", script]);
    try {
      await waitUntil(async () => (await lines(`${h}/pids`)).length === 4, 30_000, "two runs");
      w.kill("SIGTERM");
      const st = await exitOf(w, 20_000);
      eq([st.code, st.err], [0, summary("t", 0, 0, 0)]);
      ok(st.ms >= 900 && st.ms < 5000, `exited ${Math.round(st.ms)} ms after SIGTERM (grace 1s)`);
      ok((await lines(`${h}/pids`)).map(Number).every((p) => !alive(p)), "nothing left running");
      const g = await group(h, "t");
      eq([g.lag, g.inFlight, g.retrying], [3, 0, 0]);
      const again = await mq(h, ["sub", "t", "-g", "default", "-e", "--format", "{attempt}"]);
      eq(again.out, "1\n1\n1\n", "no attempt counted");
    } finally {
      await killRecorded(`${h}/pids`);
    }
  },
);

cliTest(
  "work: at shutdown a command that traps SIGTERM (exit 143) and one that ignores it are both released, not counted",
  async (h) => {
    eq((await mq(h, ["pub", "t", "-q"], { stdin: "trap\nignore\n" })).code, 0);
    const script = `echo $$ >> "${h}/pids"; p=$(cat); ` +
      `if [ "$p" = trap ]; then trap 'exit 143' TERM; else trap '' TERM; fi; ` +
      `sleep 30 >/dev/null 2>&1 & echo $! >> "${h}/pids"; wait; sleep 30 >/dev/null 2>&1 & echo $! >> "${h}/pids"; wait`;
    const w = spawnMq(h, ["work", "t", "-c", "2", "--grace", "500ms", "--", "sh", "-c", script]);
    try {
      await waitUntil(async () => (await lines(`${h}/pids`)).length === 4, 30_000, "two runs");
      w.kill("SIGTERM");
      // 500ms of grace, then SIGTERM, then SIGKILL 2s later for the one that ignores it.
      const st = await exitOf(w, 20_000);
      eq([st.code, st.err], [0, summary("t", 0, 0, 0)]);
      ok(st.ms >= 2400 && st.ms < 8000, `exited ${Math.round(st.ms)} ms after SIGTERM`);
      ok((await lines(`${h}/pids`)).map(Number).every((p) => !alive(p)), "nothing left running");
      const g = await group(h, "t");
      eq([g.lag, g.inFlight, g.retrying], [2, 0, 0]);
      eq((await mq(h, ["sub", "t", "-g", "default", "-e", "--format", "{attempt}"])).out, "1\n1\n");
    } finally {
      await killRecorded(`${h}/pids`);
    }
  },
  { backends: ["file"] },
);

cliTest(
  "work: a command stopped at shutdown that still exits 0 is acked, not run again",
  async (h) => {
    eq((await mq(h, ["pub", "t", "-q"], { stdin: "job\n" })).code, 0);
    const script = `echo $$ >> "${h}/pids"; cat > /dev/null; ` +
      `trap 'echo finished >> "${h}/log"; exit 0' TERM; sleep 30 >/dev/null 2>&1 & wait`;
    const w = spawnMq(h, ["work", "t", "--grace", "300ms", "--", "sh", "-c", script]);
    try {
      await waitUntil(async () => (await lines(`${h}/pids`)).length === 1, 30_000, "a run");
      w.kill("SIGTERM");
      const st = await exitOf(w, 20_000);
      eq([st.code, st.err], [0, summary("t", 1, 0, 0)]);
      eq(await lines(`${h}/log`), ["finished"]);
      const g = await group(h, "t");
      eq([g.lag, g.inFlight, g.retrying], [0, 0, 0], "acked");
    } finally {
      await killRecorded(`${h}/pids`);
    }
  },
  { backends: ["file"] },
);

cliTest(
  "work: Ctrl-C on a terminal reaches mq alone: the running command finishes and is acked",
  async (h) => {
    if (!hasScript) return console.log("skipped: no `script` command to make a terminal");
    eq((await mq(h, ["pub", "t", "-q"], { stdin: "a\nb\n" })).code, 0);
    const script = `cat > /dev/null; echo started >> "${h}/log"; sleep 1; echo done >> "${h}/log"`;
    const { child, input } = onTerminal(h, ["work", "t", "-q", "--", "sh", "-c", script]);
    await waitUntil(async () => (await lines(`${h}/log`)).length > 0, 30_000, "a run");
    await input.write(Uint8Array.of(3)); // ^C: SIGINT to the terminal's foreground group
    const st = await exitOf(child, 20_000);
    await input.close().catch(() => {});
    eq(st.code, 0, st.err);
    eq(await lines(`${h}/log`), ["started", "done"]);
    const g = await group(h, "t");
    eq([g.lag, g.inFlight, g.retrying], [1, 0, 0], "the one that ran is acked, the other waits");
  },
  { backends: ["file"] },
);

cliTest(
  "work: a progress line on a terminal, a summary on a terminal or not; -q silences both",
  async (h) => {
    eq((await mq(h, ["pub", "t", "-q"], { stdin: "a\nb\nc\n" })).code, 0);
    const piped = await mq(h, ["work", "t", "-e", "--", "true"]);
    eq([piped.code, piped.out, piped.err], [0, "", summary("t", 3, 0, 0)]);
    eq((await mq(h, ["groups", "reset", "t", "default", "--to", "beginning"])).code, 0);
    const quietPipe = await mq(h, ["work", "t", "-e", "-q", "--", "true"]);
    eq([quietPipe.code, quietPipe.out, quietPipe.err], [0, "", ""]);
    if (!hasScript) return console.log("skipped the terminal part: no `script` command");
    eq((await mq(h, ["groups", "reset", "t", "default", "--to", "beginning"])).code, 0);
    const tty = onTerminal(h, ["work", "t", "-e", "--", "sh", "-c", "cat > /dev/null"]);
    await tty.input.close();
    const out = dec.decode((await tty.child.output()).stdout);
    // The first frame comes as soon as one run is done; the next run has not started.
    ok(out.includes("\r\x1b[2Kwork: 1 done, 0 failed, 0 running, "), JSON.stringify(out));
    ok(
      out.endsWith('\r\x1b[2Kmq: work on "t": 3 done, 0 retried, 0 dead-lettered\r\n'),
      JSON.stringify(out),
    );
    eq((await mq(h, ["groups", "reset", "t", "default", "--to", "beginning"])).code, 0);
    const quiet = onTerminal(h, ["work", "t", "-e", "-q", "--", "true"]);
    await quiet.input.close();
    eq(dec.decode((await quiet.child.output()).stdout), "");
  },
  { backends: ["file"] },
);

cliTest(
  "work: two workers share 8 slow jobs; neither claims more than it runs",
  async (h) => {
    eq(
      (await mq(h, ["pub", "t", "-q"], { stdin: "1\n2\n3\n4\n5\n6\n7\n8\n" })).code,
      0,
    );
    // Each run waits for the go (so that both workers are up), then takes a while.
    const script = `echo "$(cat)" >> "${h}/ran.$W"; ` +
      `while [ ! -e "${h}/go" ]; do sleep 0.05; done; sleep 0.3`;
    const workers = ["a", "b"].map((w) =>
      spawnMq(h, ["work", "t", "-e", "-c", "2", "--", "sh", "-c", script], "null", { W: w })
    );
    // Hoarding would show as more than the 4 slots' worth in flight before any run ends.
    await waitUntil(async () => (await group(h, "t")).inFlight >= 4, 30_000, "both workers");
    eq((await group(h, "t")).inFlight, 4, "claimed only for free slots");
    await Deno.writeTextFile(`${h}/go`, "");
    for (const w of workers) eq((await exitOf(w, 60_000)).code, 0);
    const a = await lines(`${h}/ran.a`), b = await lines(`${h}/ran.b`);
    eq([...a, ...b].sort(), ["1", "2", "3", "4", "5", "6", "7", "8"]);
    ok(a.length >= 2 && b.length >= 2, `a ran ${a.length}, b ran ${b.length}`);
    eq((await group(h, "t")).lag, 0);
  },
);

// --- take, ack, nack -------------------------------------------------------------

cliTest("take: with nothing deliverable now it exits 3 at once", async (h) => {
  eq((await mq(h, ["pub", "t", "-q", "x"])).code, 0);
  const first = await mq(h, ["take", "t"]);
  eq([first.code, first.out], [0, "x\n"]);
  const receipt = first.err.trim().replace(/^receipt: /, "");
  const timed = async (args: string[]): Promise<Result & { ms: number }> => {
    const t = performance.now();
    const r = await mq(h, args);
    return { ...r, ms: performance.now() - t };
  };
  // Leased to someone else (for 30s).
  let r = await timed(["take", "t"]);
  eq([r.code, r.out, errorLine(r)], [3, "", 'mq: error: no message is available in "t"']);
  ok(r.ms < 10_000, `took ${Math.round(r.ms)} ms`);
  // Waiting out a nack's delay.
  eq((await mq(h, ["nack", "t", receipt, "--delay", "1m"])).code, 0);
  r = await timed(["take", "t"]);
  eq([r.code, errorLine(r)], [3, 'mq: error: no message is available in "t"']);
  ok(r.ms < 10_000, `took ${Math.round(r.ms)} ms`);
  // Delayed.
  eq((await mq(h, ["pub", "d", "-q", "--delay", "1m", "later"])).code, 0);
  r = await timed(["take", "d"]);
  eq(r.code, 3);
  ok(r.ms < 10_000, `took ${Math.round(r.ms)} ms`);
  const g = await group(h, "t");
  eq([g.lag, g.inFlight, g.retrying], [1, 0, 1]);
});

cliTest(
  "ack and nack: an unknown, settled or malformed receipt exits 2 and changes nothing",
  async (h) => {
    eq((await mq(h, ["pub", "t", "-q", "x"])).code, 0);
    const taken = await mq(h, ["take", "t", "--format", "json"]);
    eq(taken.code, 0, taken.err);
    const { receipt } = JSON.parse(taken.out);
    const before = await group(h, "t");
    for (
      const [cmd, r] of [
        ["ack", "default:0:0:nosuchtoken"],
        ["nack", "default:0:0:nosuchtoken"],
        ["ack", "garbage"],
      ]
    ) {
      const res = await mq(h, [cmd, "t", r]);
      eq(res.code, 2, res.err);
      ok(/^mq: error: receipt "[^"]+" (is unknown|is not a receipt)/.test(errorLine(res)), res.err);
    }
    eq(await group(h, "t"), before);
    eq((await mq(h, ["ack", "t", receipt])).code, 0);
    const twice = await mq(h, ["ack", "t", receipt]);
    eq(twice.code, 2);
    ok(errorLine(twice).startsWith(`mq: error: receipt "${receipt}" is unknown`), twice.err);
    eq((await group(h, "t")).lag, 0);
  },
);

// --- peek, cancel, delay, ttl, ordered -----------------------------------------------

cliTest("peek and cancel; --delay and --ttl from the command line", async (h) => {
  eq((await mq(h, ["pub", "t", "-q", "now"])).code, 0);
  // The delays outlast the calls up to the cancel, also on a loaded machine (at a
  // load of 8, with 1 s, peek already showed both and the cancel found nothing).
  eq((await mq(h, ["pub", "t", "-q", "--delay", "6s", "--id", "d1", "cancelled"])).code, 0);
  eq((await mq(h, ["pub", "t", "-q", "--delay", "6s", "--id", "d2", "later"])).code, 0);
  eq((await mq(h, ["pub", "t", "-q", "--ttl", "1s", "short-lived"])).code, 0);
  const first = (await mq(h, ["peek", "t"])).out; // the ttl may pass meanwhile on a busy machine
  ok(first === "now\nshort-lived\n" || first === "now\n", first);
  const c = await mq(h, ["cancel", "t", "d1"]);
  eq([c.code, c.err], [0, 'mq: cancelled "d1" in "t"\n']);
  const again = await mq(h, ["cancel", "t", "d1"]);
  eq([again.code, errorLine(again)], [
    1,
    'mq: error: no delayed message with id "d1" waits in "t"',
  ]);
  // Once the delay and the ttl have passed: the delayed one, not the cancelled nor the expired.
  await waitUntil(async () => (await mq(h, ["peek", "t"])).out === "now\nlater\n", 30_000, "peek");
  eq(
    (await mq(h, ["peek", "t", "-n", "1", "--format", "{offset} {id} {payload}"])).out,
    "0  now\n",
  );
  const w = await mq(h, [
    "work",
    "t",
    "-e",
    "--",
    "sh",
    "-c",
    `echo "$(cat)" >> "${h}/got"`,
  ]);
  eq(w.code, 0, w.err);
  eq((await lines(`${h}/got`)).sort(), ["later", "now"]);
  const g = await group(h, "t");
  eq([g.lag, g.expired, g.delayed], [0, 1, 0]);
});

cliTest("a delayed message is not run before its time; work -e does not wait for it", async (h) => {
  const t = performance.now();
  eq((await mq(h, ["pub", "t", "-q", "--delay", "4s", "z"])).code, 0);
  const early = await mq(h, ["work", "t", "-e", "--", "sh", "-c", `cat >> "${h}/got"`]);
  eq(early.code, 0, early.err);
  const g = await group(h, "t");
  if (performance.now() - t < 4000) {
    eq(await lines(`${h}/got`), []);
    eq([g.lag, g.delayed], [1, 1]);
  }
  await new Promise((r) => setTimeout(r, Math.max(0, 4100 - (performance.now() - t))));
  eq((await mq(h, ["work", "t", "-e", "--", "sh", "-c", `cat >> "${h}/got"`])).code, 0);
  eq(await lines(`${h}/got`), ["z"]);
});

cliTest("work --ordered: one message per key at a time, in order, keys in parallel", async (h) => {
  const input = Array.from({ length: 12 }, (_, i) => `k${i % 3} ${i}`).join("\n") + "\n";
  eq((await mq(h, ["pub", "t", "-q", "-K", " "], { stdin: input })).code, 0);
  const script = `p=$(cat); echo "$MQ_KEY start $p" >> "${h}/log"; sleep 0.05; ` +
    `echo "$MQ_KEY end $p" >> "${h}/log"`;
  const r = await mq(h, ["work", "t", "-e", "-c", "4", "--ordered", "--", "sh", "-c", script]);
  eq(r.code, 0, r.err);
  const log = await lines(`${h}/log`);
  eq(log.length, 24);
  for (const k of ["k0", "k1", "k2"]) {
    const mine = log.filter((l) => l.startsWith(`${k} `)).map((l) => l.slice(k.length + 1));
    const want = Array.from({ length: 12 }, (_, i) => i).filter((i) => `k${i % 3}` === k)
      .flatMap((i) => [`start ${i}`, `end ${i}`]);
    eq(mine, want, `key ${k}: one at a time, in order`);
  }
});

// --- topic settings ------------------------------------------------------------------

cliTest(
  "topics create --retention-age: old messages are not read, even before a publish trims them",
  async (h) => {
    eq((await mq(h, ["topics", "create", "t", "--retention-age", "1s"])).code, 0);
    eq((await mq(h, ["pub", "t", "-q", "old"])).code, 0);
    eq((await mq(h, ["sub", "t", "-e"])).out, "old\n");
    await new Promise((r) => setTimeout(r, 1300));
    eq((await mq(h, ["sub", "t", "-e"])).out, "");
    eq((await mq(h, ["sub", "t", "-g", "g", "-e"])).out, "");
    eq((await mq(h, ["peek", "t"])).out, "");
  },
);

cliTest(
  "topics create --dlq-expired: an expired message goes to the dead-letter topic",
  async (h) => {
    const help = await mq(h, ["topics", "create", "--help"]);
    ok(/--dlq-expired\s+move expired messages/.test(help.out), help.out);
    ok(/--max-bytes <n>\s+keep at most N bytes per partition/.test(help.out), help.out);
    eq((await mq(h, ["topics", "create", "t", "--dlq-expired"])).code, 0);
    ok((await mq(h, ["topics", "info", "t"])).out.includes(" dlq-expired"));
    eq((await mq(h, ["pub", "t", "-q", "--ttl", "300ms", "x"])).code, 0);
    await new Promise((r) => setTimeout(r, 400));
    const w = await mq(h, ["work", "t", "-e", "--", "sh", "-c", `cat >> "${h}/ran"`]);
    eq(w.code, 0, w.err);
    eq(await lines(`${h}/ran`), []);
    eq(
      (await mq(h, ["dlq", "ls", "t", "--format", "{payload}|{header.mq-dlq-reason}"])).out,
      "x|expired (ttl)\n",
    );
    const g = await group(h, "t");
    eq([g.lag, g.expired, g.deadLettered], [0, 1, 1]);
  },
);

// --- dead letters and groups ---------------------------------------------------------

cliTest("dlq ls, replay (with the original id) and purge; groups and groups reset", async (h) => {
  eq((await mq(h, ["pub", "t", "-q", "--id", "job-1", "-k", "c1", "-H", "trace=t1", "x"])).code, 0);
  eq((await mq(h, ["pub", "t", "-q", "y"])).code, 0);
  // Each run says why on stderr; a dead letter keeps the last 2 KiB of it, from a whole line.
  const noise = `i=0; while [ $i -lt 200 ]; do echo "noise line $i" >&2; i=$((i+1)); done; ` +
    `echo "failed on $(cat)" >&2; exit 3`;
  const fail = ["work", "t", "-e", "--max-attempts", "1", "--", "sh", "-c", noise];
  const failed = await mq(h, fail);
  eq(failed.code, 1, "work -e exits 1 when a message was dead-lettered");
  const errLines = failed.err.trimEnd().split("\n");
  eq(errLines.slice(-2), [
    summary("t", 0, 0, 2).trimEnd(),
    'mq: error: 2 messages of "t" went to the dead-letter topic "t.dlq" (see mq dlq ls t)',
  ]);
  eq(errLines.filter((l) => l === "failed on x" || l === "failed on y").sort(), [
    "failed on x",
    "failed on y",
  ], "the command's stderr still reaches mq's");
  const ls = await mq(h, ["dlq", "ls", "t"]);
  eq(ls.code, 0, ls.err);
  const rows = ls.out.trimEnd().split("\n");
  eq(rows[0].split(/\s{2,}/), [
    "OFFSET",
    "ATTEMPTS",
    "REASON",
    "LAST FAILURE",
    "STDERR (LAST LINE)",
    "PAYLOAD",
  ]);
  eq(rows.slice(1).map((r) => r.split(/\s{2,}/).filter((_, i) => i !== 3)), [
    ["0", "1", "exit code 3", "failed on x", "x"],
    ["1", "1", "exit code 3", "failed on y", "y"],
  ]);
  const json = await mq(h, ["dlq", "ls", "t", "--json"]);
  eq(json.code, 0, json.err);
  const entries = JSON.parse(json.out);
  eq(entries.map((e: Record<string, unknown>) => [e.payload, e.reason, e.attempts, e.id]), [
    ["x", "exit code 3", 1, "job-1"],
    ["y", "exit code 3", 1, "0-1"],
  ]);
  eq(entries[0].origin, { topic: "t", partition: 0, offset: 0 });
  const stderr: string = entries[0].stderr;
  ok(new TextEncoder().encode(stderr).length <= 2048, `${stderr.length} characters kept`);
  ok(/^noise line \d+\n/.test(stderr), stderr.slice(0, 40));
  ok(stderr.endsWith("noise line 199\nfailed on x"), stderr.slice(-40));
  eq(entries[0].headers["mq-dlq-stderr"], stderr);
  eq(
    (await mq(h, ["dlq", "ls", "t", "--format", "{id} {key} {payload}"])).out,
    "job-1 c1 x\n0-1  y\n",
  );
  for (const sub of ["ls", "replay", "purge"]) {
    const nosuch = await mq(h, ["dlq", sub, "nosuch"]);
    eq([nosuch.code, errorLine(nosuch)], [2, 'mq: error: topic "nosuch" does not exist']);
  }
  // Replayed within the dedup window of "job-1": kept, with its id, key and own headers
  // (not mq's dead-letter ones), attempts from 1.
  const rp = await mq(h, ["dlq", "replay", "t", "-n", "1"]);
  eq([rp.code, rp.err], [0, 'mq: replayed 1 dead letter to "t"\n']);
  const run = [
    "work",
    "t",
    "-e",
    "--",
    "sh",
    "-c",
    `echo "$MQ_ID $MQ_KEY $MQ_ATTEMPT $MQ_HEADER_TRACE [$MQ_HEADER_MQ_DLQ_REASON] $(cat)" >> "${h}/ran"`,
  ];
  eq((await mq(h, run)).code, 0);
  eq(await lines(`${h}/ran`), ["job-1 c1 1 t1 [] x"]);
  eq((await mq(h, ["dlq", "ls", "t", "--format", "{id}"])).out, "0-1\n");
  const purge = await mq(h, ["dlq", "purge", "t"]);
  eq([purge.code, purge.err], [0, 'mq: purged 1 dead letter of "t"\n']);
  const empty = await mq(h, ["dlq", "ls", "t"]);
  eq([empty.code, empty.out, empty.err], [0, "", 'mq: no dead letters for "t"\n']);

  const table = async () =>
    (await mq(h, ["groups", "t"])).out.trimEnd().split("\n").map((l) => l.split(/\s{2,}/));
  // After the purge the counts agree with what is left: no dead letters.
  eq(await table(), [
    ["GROUP", "LAG", "IN-FLIGHT", "RETRYING", "DELAYED", "DEAD-LETTERED", "EXPIRED"],
    ["default", "0", "0", "0", "0", "0", "0"],
  ]);
  eq(JSON.parse((await mq(h, ["topics", "info", "t", "--json"])).out).groups[0].deadLettered, 0);
  const reset = await mq(h, ["groups", "reset", "t", "default", "--to", "beginning"]);
  eq([reset.code, reset.err], [0, 'mq: group "default" of "t" moved to beginning\n']);
  const unknown = await mq(h, ["groups", "reset", "t", "nosuch", "--to", "beginning"]);
  eq([unknown.code, errorLine(unknown)], [
    2,
    'mq: error: group "nosuch" of topic "t" does not exist (--create makes it)',
  ]);
  eq((await table()).length, 2, "nothing was created");
  const made = await mq(h, ["groups", "reset", "t", "new", "--to", "2", "--create"]);
  eq([made.code, made.err], [0, 'mq: group "new" of "t" moved to 2\n']);
  eq((await table())[2].slice(0, 2), ["new", "1"]);
  eq((await table())[1].slice(0, 2), ["default", "3"]);
  eq((await mq(h, ["groups", "reset", "t", "default", "--to", "2"])).code, 0);
  eq((await table())[1].slice(0, 2), ["default", "1"]);
  eq((await mq(h, ["groups", "reset", "t", "default", "--to", "end"])).code, 0);
  eq((await table())[1].slice(0, 2), ["default", "0"]);
  const future = new Date(Date.now() + 3_600_000).toISOString();
  eq((await mq(h, ["groups", "reset", "t", "default", "--to", "2000-01-01T00:00:00Z"])).code, 0);
  eq((await table())[1].slice(0, 2), ["default", "3"]);
  eq((await mq(h, ["groups", "reset", "t", "default", "--to", future])).code, 0);
  eq((await table())[1].slice(0, 2), ["default", "0"]);
});
