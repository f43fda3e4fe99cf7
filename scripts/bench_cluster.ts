/**
 * NATS cluster benchmark, side by side in one run, on a private three-node
 * cluster (loopback), every stream R3:
 * - `mq pub` of 200,000 stdin lines (topic created with `--replicas 3`) vs a
 *   plain nats.js publisher with the same ack window (2,048 in flight, in
 *   halves). Goal: >= 0.8x.
 * - group consumption of those 200,000 messages, with 1 and with 4
 *   processes: `mq sub --group g -e` (acks per batch) vs a native JetStream
 *   pull consumer (durable, explicit ack) acking each message. Goal: >= 1.0x.
 * Every figure is whole processes, start-up included, mq and the peer alike.
 *
 * Run: `deno task bench:cluster` (one run; `--runs=3` for medians of three, `--json`).
 * On the shared 2-core test machine one run takes about 7 minutes.
 *
 * @module
 */
import { startNatsCluster } from "./nats_cluster.ts";

const args = new Set(Deno.args);
const runsArg = Deno.args.find((a) => a.startsWith("--runs="));
const runs = runsArg ? Math.max(1, Number(runsArg.slice("--runs=".length)) || 1) : 1;
const N = 200_000;
const root = new URL("..", import.meta.url).pathname;
const tmp = await Deno.makeTempDir({ prefix: "mq-bench-cluster-" });
const cluster = await startNatsCluster(3);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const lines = Array.from({ length: N }, (_, i) => `message-${String(i).padStart(8, "0")}-abcdef`);
await Deno.writeTextFile(`${tmp}/lines.txt`, lines.join("\n") + "\n");
const deno = (
  script: string,
  rest: string[],
) => ["run", "--quiet", "-A", "--config", `${root}deno.json`, script, ...rest];

/** Runs processes at once; resolves to messages per second over all of them (`n` messages). */
async function timed(
  argvs: string[][],
  n: number,
  env: Record<string, string> = {},
  stdinFile?: string,
): Promise<number> {
  const t = performance.now();
  await Promise.all(argvs.map(async (argv) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: argv,
      env,
      stdin: stdinFile ? "piped" : "null",
      stdout: "null",
      stderr: "inherit",
    }).spawn();
    if (stdinFile) await (await Deno.open(stdinFile)).readable.pipeTo(child.stdin);
    const s = await child.status;
    if (!s.success) throw new Error(`${argv.join(" ")} failed (${s.code})`);
  }));
  return n / ((performance.now() - t) / 1000);
}

const peerScript = `${tmp}/peer.ts`;
await Deno.writeTextFile(
  peerScript,
  `import { connect } from "@nats-io/transport-node";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
const [kind, servers, stream, arg] = Deno.args;
const nc = await connect({ servers: servers.split(",") });
const js = jetstream(nc);
if (kind === "pub") {
  const enc = new TextEncoder();
  const lines = (await Deno.readTextFile(arg)).split("\\n").filter((l) => l !== "");
  await (await jetstreamManager(nc)).streams.add({ name: stream, subjects: [stream], num_replicas: 3 });
  const pending = [];
  for (const l of lines) {
    pending.push(js.publish(stream, enc.encode(l)));
    if (pending.length >= 2048) await Promise.all(pending.splice(0, 1024));
  }
  await Promise.all(pending);
} else if (kind === "durable") {
  await (await jetstreamManager(nc)).consumers.add(stream, {
    durable_name: "g",
    ack_policy: AckPolicy.Explicit,
    max_ack_pending: 20000,
  });
} else {
  // Consume with the shared durable until a fetch comes back empty, acking each message.
  const consumer = await js.consumers.get(stream, "g");
  for (;;) {
    let got = 0;
    for await (const m of await consumer.fetch({ max_messages: 1024, expires: 1000 })) {
      m.ack();
      got++;
    }
    if (got === 0) break;
  }
  await nc.flush();
}
await nc.close();
`,
);

const servers = cluster.url.slice("nats://".length);
const env = { MQ_URL: `${cluster.url}?replicas=3`, NO_COLOR: "1" };
const main = `${root}cli/main.ts`;
const result: Record<string, number[]> = {
  mqPub: [],
  peerPub: [],
  mqGroup1: [],
  peerGroup1: [],
  mqGroup4: [],
  peerGroup4: [],
};
try {
  for (let r = 0; r < runs; r++) {
    // Publishing: a topic of 3 replicas, then the peer's R3 stream.
    await timed([deno(main, ["topics", "create", `t${r}`, "--replicas", "3"])], 1, env);
    result.mqPub.push(
      await timed([deno(main, ["pub", `t${r}`, "-q"])], N, env, `${tmp}/lines.txt`),
    );
    result.peerPub.push(
      await timed([deno(peerScript, ["pub", servers, `peer${r}`, `${tmp}/lines.txt`])], N),
    );
    // Consuming, with 1 and 4 processes: a new group (mq) and a new durable (peer) each time.
    for (const [k, procs] of [["1", 1], ["4", 4]] as const) {
      const group = `g${k}`;
      result[`mqGroup${k}`].push(
        await timed(
          Array.from({ length: procs }, () => deno(main, ["sub", `t${r}`, "--group", group, "-e"])),
          N,
          env,
        ),
      );
      // The peer's stream gets a fresh copy for each consumer count.
      const stream = `peer${r}c${k}`;
      await timed([deno(peerScript, ["pub", servers, stream, `${tmp}/lines.txt`])], N);
      await timed([deno(peerScript, ["durable", servers, stream])], 1);
      result[`peerGroup${k}`].push(
        await timed(
          Array.from({ length: procs }, () => deno(peerScript, ["consume", servers, stream])),
          N,
        ),
      );
    }
  }
} finally {
  await cluster.stop();
  await Deno.remove(tmp, { recursive: true });
}

const rows = [
  [
    "mq pub of 200,000 stdin lines, R3 topic",
    "mqPub",
    "nats.js publisher, 2048 acks in flight",
    "peerPub",
    0.8,
  ],
  [
    "mq sub --group -e, 1 process (acks per batch)",
    "mqGroup1",
    "native pull consumer acking each, 1 process",
    "peerGroup1",
    1.0,
  ],
  [
    "mq sub --group -e, 4 processes (acks per batch)",
    "mqGroup4",
    "native pull consumer acking each, 4 processes",
    "peerGroup4",
    1.0,
  ],
].map(([name, ours, peer, theirs, goal]) => {
  const ratio = median(result[ours as string]) / median(result[theirs as string]);
  return {
    case: name as string,
    value: Math.round(median(result[ours as string])),
    peer: peer as string,
    peerValue: Math.round(median(result[theirs as string])),
    ratio: Number(ratio.toFixed(2)),
    goal: goal as number,
    pass: ratio >= (goal as number),
  };
});
if (args.has("--json")) console.log(JSON.stringify(rows));
else {
  console.log(
    `mq nats cluster benchmark (3 nodes, R3, ${runs} run${
      runs === 1 ? "" : "s"
    }, medians, msg/s), ${new Date().toISOString()}`,
  );
  for (const r of rows) {
    console.log(
      `${r.pass ? "PASS" : "FAIL"}  ${r.case}: ${r.value.toLocaleString("en")}/s | ${r.peer}: ${
        r.peerValue.toLocaleString("en")
      }/s | ${r.ratio.toFixed(2)}x | goal >= ${r.goal.toFixed(1)}x`,
    );
  }
}
