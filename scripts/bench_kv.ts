/**
 * Deno KV backend benchmark, side by side in one run (medians of N runs, each
 * on fresh SQLite files in one temporary folder):
 *
 * 1. Publish: `mq pub` of 100,000 stdin lines into `kv:` (the whole command,
 *    Deno's start-up included) vs the floor it sits on: a plain script
 *    writing the same records with batched `kv.atomic().set()` (500 sets a
 *    commit, one key per record, in-process). Target: >= 70% of the floor.
 * 2. Consume: leased consumption with ack (`mq.consume()` with a group) vs
 *    Deno KV's own queue (`kv.enqueue` + `kv.listenQueue`) for the same
 *    messages. Target: >= 20x the built-in queue.
 *
 * Run: `deno task bench:kv` (`--quick`: one run and fewer queue messages;
 * `--json`: the rows as JSON).
 */
import { connect } from "../mod.ts";
import { adapterOf } from "../core/internal.ts";

const args = new Set(Deno.args);
const quick = args.has("--quick");
const runs = quick ? 1 : 3;
const N = 100_000;
const QUEUE_N = quick ? 2_000 : 10_000;
const FLOOR_BATCH = 500;
const root = new URL("..", import.meta.url).pathname;
const tmp = await Deno.makeTempDir({ prefix: "mq-bench-kv-" });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const lines = Array.from({ length: N }, (_, i) => `message-${String(i).padStart(8, "0")}-abcdef`);
const file = `${tmp}/lines.txt`;
await Deno.writeTextFile(file, lines.join("\n") + "\n");
const enc = new TextEncoder();
const fmt = (n: number) => Math.round(n).toLocaleString("en");

/** The `mq` command as `deno task mq` runs it. */
const MQ = [
  Deno.execPath(),
  "run",
  "--quiet",
  "--config",
  `${root}deno.json`,
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-net",
  "--allow-run",
  `${root}cli/main.ts`,
];

/** `mq pub b -q < lines.txt` with MQ_URL=kv:<db>; messages/s of the whole command. */
async function mqPub(db: string): Promise<number> {
  const t = performance.now();
  const child = new Deno.Command(MQ[0], {
    args: [...MQ.slice(1), "pub", "b", "-q"],
    env: { MQ_URL: `kv:${db}` },
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  await (await Deno.open(file)).readable.pipeTo(child.stdin);
  const out = await child.output();
  const rate = N / ((performance.now() - t) / 1000);
  if (!out.success) throw new Error(`mq pub failed: ${new TextDecoder().decode(out.stderr)}`);
  // Check that it is all there.
  const mq = await connect(`kv:${db}`);
  const bounds = await adapterOf(mq).bounds("b", 0);
  await mq.close();
  if (bounds.end !== N) throw new Error(`mq pub stored ${bounds.end} of ${N}`);
  return rate;
}

/** The same records, 500 `set`s a commit, one key per record. */
async function floorPub(db: string): Promise<number> {
  const t = performance.now();
  const kv = await Deno.openKv(db);
  for (let i = 0; i < N; i += FLOOR_BATCH) {
    const op = kv.atomic();
    for (let j = i; j < Math.min(i + FLOOR_BATCH, N); j++) {
      op.set(["log", "b", 0, j], enc.encode(lines[j]));
    }
    await op.commit();
  }
  kv.close();
  return N / ((performance.now() - t) / 1000);
}

/** Deliveries/s of `kv.listenQueue` for QUEUE_N messages enqueued beforehand. */
async function denoQueue(db: string): Promise<number> {
  const kv = await Deno.openKv(db);
  for (let i = 0; i < QUEUE_N; i += FLOOR_BATCH) {
    const op = kv.atomic();
    for (let j = i; j < Math.min(i + FLOOR_BATCH, QUEUE_N); j++) op.enqueue(lines[j]);
    await op.commit();
  }
  let seen = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const t = performance.now();
  const listening = kv.listenQueue(() => {
    if (++seen === QUEUE_N) done();
  });
  await finished;
  const rate = QUEUE_N / ((performance.now() - t) / 1000);
  kv.close();
  await listening.catch(() => {});
  return rate;
}

/** Acked messages/s of `mq.consume()` in a group over the same QUEUE_N messages. */
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
    case: `publish ${fmt(N)} stdin lines of ${lines[0].length} bytes`,
    mq: `mq pub b -q < lines.txt, MQ_URL=kv:<file> (whole command, start-up included)`,
    value: median(pub),
    peer:
      `plain script: kv.atomic().set() x ${FLOOR_BATCH} a commit, one key per record (in-process)`,
    peerValue: median(floor),
    ratio: median(pub) / median(floor),
    target: 0.7,
  },
  {
    case: `leased consumption with ack, ${fmt(QUEUE_N)} messages`,
    mq: `mq.consume(topic, { group, prefetch: 1024 }) on kv:<file> (library)`,
    value: median(cons),
    peer: `Deno KV queue: kv.enqueue (${FLOOR_BATCH} a commit) then kv.listenQueue`,
    peerValue: median(queue),
    ratio: median(cons) / median(queue),
    target: 20,
  },
];

if (args.has("--json")) {
  console.log(JSON.stringify(rows.map((r) => ({
    ...r,
    value: Math.round(r.value),
    peerValue: Math.round(r.peerValue),
    pass: r.ratio >= r.target,
  }))));
} else {
  console.log(
    `mq kv benchmark: Deno ${Deno.version.deno}, ${runs} run${
      runs === 1 ? "" : "s"
    }, medians in messages/s, ${new Date().toISOString()}`,
  );
  rows.forEach((r, i) => {
    console.log(`\n${i + 1}. ${r.case}`);
    console.log(`   mq:    ${r.mq}`);
    console.log(`          ${fmt(r.value)}/s`);
    console.log(`   peer:  ${r.peer}`);
    console.log(`          ${fmt(r.peerValue)}/s`);
    console.log(
      `   ratio: ${r.ratio.toFixed(2)}x (target >= ${r.target}x): ${
        r.ratio >= r.target ? "PASS" : "FAIL"
      }`,
    );
  });
}
