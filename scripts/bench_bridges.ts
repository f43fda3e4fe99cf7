/**
 * Bridge benchmark, side by side in one run, on a private redis-server and
 * mosquitto (N messages of ~100 bytes, default 1,000,000):
 *
 * - `mq bridge --to redis://... -e` vs the floor: the same npm client
 *   (`@redis/client`) XADDing the same messages from a plain Deno script
 *   with the same batching (target >= 0.7x), and `redis-cli --pipe` of the
 *   same commands (target >= 0.5x);
 * - `mq bridge --from redis://... -e` vs the same client reading the same
 *   entries by a consumer group (XREADGROUP, XACK) (target >= 0.7x);
 * - `mq bridge --to mqtt://... -e` vs mqtt.js publishing at QoS 1 with a
 *   window of 1024 (target >= 0.7x), each to a topic two persistent sessions
 *   take (the broker queues every message twice for either side);
 * - `mq bridge --from mqtt://... -e` vs mqtt.js taking the same queued
 *   messages of a persistent session (target >= 0.7x).
 *
 * Every figure is a whole process, start-up included (mq and the peers);
 * ratios are what to read, the machine being shared. The peak RSS of each
 * mq process is reported too (the contract: under 150 MB).
 *
 * Run: `deno task bench:bridges` (`-n 200000` for fewer, `--only redis` or
 * `--only mqtt` for one broker's cases, `--json`); it needs `--allow-all` to
 * read the peak RSS of each process in /proc. The load average at the start
 * and the end of the run is printed with the table.
 *
 * @module
 */
import { findBinary, startMosquitto, startRedis } from "./brokers.ts";
import { connect } from "../mod.ts";

const argv = [...Deno.args];
const nAt = argv.indexOf("-n");
const N = nAt >= 0 ? Number(argv[nAt + 1]) : 1_000_000;
const json = argv.includes("--json");
const onlyAt = argv.indexOf("--only");
const only = onlyAt >= 0 ? argv[onlyAt + 1] : undefined;
if (only !== undefined && only !== "redis" && only !== "mqtt") {
  console.error(`bench_bridges: --only takes redis or mqtt, not ${JSON.stringify(only)}`);
  Deno.exit(2);
}
const loadavg = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
const loadAtStart = loadavg();
const root = new URL("..", import.meta.url).pathname;
const tmp = await Deno.makeTempDir({ prefix: "mq-bench-bridges-" });
const enc = new TextEncoder();
const payloadOf = (i: number) => `message-${String(i).padStart(8, "0")}-`.padEnd(100, "x");

/** Runs a command; resolves to its wall time (s) and peak RSS (MB, sampled). */
async function timed(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
  stdinFile?: string,
): Promise<{ seconds: number; rssMb: number; stdout: string }> {
  const t = performance.now();
  const child = new Deno.Command(cmd, {
    args,
    env,
    stdin: stdinFile ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let peak = 0;
  const sample = setInterval(() => {
    try {
      const status = Deno.readTextFileSync(`/proc/${child.pid}/status`);
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      peak = Math.max(peak, kb);
    } catch { /* gone */ }
  }, 50);
  if (stdinFile) await (await Deno.open(stdinFile)).readable.pipeTo(child.stdin);
  const out = await child.output();
  clearInterval(sample);
  if (out.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return {
    seconds: (performance.now() - t) / 1000,
    rssMb: Math.round(peak / 1024),
    stdout: new TextDecoder().decode(out.stdout),
  };
}

/** mq as `deno task mq` runs it (its flags, V8's included), with absolute paths. */
const MQ = (JSON.parse(Deno.readTextFileSync(`${root}deno.json`)).tasks.mq as string).trim()
  .split(/\s+/).slice(1).map((w) => /^[\w.][\w./-]*\.(ts|json)$/.test(w) ? `${root}${w}` : w);
const PEER = [
  "run",
  "--quiet",
  "-A",
  "--config",
  `${root}deno.json`,
  `${root}scripts/_bridge_peers.ts`,
];
const deno = Deno.execPath();

// The local messages, once, in a file: store the bridges read (and a copy per bridge).
const home = `${tmp}/home`;
{
  const mq = await connect(`file:${home}`);
  for (let i = 0; i < N; i += 10_000) {
    await mq.publishBatch(
      "bench",
      Array.from({ length: Math.min(10_000, N - i) }, (_, j) => payloadOf(i + j)),
    );
  }
  await mq.close();
}
const env = (group: string) => ({ MQ_HOME: home, MQ_URL: `file:${home}`, NO_COLOR: "1", G: group });

interface Row {
  what: string;
  mq: number;
  peer: string;
  peerRate: number;
  ratio: number;
  target: number;
  rssMb: number;
}
const rows: Row[] = [];
const rate = (s: number) => Math.round(N / s);
function row(
  what: string,
  mq: { seconds: number; rssMb: number },
  peer: string,
  peerSeconds: number,
  target: number,
) {
  rows.push({
    what,
    mq: rate(mq.seconds),
    peer,
    peerRate: rate(peerSeconds),
    ratio: Math.round((peerSeconds / mq.seconds) * 100) / 100,
    target,
    rssMb: mq.rssMb,
  });
}

// Redis.
const redis = only === "mqtt" ? undefined : await startRedis({ args: ["--appendonly", "no"] });
if (redis) {
  try {
    const url = redis.url;
    const out = await timed(
      deno,
      [...MQ, "bridge", "--to", url, "-e", "-q", "-g", "to-redis"],
      env("r"),
    );
    const peerOut = await timed(deno, [...PEER, "redis-out", url, String(N)]);
    // redis-cli --pipe of the same commands mq sends.
    const pipeFile = `${tmp}/pipe.resp`;
    {
      const f = await Deno.open(pipeFile, { write: true, create: true });
      const w = f.writable.getWriter();
      for (let i = 0; i < N; i += 10_000) {
        let chunk = "";
        for (let j = i; j < Math.min(N, i + 10_000); j++) {
          const id = `pipe:0-${j}`;
          chunk += `*7\r\n$4\r\nXADD\r\n$4\r\npipe\r\n$1\r\n*\r\n$7\r\npayload\r\n$100\r\n${
            payloadOf(j)
          }\r\n$5\r\nmq-id\r\n$${id.length}\r\n${id}\r\n`;
        }
        await w.write(enc.encode(chunk));
      }
      await w.close();
    }
    const pipe = await timed(
      findBinary("redis-cli")!,
      ["-p", String(redis.port), "--pipe"],
      {},
      pipeFile,
    );
    row("redis --to", out, "@redis/client", peerOut.seconds, 0.7);
    row("redis --to", out, "redis-cli --pipe", pipe.seconds, 0.5);
    // In: the stream mq wrote, read by mq into a topic and by the peer with a group of its own.
    const inn = await timed(deno, [
      ...MQ,
      "bridge",
      "--from",
      url,
      "--subjects",
      "bench",
      "--into",
      "from-redis",
      "-g",
      "mq-in",
      "-e",
      "-q",
    ], env("r"));
    const peerIn = await timed(deno, [...PEER, "redis-in", url, "bench", "peer-in", String(N)]);
    row("redis --from", inn, "@redis/client", peerIn.seconds, 0.7);
  } finally {
    await redis.stop();
  }
}

// MQTT.
const mosquitto = only === "redis" ? undefined : await startMosquitto({
  config: "max_queued_messages 0\nmax_inflight_messages 0\nmax_queued_bytes 0",
});
if (mosquitto) {
  try {
    const url = mosquitto.url;
    // Two persistent sessions subscribed to what mq's bridge publishes: one for mq's
    // --from, one for the peer's, so both take the same N queued messages.
    const session = (id: string, topic = "bench") =>
      timed(findBinary("mosquitto_sub")!, [
        "-p",
        String(mosquitto.port),
        "-V",
        "mqttv5",
        "-c",
        "-i",
        id,
        "-q",
        "1",
        "-t",
        topic,
        "-x",
        "3600",
        "-E",
      ]);
    await timed(deno, [
      ...MQ,
      "bridge",
      "--from",
      `${url}?idle=100ms`,
      "--subjects",
      "bench",
      "--into",
      "x",
      "-g",
      "mqin",
      "-e",
      "-q",
    ], env("m"));
    await session("peer-in");
    // The peer publishes to "peer": two persistent sessions take it too, so that the
    // broker queues each of its messages twice, as it does mq's (a topic nobody takes is
    // cheaper for the broker, which would flatter the peer).
    await session("peer-extra-1", "peer");
    await session("peer-extra-2", "peer");
    const out = await timed(
      deno,
      [...MQ, "bridge", "--to", url, "-e", "-q", "-g", "to-mqtt"],
      env("m"),
    );
    const peerOut = await timed(deno, [...PEER, "mqtt-out", url, String(N)]);
    row("mqtt --to", out, "mqtt.js", peerOut.seconds, 0.7);
    const inn = await timed(deno, [
      ...MQ,
      "bridge",
      "--from",
      `${url}?idle=500ms`,
      "--subjects",
      "bench",
      "--into",
      "from-mqtt",
      "-g",
      "mqin",
      "-e",
      "-q",
    ], env("m"));
    const peerIn = await timed(deno, [...PEER, "mqtt-in", url, "peer-in", String(N)]);
    row("mqtt --from", inn, "mqtt.js", peerIn.seconds, 0.7);
  } finally {
    await mosquitto.stop();
  }
}
await Deno.remove(tmp, { recursive: true }).catch(() => {});

const loadAtEnd = loadavg();
if (json) console.log(JSON.stringify({ n: N, rows, loadAtStart, loadAtEnd }));
else {
  console.log(`bridges, ${N} messages of ~100 bytes, whole processes (start-up included)`);
  console.log(`load average at the start ${loadAtStart}, at the end ${loadAtEnd}`);
  console.log("| bridge | mq msg/s | peer | peer msg/s | ratio | target | mq peak RSS |");
  console.log("| --- | --- | --- | --- | --- | --- | --- |");
  for (const r of rows) {
    console.log(
      `| ${r.what} | ${r.mq} | ${r.peer} | ${r.peerRate} | ${r.ratio}x | >= ${r.target}x | ${r.rssMb} MB |`,
    );
  }
}
