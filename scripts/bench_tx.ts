/**
 * Transactions benchmark, side by side in one run, on fs:
 * - `mq work --out out -c 4 -e -- cat` over 100,000 messages vs `mq work -c 4
 *   -e -- cat` without `--out` (the floor: the same runs, acked without
 *   outputs): target >= 0.8x its rate;
 * - library: a transaction of 1,000 publishes (`mq.transaction`) vs the same
 *   1,000 published as one batch (`publishBatch`, the floor), interleaved:
 *   target >= 0.7x; and, for information, the same transaction that also acks
 *   the input it came from (a journal and a group document in the commit).
 *
 * Run: `deno task bench:tx` (`--quick`: 10,000 messages; `--messages N`,
 * `--runs N`; `--json` for JSON).
 */
import { connect } from "../mod.ts";

const argv = [...Deno.args];
const flag = (name: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const quick = argv.includes("--quick");
const messages = Number(flag("--messages") ?? (quick ? 10_000 : 100_000));
const runs = Number(flag("--runs") ?? (quick ? 3 : 1));
const root = new URL("..", import.meta.url).pathname;
const tmp = await Deno.makeTempDir({ prefix: "mq-bench-tx-" });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
// mq from its sources (cli/main.ts), as `deno task mq` runs it.
const mq = [
  Deno.execPath(),
  "run",
  "--quiet",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-run",
  "--allow-net",
  "--config",
  `${root}deno.json`,
  `${root}cli/main.ts`,
];

async function time(cmd: string[], env: Record<string, string>, stdinFile?: string) {
  const t = performance.now();
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env,
    stdin: stdinFile ? "piped" : "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  if (stdinFile) await (await Deno.open(stdinFile)).readable.pipeTo(child.stdin);
  const out = await child.output();
  if (!out.success) {
    throw new Error(`${cmd.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return (performance.now() - t) / 1000;
}

const rows: {
  case: string;
  value: string;
  floor: string;
  ratio: string;
  target: string;
  pass?: boolean;
}[] = [];
const rate = (n: number, s: number) => `${Math.round(n / s).toLocaleString("en")} msg/s`;

try {
  // 1. mq work --out vs mq work, both over the same messages, alternating.
  const lines = `${tmp}/lines.txt`;
  await Deno.writeTextFile(
    lines,
    Array.from({ length: messages }, (_, i) => `job ${i}\n`).join(""),
  );
  const withOut: number[] = [], without: number[] = [];
  for (let r = 0; r < runs; r++) {
    for (const out of [true, false]) {
      const home = `${tmp}/work-${r}-${out}`;
      await time([...mq, "pub", "jobs", "-q"], { MQ_HOME: home }, lines);
      const extra = out ? ["--out", "results"] : [];
      const s = await time(
        [...mq, "work", "jobs", ...extra, "-c", "4", "-e", "-q", "--", "cat"],
        { MQ_HOME: home },
      );
      (out ? withOut : without).push(s);
      await Deno.remove(home, { recursive: true });
    }
  }
  const workRatio = median(without) / median(withOut);
  rows.push({
    case: `mq work --out -c 4 -- cat, ${messages.toLocaleString("en")} messages, fs`,
    value: `${median(withOut).toFixed(1)} s (${rate(messages, median(withOut))})`,
    floor: `mq work -c 4 -- cat: ${median(without).toFixed(1)} s (${
      rate(messages, median(without))
    })`,
    ratio: `${workRatio.toFixed(2)}x`,
    target: ">= 0.8x",
    pass: workRatio >= 0.8,
  });

  // 2. A transaction of 1,000 publishes vs one batch of 1,000, interleaved.
  const client = await connect(`file:${tmp}/lib`);
  const payloads = Array.from({ length: 1000 }, (_, i) => `event ${i} ${"x".repeat(20)}`);
  const rounds = quick ? 30 : 100;
  const tx: number[] = [], batch: number[] = [], txAck: number[] = [];
  await client.publishBatch("inputs", Array.from({ length: rounds }, (_, i) => String(i)));
  const sub = client.subscribe("inputs", { group: "bench", follow: false });
  const inputs = (await sub.take(rounds))!;
  for (let r = 0; r < rounds; r++) {
    let t = performance.now();
    await client.transaction((x) => {
      for (const p of payloads) x.publish("tx", p);
    });
    tx.push(performance.now() - t);
    t = performance.now();
    await client.publishBatch("batch", payloads);
    batch.push(performance.now() - t);
    t = performance.now();
    await client.transaction((x) => {
      for (const p of payloads) x.publish("tx-ack", p);
      x.ack(inputs[r]);
    });
    txAck.push(performance.now() - t);
  }
  await sub.close();
  await client.close();
  const txRatio = median(batch) / median(tx);
  rows.push({
    case: "library: a transaction of 1,000 publishes, fs",
    value: `${median(tx).toFixed(2)} ms`,
    floor: `publishBatch of the same 1,000: ${median(batch).toFixed(2)} ms`,
    ratio: `${txRatio.toFixed(2)}x`,
    target: ">= 0.7x",
    pass: txRatio >= 0.7,
  });
  rows.push({
    case: "library: the same transaction also acking its input (journal + group state), fs",
    value: `${median(txAck).toFixed(2)} ms`,
    floor: `publishBatch of the same 1,000: ${median(batch).toFixed(2)} ms`,
    ratio: `${(median(batch) / median(txAck)).toFixed(2)}x`,
    target: "(information)",
  });
} finally {
  await Deno.remove(tmp, { recursive: true });
}

if (argv.includes("--json")) console.log(JSON.stringify(rows));
else {
  const load = Deno.loadavg().map((x) => x.toFixed(2)).join(" ");
  console.log(
    `mq transactions benchmark (${runs} run${runs === 1 ? "" : "s"} of the work case, medians), ${
      new Date().toISOString()
    }, load ${load}`,
  );
  for (const r of rows) {
    const verdict = r.pass === undefined ? "INFO" : r.pass ? "PASS" : "FAIL";
    console.log(`${verdict}  ${r.case}: ${r.value} | ${r.floor} | ${r.ratio} | target ${r.target}`);
  }
}
