/**
 * Work-queue benchmark, side by side in one run:
 * - `mq work -c 2 -e -- true` over 2,000 messages vs `xargs -P 2 -n 1 true`
 *   over the same 2,000 lines (process spawning is the floor): target <= 1.3x;
 * - library leased consumption with ack on fs (`consume()` and batches) vs a
 *   plain read of the same topic (the floor): target >= 100,000 msg/s.
 *
 * Run: `deno task bench:work` (`--quick` for fewer runs, `--json` for JSON).
 */
import { connect } from "../mod.ts";

const args = new Set(Deno.args);
const quick = args.has("--quick");
const runs = quick ? 1 : 3;
const root = new URL("..", import.meta.url).pathname;
const tmp = await Deno.makeTempDir({ prefix: "mq-bench-work-" });

async function time(
  cmd: string[],
  env: Record<string, string>,
  stdinFile?: string,
): Promise<number> {
  const t = performance.now();
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env,
    stdin: stdinFile ? "piped" : "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  if (stdinFile) {
    const f = await Deno.open(stdinFile);
    await f.readable.pipeTo(child.stdin);
  }
  const out = await child.output();
  if (!out.success) {
    throw new Error(`${cmd.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return (performance.now() - t) / 1000;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mq = [
  Deno.execPath(),
  "run",
  "--quiet",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-run",
  "--config",
  `${root}deno.json`,
  `${root}cli/main.ts`,
];
const rows: {
  case: string;
  value: string;
  peer: string;
  ratio: string;
  target: string;
  pass: boolean;
}[] = [];

try {
  // 1. work vs xargs
  const lines = `${tmp}/2000.txt`;
  await Deno.writeTextFile(lines, Array.from({ length: 2000 }, (_, i) => `${i + 1}\n`).join(""));
  const ours: number[] = [], peer: number[] = [];
  for (let r = 0; r < runs; r++) {
    const home = `${tmp}/work-${r}`;
    await time([...mq, "pub", "jobs", "-q"], { MQ_HOME: home }, lines);
    ours.push(
      await time([...mq, "work", "jobs", "-c", "2", "-e", "-q", "--", "true"], { MQ_HOME: home }),
    );
    peer.push(await time(["xargs", "-P", "2", "-n", "1", "true"], {}, lines));
  }
  const ratio = median(ours) / median(peer);
  rows.push({
    case: "mq work -c 2 -- true, 2,000 messages",
    value: `${median(ours).toFixed(2)} s`,
    peer: `xargs -P 2 -n 1 true: ${median(peer).toFixed(2)} s`,
    ratio: `${ratio.toFixed(2)}x`,
    target: "<= 1.3x",
    pass: ratio <= 1.3,
  });

  // 2. leased consumption with ack, library level, fs
  const n = quick ? 200_000 : 1_000_000;
  const client = await connect(`file:${tmp}/lib`);
  const payloads = Array.from(
    { length: 10_000 },
    (_, i) => `payload-${String(i).padStart(12, "0")}`,
  );
  for (let i = 0; i < n; i += payloads.length) await client.publishBatch("lib", payloads);
  const floor: number[] = [], viaBatches: number[] = [], viaConsume: number[] = [];
  for (let r = 0; r < runs; r++) {
    let t = performance.now();
    let seen = 0;
    for await (const b of client.subscribe("lib", { follow: false, batchSize: 4096 }).batches()) {
      seen += b.length;
    }
    floor.push(seen / ((performance.now() - t) / 1000));
    t = performance.now();
    seen = 0;
    for await (
      const b of client.subscribe("lib", { group: `b${r}`, follow: false, batchSize: 4096 })
        .batches()
    ) {
      for (const m of b) m.ack();
      seen += b.length;
    }
    viaBatches.push(seen / ((performance.now() - t) / 1000));
    t = performance.now();
    const res = await client.consume(
      "lib",
      { group: `c${r}`, follow: false, prefetch: 4096 },
      () => {},
    );
    viaConsume.push(res.acked / ((performance.now() - t) / 1000));
  }
  await client.close();
  for (const [label, xs] of [["batches + ack", viaBatches], ["consume()", viaConsume]] as const) {
    rows.push({
      case: `leased consumption with ack, fs, ${label}, ${n.toLocaleString("en")} messages`,
      value: `${Math.round(median(xs)).toLocaleString("en")} msg/s`,
      peer: `plain read (floor): ${Math.round(median(floor)).toLocaleString("en")} msg/s`,
      ratio: `${(median(xs) / median(floor)).toFixed(2)}x of floor`,
      target: ">= 100,000 msg/s",
      pass: median(xs) >= 100_000,
    });
  }
} finally {
  await Deno.remove(tmp, { recursive: true });
}

if (args.has("--json")) console.log(JSON.stringify(rows));
else {
  console.log(
    `mq work-queue benchmark (${runs} run${runs === 1 ? "" : "s"}, medians), ${
      new Date().toISOString()
    }`,
  );
  for (const r of rows) {
    console.log(
      `${
        r.pass ? "PASS" : "FAIL"
      }  ${r.case}: ${r.value} | ${r.peer} | ${r.ratio} | target ${r.target}`,
    );
  }
}
