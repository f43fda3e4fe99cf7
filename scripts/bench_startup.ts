/**
 * Start-up of `mq` from the sources, as `deno task mq` and the installed
 * `mq` run it (the `mq` task's command line), side by side in one
 * `hyperfine` run with
 * - the floor: `deno run` of a script that only prints a line;
 * - the native peers: `mosquitto_pub -m` into a private mosquitto and
 *   `redis-cli ping` to a private redis-server, each on a free port.
 *
 * Cases: `mq pub t x`, `mq sub t -e` (one message), `mq topics`, `mq groups
 * t`, `mq info`, `mq --help`, `mq topics create --help`, on a fresh fs store.
 * It prints each median (of at least 20 runs), its ratio to the floor's
 * median, and whether the target (at most 1.5x) is met; beside them the mean
 * CPU time (user + system) and its ratio, which a busy machine distorts less. The machine is
 * noisy: `--rounds K` repeats the whole hyperfine run K times and prints the
 * ratios of every round.
 *
 * `--baseline DIR` also runs every mq case from another checkout's sources
 * (say `git archive <commit> | tar -x -C DIR`), in the same hyperfine run:
 * a before/after of a change on one machine at one load, each case's CPU
 * ratio to its baseline twin printed beside it.
 *
 * Run: `deno task bench:startup [--runs N] [--rounds K] [--baseline DIR] [--json]`.
 *
 * @module
 */
import { findBinary, freePort, startMosquitto } from "./brokers.ts";
import type { Broker } from "./brokers.ts";

const args = Deno.args;
const valueOf = (flag: string, fallback: number) => {
  const at = args.indexOf(flag);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const RUNS = valueOf("--runs", 20);
const ROUNDS = valueOf("--rounds", 1);
const JSON_OUT = args.includes("--json");
const BASELINE = args.includes("--baseline") ? args[args.indexOf("--baseline") + 1] : undefined;
const TARGET = 1.5;
if (!Number.isInteger(RUNS) || RUNS < 20 || !Number.isInteger(ROUNDS) || ROUNDS < 1) {
  console.error("bench_startup: --runs must be a whole number of at least 20, --rounds at least 1");
  Deno.exit(2);
}
/** The path of `name` on the PATH (or in /usr/sbin), if any. */
function which(name: string): string | undefined {
  for (const dir of [...(Deno.env.get("PATH") ?? "").split(":"), "/usr/sbin", "/sbin"]) {
    try {
      if (Deno.statSync(`${dir}/${name}`).isFile) return `${dir}/${name}`;
    } catch { /* next */ }
  }
  return undefined;
}

const HYPERFINE = which("hyperfine");
if (!HYPERFINE) {
  console.error("bench_startup: hyperfine is not installed (apt-get install hyperfine)");
  Deno.exit(1);
}

const root = new URL("..", import.meta.url).pathname;
const tmp = await Deno.makeTempDir({ prefix: "mq-bench-startup-" });
const deno = Deno.execPath();

/** The `mq` task's command line of the checkout at `dir`, with this Deno and absolute paths. */
async function mqCommand(dir: string): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(`${dir}deno.json`));
  return (config.tasks.mq as string).trim().split(/\s+/).map((w, i) =>
    i === 0 ? deno : /^[\w.][\w./-]*\.(ts|json)$/.test(w) ? `${dir}${w}` : w
  );
}
const MQ = await mqCommand(root);
let MQ_BASE: string[] | undefined;
if (BASELINE !== undefined) {
  const dir = BASELINE.startsWith("/") ? BASELINE : `${Deno.cwd()}/${BASELINE}`;
  try {
    MQ_BASE = await mqCommand(dir.endsWith("/") ? dir : `${dir}/`);
  } catch (e) {
    console.error(
      `bench_startup: --baseline ${BASELINE}: no checkout there (${(e as Error).message})`,
    );
    Deno.exit(2);
  }
}

/** One command measured as a whole process. */
interface Case {
  name: string;
  cmd: string[];
  /** The floor the others are compared with. */
  floor?: boolean;
  /** A peer (not held to the target). */
  peer?: boolean;
  /** The index of the case this one is the baseline twin of (not held to the target). */
  twinOf?: number;
}

await Deno.writeTextFile(`${tmp}/print.ts`, 'console.log("x");\n');
const env: Record<string, string> = {
  ...Deno.env.toObject(),
  MQ_HOME: `${tmp}/data`,
  XDG_CONFIG_HOME: `${tmp}/config`,
  NO_COLOR: "1",
};
delete env.MQ_URL;
delete env.MQ_CONTEXT;
delete env.MQ_ENV;

async function mq(...words: string[]): Promise<void> {
  const out = await new Deno.Command(MQ[0], {
    args: [...MQ.slice(1), ...words],
    env,
    clearEnv: true,
  })
    .output();
  if (!out.success) {
    throw new Error(`mq ${words.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}
// `t` holds one message and one group; `mq pub` writes to another topic.
await mq("pub", "t", "x", "-q");
await mq("take", "t", "-g", "g");

const cases: Case[] = [
  {
    name: "floor: deno run print.ts",
    cmd: [deno, "run", "--quiet", "--no-config", `${tmp}/print.ts`],
    floor: true,
  },
  { name: "mq pub t x", cmd: [...MQ, "pub", "p", "x", "-q"] },
  { name: "mq sub t -e (one message)", cmd: [...MQ, "sub", "t", "-e", "-q"] },
  { name: "mq topics", cmd: [...MQ, "topics"] },
  { name: "mq groups t", cmd: [...MQ, "groups", "t"] },
  { name: "mq info", cmd: [...MQ, "info"] },
  { name: "mq --help", cmd: [...MQ, "--help"] },
  { name: "mq topics create --help", cmd: [...MQ, "topics", "create", "--help"] },
];

if (MQ_BASE) {
  const own = cases.length;
  for (let i = 0; i < own; i++) {
    const c = cases[i];
    if (c.floor) continue;
    cases.push({
      name: `${c.name} [baseline]`,
      cmd: [...MQ_BASE, ...c.cmd.slice(MQ.length)],
      twinOf: i,
    });
  }
}

const brokers: { stop(): Promise<void> }[] = [];
const skipped: string[] = [];

if (findBinary("mosquitto") && which("mosquitto_pub")) {
  const m: Broker = await startMosquitto();
  brokers.push(m);
  cases.push({
    name: "mosquitto_pub -m x",
    cmd: [
      which("mosquitto_pub")!,
      "-h",
      "127.0.0.1",
      "-p",
      String(m.port),
      "-t",
      "t",
      "-m",
      "x",
    ],
    peer: true,
  });
} else skipped.push("mosquitto_pub (mosquitto or mosquitto-clients is not installed)");

if (which("redis-server") && which("redis-cli")) {
  const port = freePort();
  const child = new Deno.Command(which("redis-server")!, {
    args: [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      tmp,
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  brokers.push({
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      await child.status;
    },
  });
  await waitForPort(port);
  cases.push({
    name: "redis-cli ping",
    cmd: [which("redis-cli")!, "-p", String(port), "ping"],
    peer: true,
  });
} else skipped.push("redis-cli (redis-server or redis-tools is not installed)");

async function waitForPort(port: number): Promise<void> {
  const until = Date.now() + 10_000;
  for (;;) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      if (Date.now() > until) throw new Error(`nothing listens on 127.0.0.1:${port}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

/** One hyperfine run of every case: the medians and the mean CPU times (user + system) in ms, in the order of `cases`. */
async function round(k: number): Promise<{ median: number; cpu: number }[]> {
  const out = `${tmp}/round-${k}.json`;
  const r = await new Deno.Command(HYPERFINE!, {
    args: [
      "-N",
      "--warmup",
      "3",
      "--runs",
      String(RUNS),
      "--export-json",
      out,
      "--style",
      "none",
      ...cases.flatMap((c) => ["-n", c.name, c.cmd.join(" ")]),
    ],
    env,
    clearEnv: true,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!r.success) throw new Error(`hyperfine failed: ${new TextDecoder().decode(r.stderr)}`);
  const results = JSON.parse(await Deno.readTextFile(out)).results as {
    median: number;
    user: number;
    system: number;
  }[];
  return results.map((x) => ({ median: x.median * 1000, cpu: (x.user + x.system) * 1000 }));
}

function loadAverage(): string {
  try {
    return Deno.loadavg().map((l) => l.toFixed(2)).join(" ");
  } catch {
    return "unknown (needs --allow-sys=loadavg)";
  }
}

try {
  const rounds: { median: number; cpu: number }[][] = [];
  for (let k = 0; k < ROUNDS; k++) rounds.push(await round(k));
  const floorAt = cases.findIndex((c) => c.floor);
  const rows = cases.map((c, i) => ({
    name: c.name,
    median_ms: rounds.map((r) => Number(r[i].median.toFixed(1))),
    ratio: rounds.map((r) => Number((r[i].median / r[floorAt].median).toFixed(2))),
    cpu_ms: rounds.map((r) => Number(r[i].cpu.toFixed(1))),
    cpu_ratio: rounds.map((r) => Number((r[i].cpu / r[floorAt].cpu).toFixed(2))),
    held_to_target: !c.floor && !c.peer && c.twinOf === undefined,
    ...(c.twinOf === undefined ? {} : {
      baseline_of: cases[c.twinOf].name,
      cpu_vs_baseline: rounds.map((r) => Number((r[c.twinOf!].cpu / r[i].cpu).toFixed(2))),
    }),
  }));
  const held = rows.filter((r) => r.held_to_target);
  const met = held.every((r) => r.ratio.every((x) => x <= TARGET));
  if (JSON_OUT) {
    console.log(
      JSON.stringify({
        runs: RUNS,
        rounds: ROUNDS,
        cases: rows,
        skipped,
        target_ratio: TARGET,
        met,
      }),
    );
  } else {
    console.log(
      `start-up, hyperfine medians of ${RUNS} runs, ${ROUNDS} round(s) (ms, and the ratio to the floor); ${navigator.hardwareConcurrency} cores, load ${loadAverage()}`,
    );
    const width = Math.max(...rows.map((r) => r.name.length));
    for (const r of rows) {
      const wall = r.median_ms.map((m) => m.toFixed(1).padStart(6)).join(" ");
      const cpu = r.cpu_ms.map((m) => m.toFixed(1).padStart(5)).join(" ");
      console.log(
        `  ${r.name.padEnd(width)}  ${wall} ms  x${r.ratio.map((x) => x.toFixed(2)).join(" x")}` +
          `   cpu ${cpu} ms  x${r.cpu_ratio.map((x) => x.toFixed(2)).join(" x")}` +
          (r.cpu_vs_baseline
            ? `   this tree's cpu / baseline's x${
              r.cpu_vs_baseline.map((x) => x.toFixed(2)).join(" x")
            }`
            : ""),
      );
    }
    for (const s of skipped) console.log(`  skipped: ${s}`);
    console.log(`every mq case at most ${TARGET}x the floor: ${met ? "met" : "NOT met"}`);
  }
} finally {
  for (const b of brokers) await b.stop().catch(() => {});
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
}
