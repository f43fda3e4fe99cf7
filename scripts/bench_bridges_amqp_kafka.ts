/**
 * Benchmark of `mq bridge` to and from RabbitMQ and Kafka, side by side in one
 * run with the same npm client (@cloudamqp/amqp-client, kafkajs) moving the
 * same messages from a plain script with the same confirms and batching:
 * windows of 8192 confirmed publishes (AMQP), produce requests of 8192
 * records with acks=all and the idempotent producer (Kafka), prefetch 8192
 * with one ack per batch (AMQP in), a consumer group with a commit per batch
 * (Kafka in, reading the records mq --to produced, as mq --from does, with a
 * group of its own). Brokers: a private RabbitMQ node, librdkafka's mock cluster.
 *
 * `deno task bench:bridges-amqp-kafka [-n MESSAGES] [--only amqp|kafka]` (default
 * 1,000,000 of 100 bytes, both brokers). Reports each side's time and the
 * ratio raw/mq (>= 0.7 is the goal).
 *
 * @module
 */
import { startKafkaMock, startRabbitMq } from "./brokers.ts";

const arg = (name: string) =>
  Deno.args.includes(name) ? Deno.args[Deno.args.indexOf(name) + 1] : "";
const n = Number(arg("-n") || 1_000_000);
/** One broker's rows alone (quick A/B runs of one connector); both by default. */
const only = arg("--only");
if (only && only !== "amqp" && only !== "kafka") {
  console.error(`--only: amqp or kafka, not ${JSON.stringify(only)}`);
  Deno.exit(2);
}
const MAIN = new URL("../cli/main.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

/** Peak RSS (MB) of each run, by `/usr/bin/time`, where it is installed. */
const rss: number[] = [];
const TIME = (() => {
  try {
    return Deno.statSync("/usr/bin/time").isFile ? "/usr/bin/time" : undefined;
  } catch {
    return undefined;
  }
})();

async function run(args: string[], env: Record<string, string> = {}): Promise<number> {
  const t0 = performance.now();
  const [cmd, all] = TIME
    ? [TIME, ["-f", "MAXRSS=%M", Deno.execPath(), ...args]]
    : [Deno.execPath(), args];
  const out = await new Deno.Command(cmd, { args: all, env, stdout: "null", stderr: "piped" })
    .output();
  const ms = performance.now() - t0;
  const err = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${args.join(" ")}: ${err}`);
  const m = /MAXRSS=(\d+)/.exec(err);
  rss.push(m ? Number(m[1]) / 1024 : NaN);
  return ms;
}

/** The V8 flags of the `mq` task (what `deno task install` installs): mq runs as users run it. */
const V8_FLAGS: string[] = (JSON.parse(Deno.readTextFileSync(CONFIG)).tasks.mq as string)
  .split(/\s+/).filter((w) => w.startsWith("--v8-flags="));

const mqCmd = (home: string, ...args: string[]) =>
  run(["run", "-A", "--quiet", ...V8_FLAGS, MAIN, ...args, "-q"], {
    MQ_HOME: home,
    MQ_URL: `file:${home}`,
  });

/** The plain script: one job, with the npm client alone. */
const RAW = `
const [job, url, n] = [Deno.args[0], Deno.args[1], Number(Deno.args[2])];
const body = new Uint8Array(100).fill(120);
if (job === "amqp-to" || job === "amqp-from") {
  const { AMQPClient } = await import("@cloudamqp/amqp-client");
  const conn = await new AMQPClient(url, undefined, null).connect();
  const ch = await conn.channel();
  if (job === "amqp-to") {
    await ch.confirmSelect();
    for (let i = 0; i < n; i += 8192) {
      const ps = [];
      for (let j = i; j < Math.min(n, i + 8192); j++) {
        ps.push(ch.basicPublish("", "raw", body, { deliveryMode: 2, messageId: "raw:" + j }, true));
      }
      await Promise.all(ps);
    }
  } else {
    await ch.prefetch(8192);
    let got = 0, buf = [];
    await new Promise((done) => {
      ch.basicConsume("raw", { noAck: false }, (m) => {
        buf.push(m);
        got++;
        if (buf.length >= 8192 || got === n) {
          const last = buf[buf.length - 1];
          buf = [];
          ch.basicAck(last.deliveryTag, true).then(() => { if (got === n) done(); });
        }
      });
    });
  }
  await conn.close();
} else {
  const { Kafka } = await import("kafkajs");
  // kafkajs with the two patches it needs here (adapters/kafka/_client.ts), not mq's faster varints.
  await import(${JSON.stringify(new URL("../adapters/kafka/_client.ts", import.meta.url).href)});
  const kafka = new Kafka({ brokers: [url], clientId: "raw", logLevel: 0 });
  if (job === "kafka-to") {
    const p = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await p.connect();
    const { Buffer } = await import("node:buffer");
    const value = Buffer.from(body);
    for (let i = 0; i < n; i += 8192) {
      const messages = [];
      for (let j = i; j < Math.min(n, i + 8192); j++) {
        messages.push({ key: null, value, headers: { "mq-id": "raw:" + j } });
      }
      await p.send({ topic: "raw", acks: -1, messages });
    }
    await p.disconnect();
  } else {
    // The records mq --from reads (those mq --to produced, in its batches), with a
    // group of its own; what the topic holds (the mock keeps only its last records),
    // as mq -e does.
    const admin = kafka.admin();
    await admin.connect();
    let held = 0;
    for (const p of await admin.fetchTopicOffsets("bench")) held += Number(p.high) - Number(p.low);
    await admin.disconnect();
    const want = Math.min(n, held);
    const c = kafka.consumer({ groupId: "raw", maxBytesPerPartition: 4 * 1024 * 1024 });
    await c.connect();
    await c.subscribe({ topics: ["bench"], fromBeginning: true });
    let got = 0;
    await new Promise((done) => {
      c.run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          got += batch.messages.length;
          await c.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: String(Number(batch.lastOffset()) + 1) }]);
          if (got >= want) done();
        },
      });
    });
    await c.disconnect();
  }
}
`;

const dir = await Deno.makeTempDir({ prefix: "mq-bench-bridges-" });
const rawScript = `${dir}/raw.ts`;
await Deno.writeTextFile(rawScript, RAW);
const raw = (job: string, url: string) =>
  run(["run", "-A", "--quiet", "--config", CONFIG, rawScript, job, url, String(n)]);

/** Records a topic of the mock holds (high - low watermark, all partitions). */
async function held(bootstrap: string, topic: string): Promise<number> {
  const { Kafka } = await import("kafkajs");
  await import("../adapters/kafka/_bridge.ts");
  const admin = new Kafka({ brokers: [bootstrap], clientId: "bench", logLevel: 0 }).admin();
  await admin.connect();
  try {
    let n = 0;
    for (const p of await admin.fetchTopicOffsets(topic)) n += Number(p.high) - Number(p.low);
    return n;
  } finally {
    await admin.disconnect();
  }
}

/** Prints a row as soon as it is measured (a later failure keeps it). */
function report(row: [string, number, number, number, number]): void {
  const [name, ours, theirs, rssOurs, rssTheirs] = row;
  rows.push(row);
  console.log(
    `${name.padEnd(14)} ${(ours / 1000).toFixed(2).padStart(7)}s ${
      (theirs / 1000).toFixed(2).padStart(9)
    }s   ${(theirs / ours).toFixed(2)}x    ${rssOurs.toFixed(0)} MB / ${rssTheirs.toFixed(0)} MB`,
  );
}

/** The RabbitMQ rows: `--to`, then `--from` what it sent. */
async function amqpRows(url: string, home: string): Promise<void> {
  for (const q of ["raw", "bench"]) {
    await new Deno.Command("amqp-declare-queue", { args: ["-u", url, "-d", "-q", q] })
      .output();
  }

  // mq both ways, then the raw client both ways: each side reads its queue while
  // the broker holds only that queue's messages (RabbitMQ pages a long queue out
  // to disk, and a second full queue made whichever side read first slower).
  const amqpTo = await mqCmd(home, "bridge", "--to", url, "--topics", "bench", "-e");
  const rssTo = rss.at(-1)!;
  const amqpFrom = await mqCmd(
    home,
    "bridge",
    "--from",
    url,
    "--subjects",
    "bench",
    "--into",
    "from-amqp",
    "-e",
  );
  const rssFrom = rss.at(-1)!;
  const amqpToRaw = await raw("amqp-to", url);
  report(["amqp --to", amqpTo, amqpToRaw, rssTo, rss.at(-1)!]);
  const amqpFromRaw = await raw("amqp-from", url);
  report(["amqp --from", amqpFrom, amqpFromRaw, rssFrom, rss.at(-1)!]);
}

/** The Kafka rows: `--to`, then `--from` what the mock kept. */
async function kafkaRows(url: string, bootstrap: string, home: string): Promise<void> {
  const kafkaTo = await mqCmd(
    home,
    "bridge",
    "--to",
    url,
    "--topics",
    "bench",
    "-g",
    "k",
    "-e",
  );
  const kafkaToRaw = await raw("kafka-to", bootstrap);
  report(["kafka --to", kafkaTo, kafkaToRaw, rss.at(-2)!, rss.at(-1)!]);
  // librdkafka's mock keeps only the last records of a partition: --from reads what it holds
  // of mq's topic, and so does the raw client (with a group of its own).
  const kept = await held(bootstrap, "bench");
  console.log(`(the mock holds ${kept} of the records mq produced; both sides read them)`);
  const kafkaFrom = await mqCmd(
    home,
    "bridge",
    "--from",
    url,
    "--subjects",
    "bench",
    "--into",
    "from-kafka",
    "-e",
  );
  const kafkaFromRaw = await raw("kafka-from", bootstrap);
  report(["kafka --from", kafkaFrom, kafkaFromRaw, rss.at(-2)!, rss.at(-1)!]);
}

const rabbit = only === "kafka" ? undefined : await startRabbitMq();
const kafka = only === "amqp" ? undefined : await startKafkaMock();
const rows: [string, number, number, number, number][] = [];
console.log(`${n} messages of 100 bytes, one run (time of a whole process, start-up included)`);
console.log(`load average at the start: ${Deno.loadavg().map((x) => x.toFixed(2)).join(" ")}`);
console.log("case           mq        raw client   raw/mq   peak RSS mq / raw");
try {
  // The local topic: n messages of 100 bytes.
  const home = `${dir}/home`;
  const line = "x".repeat(100);
  const pub = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, "pub", "bench", "-q"],
    env: { MQ_HOME: home, MQ_URL: `file:${home}` },
    stdin: "piped",
    stdout: "null",
  }).spawn();
  const w = pub.stdin.getWriter();
  const chunk = new TextEncoder().encode(`${line}\n`.repeat(10_000));
  for (let i = 0; i < n; i += 10_000) {
    await w.write(chunk.subarray(0, 101 * Math.min(10_000, n - i)));
  }
  await w.close();
  await pub.status;
  if (rabbit) await amqpRows(rabbit.url, home);
  if (kafka) await kafkaRows(kafka.url, kafka.bootstrap, home);
} finally {
  await kafka?.stop();
  await rabbit?.stop();
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
console.log(`load average at the end: ${Deno.loadavg().map((x) => x.toFixed(2)).join(" ")}`);
