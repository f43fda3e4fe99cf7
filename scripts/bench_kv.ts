/**
 * Deno KV backend benchmark, side by side in one run:
 * - `mq pub` of 100,000 stdin lines into `kv:` (the whole command, start-up
 *   included) vs the floor: a plain script writing the same records with
 *   batched `kv.atomic().set()` (500 per commit). Target: >= 70% of the floor.
 * - leased consumption with ack (`consume()`) vs Deno KV's own queue
 *   (`kv.enqueue` + `kv.listenQueue`) for the same messages. Target: >= 20x.
 *
 * Run: `deno task bench:kv` (`--quick` for fewer messages, `--json`).
 */
import { connect } from "../mod.ts";

const args = new Set(Deno.args);
const quick = args.has("--quick");
const runs = quick ? 1 : 3;
const N = 100_000;
const QUEUE_N = quick ? 1_000 : 5_000;
const root = new URL("..", import.meta.url).pathname;
const tmp = await Deno.makeTempDir({ prefix: "mq-bench-kv-" });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const lines = Array.from({ length: N }, (_, i) => `message-${String(i).padStart(8, "0")}-abcdef`);
const file = `${tmp}/lines.txt`;
await Deno.writeTextFile(file, lines.join("\n") + "\n");

async function mqPub(db: string): Promise<number> {
  const t = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--unstable-kv",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      `${root}cli/main.ts`,
      "pub",
      "b",
      "-q",
    ],
    env: { MQ_URL: `kv:${db}` },
    stdin: "piped",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  await (await Deno.open(file)).readable.pipeTo(child.stdin);
  if (!(await child.status).success) throw new Error("mq pub failed");
  return N / ((performance.now() - t) / 1000);
}

async function floorPub(db: string): Promise<number> {
  const t = performance.now();
  const kv = await Deno.openKv(db);
  const enc = new TextEncoder();
  for (let i = 0; i < N; i += 500) {
    const op = kv.atomic();
    for (let j = i; j < Math.min(i + 500, N); j++) op.set(["log", "b", 0, j], enc.encode(lines[j]));
    await op.commit();
  }
  kv.close();
  return N / ((performance.now() - t) / 1000);
}

async function denoQueue(db: string): Promise<number> {
  const kv = await Deno.openKv(db);
  for (let i = 0; i < QUEUE_N; i += 500) {
    const op = kv.atomic();
    for (let j = i; j < Math.min(i + 500, QUEUE_N); j++) op.enqueue(lines[j]);
    await op.commit();
  }
  let seen = 0;
  const t = performance.now();
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  kv.listenQueue(() => {
    if (++seen === QUEUE_N) done();
  });
  await finished;
  const rate = QUEUE_N / ((performance.now() - t) / 1000);
  kv.close();
  return rate;
}

async function mqConsume(db: string): Promise<number> {
  const mq = await connect(`kv:${db}`);
  await mq.publishBatch("q", lines.slice(0, QUEUE_N));
  const t = performance.now();
  const r = await mq.consume("q", { group: "g", follow: false, prefetch: 1024 }, () => {});
  const rate = r.acked / ((performance.now() - t) / 1000);
  await mq.close();
  if (r.acked !== QUEUE_N) throw new Error(`consumed ${r.acked} of ${QUEUE_N}`);
  return rate;
}

const pub: number[] = [], floor: number[] = [], cons: number[] = [], queue: number[] = [];
try {
  for (let r = 0; r < runs; r++) {
    pub.push(await mqPub(`${tmp}/pub${r}.sqlite`));
    floor.push(await floorPub(`${tmp}/floor${r}.sqlite`));
    cons.push(await mqConsume(`${tmp}/cons${r}.sqlite`));
    queue.push(await denoQueue(`${tmp}/queue${r}.sqlite`));
  }
} finally {
  await Deno.remove(tmp, { recursive: true });
}
const rows = [
  {
    case: `mq pub of ${N.toLocaleString("en")} stdin lines into kv: (whole command)`,
    value: Math.round(median(pub)),
    peer: `plain batched kv.atomic().set() script (floor)`,
    peerValue: Math.round(median(floor)),
    ratio: median(pub) / median(floor),
    target: ">= 0.70x of the floor",
    pass: median(pub) / median(floor) >= 0.7,
  },
  {
    case: `leased consumption with ack on kv: (consume()), ${
      QUEUE_N.toLocaleString("en")
    } messages`,
    value: Math.round(median(cons)),
    peer: "Deno KV kv.enqueue + kv.listenQueue",
    peerValue: Math.round(median(queue)),
    ratio: median(cons) / median(queue),
    target: ">= 20x the built-in queue",
    pass: median(cons) / median(queue) >= 20,
  },
];
if (args.has("--json")) console.log(JSON.stringify(rows));
else {
  console.log(
    `mq kv benchmark (${runs} run${runs === 1 ? "" : "s"}, medians, msg/s), ${
      new Date().toISOString()
    }`,
  );
  for (const r of rows) {
    console.log(
      `${r.pass ? "PASS" : "FAIL"}  ${r.case}: ${r.value.toLocaleString("en")}/s | ${r.peer}: ${
        r.peerValue.toLocaleString("en")
      }/s | ${r.ratio.toFixed(2)}x | target ${r.target}`,
    );
  }
}
