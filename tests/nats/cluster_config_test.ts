/**
 * mq on a three-node cluster: several seed servers in one URL (as `--url`,
 * in a context and in mq.json, secrets shown as ***), `?replicas=N` and
 * `topics create --replicas N` (every stream and the state bucket get that
 * many copies, `topics info` shows it), and more replicas than the cluster
 * (or a single server) has: one clear line, exit 1, nothing saved, no hang.
 */
import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { connect as natsConnect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { available, startNats } from "../../scripts/brokers.ts";
import { startNatsCluster } from "../../scripts/nats_cluster.ts";
import { streamName } from "../../adapters/nats/mod.ts";
import { mqRun } from "./_cluster.ts";

const nats = available("nats-server");
const opts = { ignore: !nats.ok, sanitizeOps: false, sanitizeResources: false };

/** The copies a stream keeps, asked of the node at `port`. */
async function replicasOfStream(port: number, stream: string): Promise<number> {
  const nc = await natsConnect({ servers: `127.0.0.1:${port}` });
  try {
    return (await (await jetstreamManager(nc)).streams.info(stream)).config.num_replicas;
  } finally {
    await nc.close();
  }
}

Deno.test({
  ...opts,
  name: "cluster: seed lists, ?replicas=N, topics create --replicas, too many replicas",
  fn: async () => {
    const cluster = await startNatsCluster(3);
    const home = await Deno.makeTempDir({ prefix: "mq-cluster-" });
    const env = { MQ_HOME: `${home}/data`, XDG_CONFIG_HOME: `${home}/config` };
    const port = cluster.nodes[0].port;
    const seeds = cluster.url.slice("nats://".length);
    try {
      // More replicas than servers: one line, exit 1, within seconds, nothing saved.
      const t = Date.now();
      const big = await mqRun(env, [
        "--url",
        cluster.url,
        "topics",
        "create",
        "big",
        "--replicas",
        "5",
      ]);
      ok(Date.now() - t < 15_000, `took ${Date.now() - t}ms`);
      eq([big.code, big.err], [
        1,
        `mq: error: NATS cannot keep 5 replicas of topic "big" (stream ${
          streamName("big", 0)
        }): no suitable peers for placement (replicas must not exceed the JetStream servers of the cluster)\n`,
      ]);
      const none = await mqRun(env, ["--url", cluster.url, "topics", "--json"]);
      eq([none.code, none.out], [0, "[]\n"]);
      const bucket = await mqRun(env, ["--url", `${cluster.url}?replicas=4`, "topics"]);
      eq([bucket.code, bucket.err], [
        1,
        "mq: error: NATS cannot keep 4 replicas of the state bucket mq_state: no suitable peers for placement (replicas must not exceed the JetStream servers of the cluster)\n",
      ]);

      // topics create --replicas 3 on a URL without ?replicas=.
      const r3 = await mqRun(env, [
        "--url",
        cluster.url,
        "topics",
        "create",
        "r3",
        "--replicas",
        "3",
      ]);
      eq([r3.code, r3.err], [0, 'mq: created topic "r3" with 1 partition, 3 replicas each\n']);
      eq(await replicasOfStream(port, streamName("r3", 0)), 3);
      const info = await mqRun(env, ["--url", cluster.url, "topics", "info", "r3"]);
      eq(info.code, 0, info.err);
      ok(/^settings: .* replicas=3$/m.test(info.out), info.out);
      eq(
        JSON.parse((await mqRun(env, ["--url", cluster.url, "topics", "info", "r3", "--json"])).out)
          .config.replicas,
        3,
      );

      // ?replicas=3: a topic made by a publish, the state bucket, and a dead-letter topic.
      const url3 = `nats://user:s3cret@${seeds}?replicas=3`;
      const pub = await mqRun(env, ["--url", url3, "pub", "auto", "a", "b"]);
      eq(pub.code, 0, pub.err);
      eq(await replicasOfStream(port, streamName("auto", 0)), 3);
      eq(await replicasOfStream(port, "KV_mq_state"), 3);
      const work = await mqRun(env, [
        "--url",
        url3,
        "work",
        "auto",
        "--max-attempts",
        "1",
        "-e",
        "--",
        "false",
      ]);
      // Both dead-lettered: work -e says so and exits 1 (as xargs does).
      eq(
        [work.code, work.err],
        [
          1,
          'mq: work on "auto": 0 done, 0 retried, 2 dead-lettered\n' +
          'mq: error: 2 messages of "auto" went to the dead-letter topic "auto.dlq" (see mq dlq ls auto)\n',
        ],
      );
      eq(await replicasOfStream(port, streamName("auto.dlq", 0)), 3);
      const dead = await mqRun(env, ["--url", url3, "sub", "auto.dlq", "-e"]);
      eq([dead.code, dead.out], [0, "a\nb\n"]);

      // The seed list in a context and in mq.json: secrets as ***.
      const shown = `nats://user:***@${seeds}?replicas=3`;
      const info3 = await mqRun(env, ["--url", url3, "info", "--json"]);
      eq(info3.code, 0, info3.err);
      const parsed = JSON.parse(info3.out);
      eq([parsed.backend, parsed.capabilities.defaultReplicas], [shown, 3]);
      const add = await mqRun(env, ["context", "add", "prod", url3]);
      eq([add.code, add.err], [0, `mq: context "prod" is ${shown}\n`]);
      const ls = await mqRun(env, ["context", "ls"]);
      ok(ls.out.includes(shown) && !ls.out.includes("s3cret"), ls.out);
      const viaContext = await mqRun(env, ["--context", "prod", "topics", "--json"]);
      eq(viaContext.code, 0, viaContext.err);
      eq(JSON.parse(viaContext.out).map((x: { name: string }) => x.name), [
        "auto",
        "auto.dlq",
        "r3",
      ]);
      await Deno.writeTextFile(
        `${home}/mq.json`,
        JSON.stringify({ environments: { prod: url3 } }),
      );
      const viaEnv = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--quiet",
          "-A",
          new URL("../../cli/main.ts", import.meta.url).pathname,
          "info",
        ],
        cwd: home,
        env: { ...env, MQ_ENV: "prod", NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const out = new TextDecoder().decode(viaEnv.stdout);
      eq(viaEnv.code, 0, new TextDecoder().decode(viaEnv.stderr));
      ok(out.includes(`backend: ${shown}\n`) && !out.includes("s3cret"), out);
    } finally {
      await cluster.stop();
      await Deno.remove(home, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  ...opts,
  name:
    "replicas: refused on one server (exit 1), on a backend that keeps one copy and out of range (exit 2)",
  fn: async () => {
    const broker = await startNats();
    const home = await Deno.makeTempDir({ prefix: "mq-replicas-" });
    const env = { MQ_HOME: `${home}/data`, XDG_CONFIG_HOME: `${home}/config` };
    try {
      const one = await mqRun(env, [
        "--url",
        broker.url,
        "topics",
        "create",
        "t",
        "--replicas",
        "3",
      ]);
      eq([one.code, one.err], [
        1,
        `mq: error: NATS cannot keep 3 replicas of topic "t" (stream ${
          streamName("t", 0)
        }): replicas > 1 not supported in non-clustered mode (replicas must not exceed the JetStream servers of the cluster)\n`,
      ]);
      const r1 = await mqRun(env, [
        "--url",
        broker.url,
        "topics",
        "create",
        "t",
        "--replicas",
        "1",
      ]);
      eq([r1.code, r1.err], [0, 'mq: created topic "t" with 1 partition\n']);
      const cases: [string[], string][] = [
        [
          ["--url", `file:${home}/f`, "topics", "create", "t", "--replicas", "3"],
          "mq: error: replicas must be 1 on this backend (it keeps one copy of each message); more need a replicating backend such as a NATS cluster\n",
        ],
        [
          ["--url", `${broker.url}?replicas=6`, "topics"],
          'mq: error: nats: replicas must be a whole number from 1 to 5, not "6"\n',
        ],
        [
          ["--url", broker.url, "topics", "create", "u", "--replicas", "6"],
          "mq: error: replicas must be a whole number from 1 to 5, not 6\n",
        ],
      ];
      for (const [args, line] of cases) {
        const r = await mqRun(env, args);
        eq([r.code, r.err], [2, line], args.join(" "));
      }
      const zero = await mqRun(env, [
        "--url",
        broker.url,
        "topics",
        "create",
        "u",
        "--replicas",
        "0",
      ]);
      eq(zero.code, 2, zero.err);
      eq(zero.err.trim().split("\n").length, 1, zero.err);
    } finally {
      await broker.stop();
      await Deno.remove(home, { recursive: true }).catch(() => {});
    }
  },
});
