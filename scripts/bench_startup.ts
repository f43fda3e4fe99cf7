/**
 * Start-up: `mq pub t x` on the fs backend (a whole process, as the installed
 * `mq` runs it), side by side in one run with
 * - the floor: `deno run` of a script that only prints a line (and the same
 *   with mq's deno.json, which every mq run loads);
 * - the native peers: `mosquitto_pub -m` into a private mosquitto and
 *   `redis-cli XADD` into a private redis-server, each on a free port.
 *
 * The cases run interleaved (one of each per round, the order rotating), so
 * that a busy machine slows them alike; it prints the median of the rounds
 * (default 20), the quartiles, and each median's ratio to the floor. Target:
 * `mq pub t x` at most 2x the floor.
 *
 * Run: `deno task bench:startup [--runs N] [--json]`.
 *
 * @module
 */
import { findBinary, freePort, startMosquitto } from "./brokers.ts";
import type { Broker } from "./brokers.ts";

const args = Deno.args;
const runsAt = args.indexOf("--runs");
const RUNS = runsAt >= 0 ? Number(args[runsAt + 1]) : 20;
const JSON_OUT = args.includes("--json");
if (!Number.isInteger(RUNS) || RUNS < 1) {
  console.error("bench_startup: --runs must be a whole number of at least 1");
  Deno.exit(2);
}

const root = new URL("..", import.meta.url).pathname;
const tmp = await Deno.makeTempDir({ prefix: "mq-bench-startup-" });
const deno = Deno.execPath();

/** One command measured as a whole process. */
interface Case {
  name: string;
  cmd: string[];
  env?: Record<string, string>;
  /** The floor the others are compared with. */
  floor?: boolean;
}

/** The permissions and config of the `mq` task and of the `deno task install` shim. */
const MQ = [
  deno,
  "run",
  "--quiet",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-net",
  "--allow-run",
  "--config",
  `${root}deno.json`,
  `${root}cli/mq.js`,
];

await Deno.writeTextFile(`${tmp}/print.ts`, 'console.log("x");\n');
const mqEnv = (): Record<string, string> => {
  const env: Record<string, string> = {
    ...Deno.env.toObject(),
    MQ_HOME: `${tmp}/data`,
    XDG_CONFIG_HOME: `${tmp}/config`,
  };
  delete env.MQ_URL;
  delete env.MQ_CONTEXT;
  delete env.MQ_ENV;
  return env;
};

const cases: Case[] = [
  {
    name: "floor: deno run print.ts",
    cmd: [deno, "run", "--quiet", "--no-config", `${tmp}/print.ts`],
    floor: true,
  },
  {
    name: "deno run print.ts, mq's deno.json",
    cmd: [deno, "run", "--quiet", "--config", `${root}deno.json`, `${tmp}/print.ts`],
  },
  { name: "mq pub t x (file:)", cmd: [...MQ, "pub", "t", "x"], env: mqEnv() },
];

const brokers: { stop(): Promise<void> }[] = [];
const skipped: string[] = [];

if (findBinary("mosquitto") && await which("mosquitto_pub")) {
  const m: Broker = await startMosquitto();
  brokers.push(m);
  cases.push({
    name: "mosquitto_pub -m x",
    cmd: ["mosquitto_pub", "-h", "127.0.0.1", "-p", String(m.port), "-t", "t", "-m", "x"],
  });
} else skipped.push("mosquitto_pub (mosquitto or mosquitto-clients is not installed)");

if (await which("redis-server") && await which("redis-cli")) {
  const port = freePort();
  const child = new Deno.Command("redis-server", {
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
    name: "redis-cli XADD t * p x",
    cmd: ["redis-cli", "-p", String(port), "XADD", "t", "*", "p", "x"],
  });
} else skipped.push("redis-cli (redis-server or redis-tools is not installed)");

async function which(name: string): Promise<boolean> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if ((await Deno.stat(`${dir}/${name}`)).isFile) return true;
    } catch { /* next */ }
  }
  return false;
}

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

/** Runs one case; milliseconds from spawn to exit. */
async function once(c: Case): Promise<number> {
  const t = performance.now();
  const out = await new Deno.Command(c.cmd[0], {
    args: c.cmd.slice(1),
    env: c.env,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  const ms = performance.now() - t;
  if (!out.success) {
    throw new Error(`${c.name} failed (${out.code}): ${new TextDecoder().decode(out.stderr)}`);
  }
  return ms;
}

function loadAverage(): string {
  try {
    return Deno.loadavg().map((l) => l.toFixed(2)).join(" ");
  } catch {
    return "unknown (needs --allow-sys=loadavg)";
  }
}

const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))];

try {
  // Warm up: Deno's caches, the topic, the brokers' first connection.
  for (const c of cases) await once(c);
  const times = cases.map(() => [] as number[]);
  for (let round = 0; round < RUNS; round++) {
    for (let k = 0; k < cases.length; k++) {
      const i = (round + k) % cases.length;
      times[i].push(await once(cases[i]));
    }
  }
  const floorAt = cases.findIndex((c) => c.floor);
  const sorted = times.map((t) => [...t].sort((a, b) => a - b));
  const floor = quantile(sorted[floorAt], 0.5);
  const rows = cases.map((c, i) => ({
    name: c.name,
    median_ms: Number(quantile(sorted[i], 0.5).toFixed(1)),
    p25_ms: Number(quantile(sorted[i], 0.25).toFixed(1)),
    p75_ms: Number(quantile(sorted[i], 0.75).toFixed(1)),
    ratio: Number((quantile(sorted[i], 0.5) / floor).toFixed(2)),
  }));
  const mq = rows.find((r) => r.name.startsWith("mq pub"))!;
  if (JSON_OUT) {
    console.log(JSON.stringify({ runs: RUNS, cases: rows, skipped, target_ratio: 2 }));
  } else {
    console.log(
      `start-up, ${RUNS} interleaved rounds (median, p25-p75, median's ratio to the floor); ${navigator.hardwareConcurrency} cores, load ${loadAverage()}`,
    );
    const width = Math.max(...rows.map((r) => r.name.length));
    for (const r of rows) {
      console.log(
        `  ${r.name.padEnd(width)}  ${r.median_ms.toFixed(1).padStart(6)} ms  (${
          r.p25_ms.toFixed(1)
        }-${r.p75_ms.toFixed(1)})  x${r.ratio.toFixed(2)}`,
      );
    }
    for (const s of skipped) console.log(`  skipped: ${s}`);
    console.log(
      `mq pub t x is ${mq.ratio.toFixed(2)}x the floor (target: at most 2x): ${
        mq.ratio <= 2 ? "met" : "NOT met"
      }`,
    );
  }
} finally {
  for (const b of brokers) await b.stop().catch(() => {});
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
}
