/**
 * NATS benchmark, side by side in one run, on a private nats-server:
 * - `mq bridge --to nats://... -e` of 100,000 local messages to core NATS
 *   subjects vs the floor: a plain nats.js script publishing the same
 *   messages (and a flush). Target: >= 70% of the floor.
 * - `mq pub` of 100,000 stdin lines into the JetStream backend vs the floor:
 *   a plain nats.js script doing acknowledged JetStream publishes with a
 *   window of outstanding acks. Target: >= 70% of the floor.
 * Every figure is a whole process, start-up included (mq and the floors).
 *
 * Run: `deno task bench:nats` (`--quick` for one run, `--json`).
 */
import { startNats } from "./brokers.ts";
import { connect } from "../mod.ts";

const args = new Set(Deno.args);
const runs = args.has("--quick") ? 1 : 3;
const N = 100_000;
const root = new URL("..", import.meta.url).pathname;
const tmp = await Deno.makeTempDir({ prefix: "mq-bench-nats-" });
const broker = await startNats();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const lines = Array.from({ length: N }, (_, i) => `message-${String(i).padStart(8, "0")}-abcdef`);
await Deno.writeTextFile(`${tmp}/lines.txt`, lines.join("\n") + "\n");

function mqCommand(
  args: string[],
  env: Record<string, string>,
  stdinFile?: string,
): Promise<number> {
  const t = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-net",
      "--config",
      `${root}deno.json`,
      `${root}cli/main.ts`,
      ...args,
    ],
    env,
    stdin: stdinFile ? "piped" : "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  return (async () => {
    if (stdinFile) await (await Deno.open(stdinFile)).readable.pipeTo(child.stdin);
    if (!(await child.status).success) throw new Error(`mq ${args.join(" ")} failed`);
    return N / ((performance.now() - t) / 1000);
  })();
}

/** Runs a floor script as a whole process (start-up included, as for mq). */
async function floorProcess(kind: "core" | "jetstream", subject: string): Promise<number> {
  const t = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--allow-net",
      "--allow-read",
      "--config",
      `${root}deno.json`,
      floorScript,
      kind,
      String(broker.port),
      subject,
      `${tmp}/lines.txt`,
    ],
    stdout: "null",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`floor ${kind} failed`);
  return N / ((performance.now() - t) / 1000);
}

const floorScript = `${tmp}/floor.ts`;
await Deno.writeTextFile(
  floorScript,
  `import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
const [kind, port, subject, file] = Deno.args;
const enc = new TextEncoder();
const lines = (await Deno.readTextFile(file)).split("\\n").filter((l) => l !== "");
const nc = await connect({ servers: "127.0.0.1:" + port });
if (kind === "core") {
  for (const l of lines) nc.publish(subject, enc.encode(l));
  await nc.flush();
} else {
  await (await jetstreamManager(nc)).streams.add({ name: subject.replaceAll(".", "_"), subjects: [subject] });
  const js = jetstream(nc);
  const pending = [];
  for (const l of lines) {
    pending.push(js.publish(subject, enc.encode(l)));
    if (pending.length >= 2048) await Promise.all(pending.splice(0, 1024));
  }
  await Promise.all(pending);
}
await nc.close();
`,
);

const bridge: number[] = [], core: number[] = [], pub: number[] = [], jsFloor: number[] = [];
try {
  for (let r = 0; r < runs; r++) {
    const home = `${tmp}/home${r}`;
    const mq = await connect(`file:${home}`);
    for (let i = 0; i < N; i += 10_000) {
      await mq.publishBatch(`bridged.r${r}`, lines.slice(i, i + 10_000));
    }
    await mq.close();
    bridge.push(await mqCommand(["bridge", "--to", broker.url, "-e", "-q"], { MQ_HOME: home }));
    core.push(await floorProcess("core", `floor.core.r${r}`));
    pub.push(await mqCommand(["pub", `js${r}`, "-q"], { MQ_URL: broker.url }, `${tmp}/lines.txt`));
    jsFloor.push(await floorProcess("jetstream", `floor.js.r${r}`));
  }
} finally {
  await broker.stop();
  await Deno.remove(tmp, { recursive: true });
}
const rows = [
  [
    "mq bridge -e of 100,000 messages to core NATS (whole command)",
    bridge,
    "plain nats.js script: publish + flush (floor)",
    core,
  ],
  [
    "mq pub of 100,000 stdin lines into JetStream (whole command)",
    pub,
    "plain nats.js script: JetStream publish, 2048 acks in flight (floor)",
    jsFloor,
  ],
].map(([name, ours, peer, floor]) => {
  const ratio = median(ours as number[]) / median(floor as number[]);
  return {
    case: name as string,
    value: Math.round(median(ours as number[])),
    peer: peer as string,
    peerValue: Math.round(median(floor as number[])),
    ratio,
    target: ">= 0.70x of the floor",
    pass: ratio >= 0.7,
  };
});
if (args.has("--json")) console.log(JSON.stringify(rows));
else {
  console.log(
    `mq nats benchmark (${runs} run${runs === 1 ? "" : "s"}, medians, msg/s), ${
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
