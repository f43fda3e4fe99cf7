/**
 * The views' benchmark on the fs backend, side by side in one run, reported
 * against the issue's budgets and as ratios to a floor measured in the same run:
 * - `GET /api/overview` of a running `mq ui` over 10,000 topics (budget < 1 s):
 *   the first (cold) answer, with the server's CPU for it, and the median of
 *   four more, each past the server's interval (a pass of its own); floor:
 *   the same topics listed by the library's `mq.topics.list()` in process
 *   (no groups, no dead letters, no HTTP); peer: `mq topics --json`.
 * - opening a 10,000,000-message topic near its end, `GET
 *   /api/topics/big/messages?from=9999950` and the last page (budget < 100 ms);
 *   floor: `tail -n 50` of the same lines as a plain file.
 * - the CPU of `mq ui` with a page's live stream open on 1,000 topics and
 *   nothing published, and of `mq top` refreshing those 1,000 topics each
 *   second (budget < 5% of one core each); floor: the same server idle.
 *
 *   The cold answer is taken `--rounds N` times (default 3), each from a
 *   fresh server; the median is reported with the range. Beside it, in the
 *   same rounds: the same server with `--allow-all` instead of the explicit
 *   permissions (what Deno's resolution of every folder of a path on each
 *   open costs), and with `--baseline DIR` the server of another checkout's
 *   sources (a before/after at one load).
 *
 * Run: `deno task bench:ui` (`--quick`: 1,000,000 messages instead of
 * 10,000,000 and 10 s of CPU instead of 20; `--cpu`: only the CPU cases;
 * `--overview`, `--open`: only that case; `--rounds N`, `--baseline DIR`).
 */
import { connect } from "../mod.ts";

const quick = Deno.args.includes("--quick");
const only = ["--cpu", "--overview", "--open"].filter((a) => Deno.args.includes(a));
const runs = (c: string) => only.length === 0 || only.includes(c);
const root = new URL("..", import.meta.url).pathname;
const tmp = await Deno.makeTempDir({ prefix: "mq-bench-ui-" });
const argAfter = (flag: string) =>
  Deno.args.includes(flag) ? Deno.args[Deno.args.indexOf(flag) + 1] : undefined;
const ROUNDS = Math.max(1, Number(argAfter("--rounds") ?? 3));
const BASELINE = argAfter("--baseline")?.replace(/\/*$/, "/");
const PERMISSIONS = ["--allow-read", "--allow-write", "--allow-env", "--allow-net", "--allow-run"];
/** The `mq` command of a checkout (this one unless `src`), with the task's permissions or `-A`. */
const mqOf = (src = root, permissions = PERMISSIONS) => [
  Deno.execPath(),
  "run",
  "--quiet",
  ...permissions,
  `${src}cli/main.ts`,
];
const MQ = mqOf();
if (BASELINE) {
  try {
    Deno.statSync(`${BASELINE}cli/main.ts`);
  } catch (e) {
    console.error(`bench_ui: --baseline ${BASELINE}: no checkout there (${(e as Error).message})`);
    Deno.exit(2);
  }
}
const TOKEN = "bench-token-0123456789";
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (x: number) => `${x.toFixed(1)} ms`;
const CLK_TCK = 100;

function env(dir: string): Record<string, string> {
  const e = { ...Deno.env.toObject(), MQ_URL: `file:${dir}`, NO_COLOR: "1" };
  delete (e as Record<string, string>).MQ_CONTEXT;
  return e;
}

/** CPU seconds (user + system) a process used so far, from /proc. */
async function cpuSeconds(pid: number): Promise<number> {
  // Through cat: Deno reads /proc/<pid>/ only with --allow-all.
  const out = await new Deno.Command("cat", { args: [`/proc/${pid}/stat`], stdout: "piped" })
    .output();
  const stat = new TextDecoder().decode(out.stdout);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

async function startUi(
  dir: string,
  mq = MQ,
): Promise<{ child: Deno.ChildProcess; origin: string }> {
  const child = new Deno.Command(mq[0], {
    args: [...mq.slice(1), "ui", "--port", "0", "--token", TOKEN],
    env: env(dir),
    stdout: "piped",
    stderr: "null",
    stdin: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("\n")) {
    const r = await reader.read();
    if (r.done) throw new Error("mq ui did not start");
    out += r.value;
  }
  (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })();
  return { child, origin: new URL(out.split("\n")[0]).origin };
}

async function stop(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch { /* gone */ }
  await child.status;
}

async function get(url: string): Promise<{ ms: number; body: string }> {
  const t = performance.now();
  const r = await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` } });
  const body = await r.text();
  if (!r.ok) throw new Error(`${url}: ${r.status} ${body}`);
  return { ms: performance.now() - t, body };
}

async function timeCommand(cmd: string[], e: Record<string, string>): Promise<number> {
  const t = performance.now();
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env: e,
    stdout: "null",
    stderr: "null",
  }).output();
  if (!out.success) throw new Error(`${cmd.join(" ")} failed`);
  return performance.now() - t;
}

/** Makes `n` topics of one message each, `groups` of them with a group. */
async function makeTopics(dir: string, n: number): Promise<void> {
  const mq = await connect(`file:${dir}?fsync=never`);
  let next = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < n) {
      const i = next++;
      await mq.publish(`topic-${String(i).padStart(5, "0")}`, `message ${i}`);
    }
  }));
  await mq.close();
  // Their bytes on the disk before anything is timed: the write-back of
  // what was just written would otherwise be measured with the reads.
  await new Deno.Command("sync").output();
}

/** The 1, 5 and 15 minute load averages, as /proc/loadavg has them. */
async function loadAverage(): Promise<string> {
  const out = await new Deno.Command("cat", { args: ["/proc/loadavg"], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout).split(" ").slice(0, 3).join(" ");
}

const results: string[] = [];
/** Prints a figure with the load average beside it (the machine is shared). */
const report = async (line: string) => {
  const l = `${line} [load ${await loadAverage()}]`;
  results.push(l);
  console.log(l);
};

try {
  // 1. The overview of 10,000 topics.
  const many = `${tmp}/many`;
  if (runs("--overview")) {
    console.error("making 10,000 topics ...");
    await makeTopics(many, 10_000);
    {
      // The first (cold) answer of a fresh server, and the server's own CPU
      // for it: the share of the wall time that is the server's work rather
      // than the machine's load.
      const cold = async (mq: string[]) => {
        const ui = await startUi(many, mq);
        const c0 = await cpuSeconds(ui.child.pid);
        const r = await get(`${ui.origin}/api/overview`);
        const cpu = (await cpuSeconds(ui.child.pid) - c0) * 1000;
        if (JSON.parse(r.body).topics.length !== 10_000) throw new Error("not 10,000");
        return { ui, ms: r.ms, cpu };
      };
      const twins: [string, string[]][] = [["--allow-all", mqOf(root, ["--allow-all"])]];
      if (BASELINE) twins.push([`baseline ${BASELINE}`, mqOf(BASELINE)]);
      const colds: number[] = [], cpus: number[] = [];
      const twinColds = twins.map(() => [] as number[]);
      const api: number[] = [];
      const twinCpus = twins.map(() => [] as number[]);
      // This tree's warm passes, from the first round's server.
      const warm = async (origin: string) => {
        for (let i = 1; i < 5; i++) {
          // Past the server's interval: each answer is a pass of its own, not the last one kept.
          await new Promise((r) => setTimeout(r, 1100));
          api.push((await get(`${origin}/api/overview`)).ms);
        }
      };
      for (let round = 0; round < ROUNDS; round++) {
        // The servers in turn, starting with another each round: none is
        // always the first after the topics were written, or after a stop.
        const order = [-1, ...twins.keys()];
        for (let k = 0; k < round % order.length; k++) order.push(order.shift()!);
        for (const i of order) {
          const run = await cold(i < 0 ? MQ : twins[i][1]);
          if (i < 0) {
            colds.push(run.ms);
            cpus.push(run.cpu);
            if (api.length === 0) await warm(run.ui.origin);
          } else {
            twinColds[i].push(run.ms);
            twinCpus[i].push(run.cpu);
          }
          await stop(run.ui.child);
        }
      }
      const floor: number[] = [];
      for (let i = 0; i < 5; i++) {
        const mq = await connect(`file:${many}`);
        const t = performance.now();
        await mq.topics.list();
        floor.push(performance.now() - t);
        await mq.close();
      }
      const peer = median(
        await Promise.all([0, 1, 2].map(() => timeCommand([...MQ, "topics", "--json"], env(many)))),
      );
      const a = median(api), f = median(floor), c = median(colds);
      const range = (xs: number[]) =>
        `${Math.min(...xs).toFixed(0)}-${Math.max(...xs).toFixed(0)} ms`;
      await report(
        `overview API, 10,000 topics: ${ms(a)} a pass, the first (cold) ${
          ms(c)
        } (median of ${ROUNDS} fresh servers, ${range(colds)}) using ${
          ms(median(cpus))
        } of the server's CPU (budget 1000 ms: ${Math.max(a, c) < 1000 ? "ok" : "OVER"}); ` +
          `library topics.list() ${ms(f)} (ratio cold ${(c / f).toFixed(2)}, warm ${
            (a / f).toFixed(2)
          }); mq topics --json ${ms(peer)} (ratio cold ${(c / peer).toFixed(2)})` +
          twins.map(([name], i) => {
            const t = median(twinColds[i]);
            return `; cold with ${name} ${ms(t)} (${range(twinColds[i])}, ${
              ms(median(twinCpus[i]))
            } of CPU; this tree / it ${(c / t).toFixed(2)}, CPU ${
              (median(cpus) / median(twinCpus[i])).toFixed(2)
            })`;
          }).join(""),
      );
    }
  }

  // 2. A 10,000,000-message topic, opened near its end.
  if (runs("--open")) {
    const N = quick ? 1_000_000 : 10_000_000;
    const big = `${tmp}/big`;
    const lines = `${tmp}/lines.txt`;
    console.error(`writing ${N.toLocaleString("en")} messages ...`);
    {
      const f = await Deno.open(lines, { write: true, create: true, truncate: true });
      const enc = new TextEncoder();
      const chunk = 100_000;
      for (let i = 0; i < N; i += chunk) {
        let s = "";
        for (let j = i; j < i + chunk && j < N; j++) s += `message number ${j} of the big topic\n`;
        await f.write(enc.encode(s));
      }
      f.close();
      const pub = new Deno.Command(MQ[0], {
        args: [...MQ.slice(1), "pub", "big", "-q"],
        env: env(big),
        stdin: "piped",
        stdout: "null",
        stderr: "inherit",
      }).spawn();
      await (await Deno.open(lines)).readable.pipeTo(pub.stdin);
      if (!(await pub.status).success) throw new Error("mq pub big failed");
    }
    {
      const ui = await startUi(big);
      await get(`${ui.origin}/api/overview`); // warm: the server is up and has read the topic list
      const near: number[] = [], last: number[] = [];
      for (let i = 0; i < 5; i++) {
        const at = N - 50 - i * 1000;
        const r = await get(`${ui.origin}/api/topics/big/messages?from=${at}&limit=50`);
        const page = JSON.parse(r.body);
        if (page.messages.length !== 50 || page.messages[0].offset !== at) {
          throw new Error(`wrong page at ${at}`);
        }
        near.push(r.ms);
        last.push((await get(`${ui.origin}/api/topics/big/messages?limit=50`)).ms);
      }
      await stop(ui.child);
      const tail = median(
        await Promise.all([0, 1, 2].map(() => timeCommand(["tail", "-n", "50", lines], {}))),
      );
      const n = median(near), l = median(last);
      await report(
        `open a ${N.toLocaleString("en")}-message topic near its end: from=offset ${ms(n)}, ` +
          `the last page ${ms(l)} (budget 100 ms: ${Math.max(n, l) < 100 ? "ok" : "OVER"}); ` +
          `tail -n 50 of the same lines ${ms(tail)} (ratio ${(Math.max(n, l) / tail).toFixed(2)})`,
      );
    }
  }

  // 3. CPU: a page open on 1,000 topics, nothing published; and mq top.
  if (runs("--cpu")) await cpuCases();
} finally {
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
}

async function cpuCases(): Promise<void> {
  const thousand = `${tmp}/thousand`;
  await makeTopics(thousand, 1_000);
  const seconds = quick ? 10 : 20;
  {
    const ui = await startUi(thousand);
    await get(`${ui.origin}/api/overview`);
    const idle0 = await cpuSeconds(ui.child.pid);
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const idle = (await cpuSeconds(ui.child.pid)) - idle0;
    const events = await fetch(`${ui.origin}/api/events`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    const reader = events.body!.getReader();
    let frames = 0;
    const reading = (async () => {
      const dec = new TextDecoder();
      while (true) {
        const r = await reader.read().catch(() => ({ done: true, value: undefined }));
        if (r.done) return;
        frames += (dec.decode(r.value).match(/event: overview/g) ?? []).length;
      }
    })();
    // Past the first, cold pass (it reads every topic's settings once).
    while (frames < 2) await new Promise((r) => setTimeout(r, 100));
    const f0 = frames;
    const open0 = await cpuSeconds(ui.child.pid);
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const open = (await cpuSeconds(ui.child.pid)) - open0;
    const got = frames - f0;
    await reader.cancel();
    await reading;
    await stop(ui.child);
    const pct = (open / seconds) * 100;
    await report(
      `mq ui, a page's live stream open on 1,000 topics, nothing published: ${
        pct.toFixed(1)
      }% of one core (budget 5%: ${pct < 5 ? "ok" : "OVER"}), ${got} updates in ${seconds} s; ` +
        `idle with no page ${((idle / seconds) * 100).toFixed(1)}%`,
    );
  }
  {
    const top = new Deno.Command(MQ[0], {
      args: [...MQ.slice(1), "top", "--interval", "1s"],
      env: env(thousand),
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    let bytes = 0;
    const draining = (async () => {
      for await (const c of top.stdout) bytes += c.length;
    })();
    // Past the first, cold refresh (it reads every topic's settings once).
    while (bytes === 0) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 1500));
    const b0 = bytes;
    const c0 = await cpuSeconds(top.pid);
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const used = (await cpuSeconds(top.pid)) - c0;
    const drawn = bytes - b0;
    await stop(top);
    await draining;
    const pct = (used / seconds) * 100;
    await report(
      `mq top refreshing 1,000 topics each second: ${pct.toFixed(1)}% of one core (budget 5%: ${
        pct < 5 ? "ok" : "OVER"
      }), ${(drawn / 1024).toFixed(0)} KB drawn in ${seconds} s`,
    );
  }
}
console.log("\n" + results.join("\n") + `\nload average at the end: ${await loadAverage()}`);
