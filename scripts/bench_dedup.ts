/**
 * What deduplication by id costs on fs, side by side in one run (medians of
 * `--runs` runs, the cases alternating so that the machine's load falls on
 * each alike):
 *
 * - `mq pub --json-lines` of N messages of ~100 bytes with a unique `id`
 *   each, against the same lines without `id` (a whole process each, start-up
 *   included). Target (issue 10): with ids >= 0.5x without.
 * - the library, `publishBatch` in batches of 1,000, with ids against
 *   without, and with ids through the core's state-document reservation (the
 *   path fs took before it deduplicated natively: the adapter is wrapped so
 *   that it does not offer `appendDeduplicated`).
 *
 * Run: `deno task bench:dedup` (`--count N`, default 100000; `--runs R`, default 3).
 */
import { Mq } from "../core/client.ts";
import { FsAdapter } from "../adapters/fs/mod.ts";
import type { StorageAdapter } from "../core/adapter.ts";

function flag(name: string, fallback: number): number {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
}
const N = flag("--count", 100_000);
const RUNS = flag("--runs", 3);
const BATCH = 1000;
const root = new URL("..", import.meta.url).pathname;
const tmp = await Deno.makeTempDir({ prefix: "mq-bench-dedup-" });
const MQ = [
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
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** ~100-byte payloads, the same for every case. */
const payloads = Array.from({ length: N }, (_, i) => `order-${i}:`.padEnd(100, "x"));
const ids = payloads.map((_, i) => `bench-${crypto.randomUUID().slice(0, 8)}-${i}`);

async function writeLines(path: string, withIds: boolean): Promise<void> {
  const lines = payloads.map((p, i) =>
    JSON.stringify(withIds ? { id: ids[i], payload: p } : { payload: p })
  );
  await Deno.writeTextFile(path, lines.join("\n") + "\n");
}
const linesIds = `${tmp}/ids.jsonl`, linesPlain = `${tmp}/plain.jsonl`;
await writeLines(linesIds, true);
await writeLines(linesPlain, false);

/** `mq pub --json-lines` of a file into a fresh store; messages per second. */
async function cliRun(input: string, store: string): Promise<number> {
  const t = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: [...MQ, "pub", "t", "--json-lines", "-q", "--url", `file:${store}`],
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const feeding = (await Deno.open(input)).readable.pipeTo(child.stdin);
  const [out] = await Promise.all([child.output(), feeding]);
  const s = (performance.now() - t) / 1000;
  if (!out.success) throw new Error(`mq pub failed: ${new TextDecoder().decode(out.stderr)}`);
  return N / s;
}

/** The adapter without native dedup: the core reserves ids in state documents. */
function reserving(inner: StorageAdapter): StorageAdapter {
  return new Proxy(inner, {
    get(target, prop) {
      if (prop === "appendDeduplicated") return undefined;
      const v = Reflect.get(target, prop);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

/** `publishBatch` of everything in batches into a fresh store; messages per second. */
async function libRun(store: string, withIds: boolean, reserve = false): Promise<number> {
  const fs = await FsAdapter.open(store);
  const mq = new Mq(reserve ? reserving(fs) : fs);
  try {
    await mq.topics.create("t", {});
    const t = performance.now();
    let stored = 0;
    for (let i = 0; i < N; i += BATCH) {
      const batch = [];
      for (let j = i; j < Math.min(N, i + BATCH); j++) {
        batch.push(withIds ? { payload: payloads[j], id: ids[j] } : { payload: payloads[j] });
      }
      stored += (await mq.publishBatch("t", batch)).count;
    }
    const s = (performance.now() - t) / 1000;
    if (stored !== N) throw new Error(`stored ${stored} of ${N}`);
    return N / s;
  } finally {
    await mq.close();
  }
}

const results: Record<string, number[]> = {
  cliIds: [],
  cliPlain: [],
  libIds: [],
  libPlain: [],
  libReserve: [],
};
let k = 0;
const fresh = () => `${tmp}/store-${k++}`;
for (let r = 0; r < RUNS; r++) {
  // Alternate the order, so that neither case always runs on a warmer machine.
  const order = r % 2 === 0 ? [true, false] : [false, true];
  for (const withIds of order) {
    results[withIds ? "cliIds" : "cliPlain"].push(
      await cliRun(withIds ? linesIds : linesPlain, fresh()),
    );
  }
  for (const withIds of order) {
    results[withIds ? "libIds" : "libPlain"].push(await libRun(fresh(), withIds));
  }
  results.libReserve.push(await libRun(fresh(), true, true));
}
await Deno.remove(tmp, { recursive: true });

const m = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, median(v)]));
const load = Deno.loadavg().map((x) => x.toFixed(2)).join(" ");
const f = (x: number) => Math.round(x).toLocaleString("en-US");
const ratio = (a: number, b: number) => (a / b).toFixed(2);
console.log(
  `dedup on fs: ${
    N.toLocaleString("en-US")
  } messages of ~100 bytes, median of ${RUNS} (load ${load})`,
);
console.log(
  `  mq pub --json-lines, unique ids: ${f(m.cliIds)} msg/s; without ids: ${
    f(m.cliPlain)
  } msg/s; ratio ${ratio(m.cliIds, m.cliPlain)}x (target >= 0.5x)`,
);
console.log(
  `  library publishBatch x${BATCH}, unique ids: ${f(m.libIds)} msg/s; without ids: ${
    f(m.libPlain)
  } msg/s; ratio ${ratio(m.libIds, m.libPlain)}x`,
);
console.log(
  `  library, ids reserved in state documents (the old path): ${f(m.libReserve)} msg/s; ${
    ratio(m.libReserve, m.libPlain)
  }x without ids; native is ${ratio(m.libIds, m.libReserve)}x it`,
);
