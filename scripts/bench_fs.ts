/**
 * The fs backend's benchmark, side by side in one run (medians of N runs;
 * every figure a whole process, start-up included, unless it says library):
 * - `mq pub` of 1,000,000 stdin lines of 23 bytes (default sync) vs the floor
 *   (`cat` of the file into a file on the same disk, plus `sync`) and the peer
 *   `mosquitto_pub -l` into a private Mosquitto. Targets: >= 1,000,000 msg/s
 *   and >= 5x mosquitto_pub.
 * - `mq sub -e` of those to stdout vs `cat` of the file. Target >= 1,000,000 msg/s.
 * - library group consumption with ack. Target >= 200,000 msg/s.
 * - peak RSS of `mq pub` fed an endless stream (10 s) and of `mq sub -e` over
 *   a ~2 GB topic. Target < 150 MB each.
 * - cost per message of reading 1,000 messages at the end of topics of
 *   10^4 .. 10^7 messages (10^7 only without --quick): flat means seeking does
 *   not scan from the start.
 *
 * Run: `deno task bench` (`--quick` skips the 10^7 topic and the 2 GB read).
 */
import { connect } from "../mod.ts";
import { startMosquitto } from "./brokers.ts";

const args = new Set(Deno.args);
const quick = args.has("--quick");
const runs = quick ? 1 : 3;
const root = new URL("..", import.meta.url).pathname;
const tmp = await Deno.makeTempDir({ prefix: "mq-bench-fs-" });
const MQ = [
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
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const N = 1_000_000;

/** Runs a command with stdin from a file and stdout to a file or /dev/null; seconds and peak RSS (KB). */
async function run(
  cmd: string[],
  opts: { env?: Record<string, string>; stdin?: string; stdout?: string } = {},
) {
  const wrapped = ["/usr/bin/time", "-f", "%M", "-o", `${tmp}/rss`, ...cmd];
  const t = performance.now();
  const child = new Deno.Command(wrapped[0], {
    args: wrapped.slice(1),
    env: opts.env,
    stdin: opts.stdin ? "piped" : "null",
    stdout: opts.stdout ? "piped" : "null",
    stderr: "piped",
  }).spawn();
  const feeding = opts.stdin
    ? (await Deno.open(opts.stdin)).readable.pipeTo(child.stdin)
    : Promise.resolve();
  const draining = opts.stdout
    ? child.stdout.pipeTo(
      (await Deno.open(opts.stdout, { write: true, create: true, truncate: true })).writable,
    )
    : Promise.resolve();
  const [status] = await Promise.all([child.status, feeding, draining]);
  const seconds = (performance.now() - t) / 1000;
  const err = new TextDecoder().decode(
    (await child.stderr.getReader().read()).value ?? new Uint8Array(),
  );
  if (!status.success) throw new Error(`${cmd.join(" ")} failed: ${err}`);
  return {
    seconds,
    rssKb: Number((await Deno.readTextFile(`${tmp}/rss`)).trim().split("\n").pop()),
  };
}

const rows: {
  case: string;
  ours: string;
  floor: string;
  peer: string;
  ratio: string;
  target: string;
  pass: boolean;
}[] = [];
const rate = (n: number, s: number) => Math.round(n / s);
const fmt = (n: number) => n.toLocaleString("en");

try {
  // The input: 1,000,000 lines of 23 bytes.
  const lines = `${tmp}/lines.txt`;
  {
    const f = await Deno.open(lines, { write: true, create: true });
    const enc = new TextEncoder();
    for (let i = 0; i < N; i += 100_000) {
      let chunk = "";
      for (let j = i; j < i + 100_000; j++) {
        chunk += `msg-${String(j).padStart(8, "0")}-payload\n`.slice(-24);
      }
      await f.write(enc.encode(chunk));
    }
    f.close();
  }
  const mosquitto = await startMosquitto().catch((
    e,
  ) => (console.log(`(no peer: ${e.message})`), undefined));

  // pub
  const pub: number[] = [], floorPub: number[] = [], peerPub: number[] = [];
  let pubRss = 0;
  for (let r = 0; r < runs; r++) {
    const home = `${tmp}/pub${r}`;
    const p = await run([...MQ, "pub", "bench", "-q"], { env: { MQ_HOME: home }, stdin: lines });
    pub.push(p.seconds);
    pubRss = Math.max(pubRss, p.rssKb);
    floorPub.push(
      (await run(["sh", "-c", `cat > ${tmp}/floor${r}.out && sync ${tmp}/floor${r}.out`], {
        stdin: lines,
      })).seconds,
    );
    if (mosquitto) {
      peerPub.push(
        (await run([
          "mosquitto_pub",
          "-h",
          "127.0.0.1",
          "-p",
          String(mosquitto.port),
          "-t",
          "bench",
          "-q",
          "0",
          "-l",
        ], { stdin: lines })).seconds,
      );
    }
    if (r > 0) await Deno.remove(home, { recursive: true });
  }
  await mosquitto?.stop();
  const pubRate = rate(N, median(pub));
  rows.push({
    case: `mq pub, ${fmt(N)} stdin lines of 23 bytes, fs (default sync)`,
    ours: `${fmt(pubRate)} msg/s (${median(pub).toFixed(2)} s)`,
    floor: `cat > file && sync: ${median(floorPub).toFixed(2)} s`,
    peer: mosquitto
      ? `mosquitto_pub -l: ${fmt(rate(N, median(peerPub)))} msg/s (${median(peerPub).toFixed(2)} s)`
      : "n/a",
    ratio: mosquitto ? `${(median(peerPub) / median(pub)).toFixed(1)}x mosquitto_pub` : "-",
    target: ">= 1,000,000 msg/s and >= 5x mosquitto_pub",
    pass: pubRate >= 1_000_000 && (!mosquitto || median(peerPub) / median(pub) >= 5),
  });

  // sub -e
  const sub: number[] = [], floorSub: number[] = [];
  for (let r = 0; r < runs; r++) {
    sub.push(
      (await run([...MQ, "sub", "bench", "-e"], {
        env: { MQ_HOME: `${tmp}/pub0` },
        stdout: `${tmp}/sub.out`,
      })).seconds,
    );
    floorSub.push((await run(["cat", lines], { stdout: `${tmp}/cat.out` })).seconds);
  }
  const same = (await Deno.readFile(`${tmp}/sub.out`)).length === (await Deno.stat(lines)).size;
  const subRate = rate(N, median(sub));
  rows.push({
    case: `mq sub -e, ${fmt(N)} messages to stdout${
      same ? " (byte count checked)" : " (OUTPUT DIFFERS)"
    }`,
    ours: `${fmt(subRate)} msg/s (${median(sub).toFixed(2)} s)`,
    floor: `cat file: ${median(floorSub).toFixed(2)} s`,
    peer: "-",
    ratio: `${(median(sub) / median(floorSub)).toFixed(1)}x the floor's time`,
    target: ">= 1,000,000 msg/s",
    pass: subRate >= 1_000_000 && same,
  });

  // library group consumption with ack
  const lib: number[] = [];
  const client = await connect(`file:${tmp}/pub0`);
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    let n = 0;
    const s = client.subscribe("bench", { group: `g${r}`, follow: false, batchSize: 4096 });
    for await (const b of s.batches()) {
      n += b.length;
      s.ackAll(b);
    }
    lib.push(n / ((performance.now() - t) / 1000));
  }
  await client.close();
  rows.push({
    case: `library: group consumption with ack, fs, ${fmt(N)} messages`,
    ours: `${fmt(Math.round(median(lib)))} msg/s`,
    floor: "-",
    peer: "-",
    ratio: "-",
    target: ">= 200,000 msg/s",
    pass: median(lib) >= 200_000,
  });

  // memory: an endless stdin stream for 10 s
  {
    const home = `${tmp}/endless`;
    const r = await run([
      "sh",
      "-c",
      `yes 'an endless stream line 23' | timeout -s INT 10 ${
        MQ.map((a) => `'${a}'`).join(" ")
      } pub endless -q; true`,
    ], {
      env: { MQ_HOME: home },
    });
    const count = (await (await connect(`file:${home}`)).topics.list())[0]?.messages ?? 0;
    rows.push({
      case: `peak RSS, mq pub of an endless stdin stream for 10 s (${fmt(count)} messages)`,
      ours: `${Math.round(r.rssKb / 1024)} MB`,
      floor: "-",
      peer: "-",
      ratio: "-",
      target: "< 150 MB",
      pass: r.rssKb < 150 * 1024,
    });
    await Deno.remove(home, { recursive: true });
  }

  // memory: reading a ~2 GB topic
  if (!quick) {
    const home = `${tmp}/big`;
    const big = `${tmp}/big.txt`;
    const line = "x".repeat(1023) + "\n";
    const f = await Deno.open(big, { write: true, create: true });
    const block = new TextEncoder().encode(line.repeat(1024));
    for (let i = 0; i < 2048; i++) await f.write(block);
    f.close();
    await run([...MQ, "pub", "big", "-q"], { env: { MQ_HOME: home }, stdin: big });
    await Deno.remove(big);
    const r = await run([...MQ, "sub", "big", "-e"], { env: { MQ_HOME: home } });
    rows.push({
      case: `peak RSS, mq sub -e of a 2 GiB topic (2,097,152 messages of 1 KiB) in ${
        r.seconds.toFixed(1)
      } s`,
      ours: `${Math.round(r.rssKb / 1024)} MB`,
      floor: "-",
      peer: "-",
      ratio: "-",
      target: "< 150 MB",
      pass: r.rssKb < 150 * 1024,
    });
    await Deno.remove(home, { recursive: true });
  }
  rows.push({
    case: "peak RSS, mq pub of the 1,000,000 lines above",
    ours: `${Math.round(pubRss / 1024)} MB`,
    floor: "-",
    peer: "-",
    ratio: "-",
    target: "< 150 MB",
    pass: pubRss < 150 * 1024,
  });

  // flatness: the cost per message of reading 1,000 at the end, and of a seek, by topic size
  const sizes = quick ? [1e4, 1e5, 1e6] : [1e4, 1e5, 1e6, 1e7];
  const per: string[] = [];
  let worst = 0, best = Infinity;
  const mq = await connect(`file:${tmp}/flat`);
  const payloads = Array.from({ length: 10_000 }, (_, i) => `flat-${String(i).padStart(17, "0")}`);
  let have = 0;
  for (const size of sizes) {
    while (have < size) {
      await mq.publishBatch("flat", payloads);
      have += payloads.length;
    }
    const t = performance.now();
    let n = 0;
    for (let k = 0; k < 20; k++) {
      const s = mq.subscribe("flat", {
        from: size - 1000 - k * 7,
        count: 1000,
        follow: false,
        batchSize: 1000,
      });
      for await (const b of s.batches()) n += b.length;
    }
    const us = ((performance.now() - t) * 1000) / n;
    worst = Math.max(worst, us);
    best = Math.min(best, us);
    per.push(`10^${Math.log10(size)}: ${us.toFixed(2)} us`);
  }
  await mq.close();
  rows.push({
    case: `cost per message, 20 reads of 1,000 at the end of a topic of 10^4..10^${
      Math.log10(sizes.at(-1)!)
    } messages`,
    ours: per.join(", "),
    floor: "-",
    peer: "-",
    ratio: `${(worst / best).toFixed(1)}x largest/smallest`,
    target: "flat (within 3x)",
    pass: worst / best <= 3,
  });
} finally {
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
}

if (args.has("--json")) console.log(JSON.stringify(rows));
else {
  console.log(
    `mq fs benchmark (${runs} run${runs === 1 ? "" : "s"}, medians), ${new Date().toISOString()}`,
  );
  for (const r of rows) {
    console.log(
      `${
        r.pass ? "PASS" : "FAIL"
      }  ${r.case}: ${r.ours} | ${r.floor} | ${r.peer} | ${r.ratio} | target ${r.target}`,
    );
  }
}
