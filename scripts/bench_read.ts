/**
 * Reading benchmarks, side by side in one run (medians of interleaved runs,
 * every figure a whole process, start-up included, unless it says "beyond
 * start-up"):
 * - `mq sub -e` of 1,000,000 messages of 23 bytes to stdout (a file) on fs,
 *   beside the floor: a plain Deno script that reads the same segment files
 *   and writes their bytes to stdout. Target >= 3,000,000 msg/s.
 * - `mq sub -e --grep REGEX` over the same 1,000,000. Target >= 1,500,000 msg/s.
 * - `mq sub --last 10 -e` on a topic of 10,000,000 messages, beside
 *   `mq sub --from end -e` on it (the same process start-up, open and
 *   resolve, nothing read): the difference is what --last costs. Target < 50 ms.
 *
 * mq runs from the sources (`cli/main.ts`), as `deno task mq` will once the
 * bundle is gone. Run: `deno task bench:read` (`--quick`: 2 runs, a topic of
 * 2,000,000 for --last).
 */
const quick = Deno.args.includes("--quick");
const runs = quick ? 2 : 5;
const root = new URL("..", import.meta.url).pathname;
const tmp = await Deno.makeTempDir({ prefix: "mq-bench-read-" });
const MQ = [
  Deno.execPath(),
  "run",
  "--quiet",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-net",
  "--allow-run",
  "--config",
  `${root}deno.json`,
  `${root}cli/main.ts`,
];
const N = 1_000_000;
const BIG = quick ? 2_000_000 : 10_000_000;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/**
 * Runs `cmd` with stdout to `out` (a file, through the shell); its wall time
 * and its CPU time (user + system, from /usr/bin/time), in seconds. On a busy
 * machine the CPU time says more than the wall time.
 */
async function timed(cmd: string[], env: Record<string, string>, out = "/dev/null") {
  const cpuFile = `${tmp}/cpu`;
  const t = performance.now();
  const r = await new Deno.Command("/usr/bin/time", {
    args: [
      "-f",
      "%U %S",
      "-o",
      cpuFile,
      "/bin/sh",
      "-c",
      `exec ${cmd.map(quote).join(" ")} > ${quote(out)}`,
    ],
    env,
    stdout: "null",
    stderr: "piped",
  }).output();
  const wall = (performance.now() - t) / 1000;
  if (!r.success) throw new Error(`${cmd.join(" ")} failed: ${new TextDecoder().decode(r.stderr)}`);
  const [user, sys] = (await Deno.readTextFile(cpuFile)).trim().split("\n").at(-1)!.split(" ")
    .map(Number);
  cpu.push(user + sys);
  return wall;
}
/** The CPU times of the runs, in order (see {@link timed}). */
const cpu: number[] = [];
/** The median CPU time of the runs `from` on, every `step`-th. */
const cpuOf = (from: number, step: number) => median(cpu.filter((_, i) => i % step === from));

/** Publishes `count` lines of 23 bytes (with the newline) to `topic`. */
async function fill(home: string, topic: string, count: number): Promise<string> {
  const file = `${tmp}/${topic}.txt`;
  const line = new TextEncoder().encode("0123456789abcdefghijkl\n");
  const chunk = new Uint8Array(line.length * 100_000);
  for (let i = 0; i < 100_000; i++) chunk.set(line, i * line.length);
  const f = await Deno.open(file, { write: true, create: true, truncate: true });
  for (let left = count; left > 0; left -= 100_000) {
    await f.write(chunk.subarray(0, Math.min(left, 100_000) * line.length));
  }
  f.close();
  const r = await new Deno.Command("/bin/sh", {
    args: ["-c", `exec ${[...MQ, "pub", topic, "-q"].map(quote).join(" ")} < ${quote(file)}`],
    env: { MQ_HOME: home },
  }).output();
  if (!r.success) throw new Error(`publishing ${topic} failed`);
  return file;
}

// The floor: every segment file of the partition, read and written to stdout as it is.
const floorScript = `${tmp}/floor.ts`;
await Deno.writeTextFile(
  floorScript,
  `const dir = Deno.args[0];
const files = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".log")).sort();
const buf = new Uint8Array(1 << 20);
for (const name of files) {
  const f = await Deno.open(dir + "/" + name);
  for (let n; (n = await f.read(buf)) !== null;) {
    for (let w = 0; w < n;) w += await Deno.stdout.write(buf.subarray(w, n));
  }
  f.close();
}
`,
);

const home = `${tmp}/home`;
const env = { MQ_HOME: home };
const lines = await fill(home, "bench", N);
const segments = `${home}/log/bench/0`;
const rows: {
  case: string;
  mq: string;
  beside: string;
  ratio: string;
  target: string;
  pass: boolean;
}[] = [];

// sub -e, sub -e --grep, the floor, interleaved.
const sub: number[] = [], grep: number[] = [], floor: number[] = [], start: number[] = [];
for (let r = 0; r < runs; r++) {
  sub.push(await timed([...MQ, "sub", "bench", "-e"], env, `${tmp}/sub.out`));
  grep.push(await timed([...MQ, "sub", "bench", "-e", "--grep", "f.h"], env, `${tmp}/grep.out`));
  floor.push(
    await timed(
      [Deno.execPath(), "run", "--quiet", "--allow-read", floorScript, segments],
      {},
      `${tmp}/floor.out`,
    ),
  );
  start.push(await timed([...MQ, "sub", "bench", "-e", "--from", "end"], env));
}
const [subCpu, grepCpu, floorCpu, startCpu] = [0, 1, 2, 3].map((k) => cpuOf(k, 4));
cpu.length = 0;
const same = (await Deno.stat(`${tmp}/sub.out`)).size === (await Deno.stat(lines)).size &&
  (await Deno.stat(`${tmp}/grep.out`)).size === (await Deno.stat(lines)).size;
const subRate = N / median(sub), grepRate = N / median(grep);
rows.push({
  case: `mq sub -e, ${fmt(N)} messages of 23 bytes to stdout, fs${same ? "" : " (OUTPUT DIFFERS)"}`,
  mq: `${fmt(subRate)} msg/s (${median(sub).toFixed(3)} s; ${
    fmt(N / (median(sub) - median(start)))
  } msg/s beyond start-up)`,
  beside: `floor, a Deno read of the segment bytes to stdout: ${median(floor).toFixed(3)} s; ` +
    `mq start-up (sub --from end -e): ${median(start).toFixed(3)} s`,
  ratio:
    `${(median(sub) / median(floor)).toFixed(2)}x the floor's time; CPU ${subCpu.toFixed(2)} s ` +
    `(${fmt(N / subCpu)} msg/s of CPU) vs the floor's ${floorCpu.toFixed(2)} s and mq start-up's ` +
    `${startCpu.toFixed(2)} s`,
  target: ">= 3,000,000 msg/s",
  pass: subRate >= 3_000_000 && same,
});
rows.push({
  case: `mq sub -e --grep 'f.h' over the same ${fmt(N)} (all match)`,
  mq: `${fmt(grepRate)} msg/s (${median(grep).toFixed(3)} s)`,
  beside: `sub -e without a filter: ${median(sub).toFixed(3)} s`,
  ratio: `${(median(grep) / median(sub)).toFixed(2)}x the unfiltered time; CPU ${
    grepCpu.toFixed(2)
  } s (${fmt(N / grepCpu)} msg/s of CPU)`,
  target: ">= 1,500,000 msg/s",
  pass: grepRate >= 1_500_000 && same,
});

// --last 10 on a big topic, beside the same command reading nothing.
await fill(home, "big", BIG);
const last: number[] = [], end: number[] = [];
for (let r = 0; r < runs; r++) {
  last.push(await timed([...MQ, "sub", "big", "--last", "10", "-e"], env, `${tmp}/last.out`));
  end.push(await timed([...MQ, "sub", "big", "--from", "end", "-e"], env));
}
const [lastCpu, endCpu] = [0, 1].map((k) => cpuOf(k, 2));
const lastLines = (await Deno.readTextFile(`${tmp}/last.out`)).split("\n").length - 1;
const beyond = (median(last) - median(end)) * 1000;
rows.push({
  case: `mq sub --last 10 -e on a topic of ${fmt(BIG)} messages${
    lastLines === 10 ? "" : ` (PRINTED ${lastLines})`
  }`,
  mq: `${(median(last) * 1000).toFixed(1)} ms`,
  beside: `sub --from end -e (start-up, nothing read): ${(median(end) * 1000).toFixed(1)} ms`,
  ratio: `${beyond.toFixed(1)} ms beyond start-up (CPU: ${
    ((lastCpu - endCpu) * 1000).toFixed(0)
  } ms)`,
  target: "< 50 ms beyond start-up",
  pass: beyond < 50 && lastLines === 10,
});

await Deno.remove(tmp, { recursive: true });
console.log(`bench:read, ${runs} runs each, load average ${Deno.loadavg().join(", ")}`);
for (const r of rows) {
  console.log(`\n${r.pass ? "PASS" : "FAIL"}  ${r.case}\n  mq:     ${r.mq}\n  beside: ${r.beside}`);
  console.log(`  ratio:  ${r.ratio}\n  target: ${r.target}`);
}
if (rows.some((r) => !r.pass)) Deno.exitCode = 1;
