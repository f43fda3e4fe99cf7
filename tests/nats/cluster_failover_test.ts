/**
 * mq on a three-node NATS cluster (routes on loopback, a name and a store
 * each), R3 topics, under failure: two `mq work` processes share a group
 * while a `mq pub` runs, and a node is killed with SIGKILL in the middle —
 * the node that leads the topic's stream, the node the workers are connected
 * to, or a node that is then started again on its old store. Afterwards
 * every message was acked once or dead-lettered, none was lost or stored
 * twice, and the group went on after the kill (its time printed; the test
 * fails only past 25 s, a liveness bound), each state change said in one line.
 *
 * The bounded form (the default, and under CI=true): one round of 2,000
 * messages, one kill of the leader and one restart of it. `MQ_CLUSTER_FULL=1`
 * runs the three rounds of 20,000 each.
 */
import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { available } from "../../scripts/brokers.ts";
import {
  type ClusterNode,
  type NatsCluster,
  startNatsCluster,
} from "../../scripts/nats_cluster.ts";
import { streamName } from "../../adapters/nats/mod.ts";
import { makeNetLab, type NetLab } from "../../scripts/netns.ts";
import {
  assertRound,
  collectStderr,
  linesOf,
  mqRun,
  nodesOfClients,
  numbered,
  roundSize,
  spawnMq,
  until,
} from "./_cluster.ts";

const nats = available("nats-server");
const FULL = Deno.env.get("MQ_CLUSTER_FULL") === "1";
/** Messages of a round in the full form (`MQ_CLUSTER_N` to change it). */
const FULL_N = Number(Deno.env.get("MQ_CLUSTER_N") ?? 20_000);

/** How the victim is picked, and whether it comes back. */
type Fault = "leader" | "connected" | "restart" | "partition";

/** How long a worker has to end after SIGTERM (work's grace period is 10 s by default). */
const EXIT_WAIT_MS = 90_000;
/** The lines a long-running command may say about its connection. */
const STATE_LINE =
  /^mq: (disconnected from NATS at \S+|reconnecting to NATS|reconnected to NATS at \S+|NATS JetStream did not answer .*; retrying|NATS JetStream answers again)$/;

async function victimOf(cluster: NatsCluster, fault: Fault): Promise<ClusterNode> {
  if (fault === "connected") {
    const names = await nodesOfClients(cluster.nodes, "mq-worker");
    ok(names.length > 0, "no worker connection found by /connz");
    return cluster.nodes.find((n) => n.name === names[0])!;
  }
  return await cluster.leaderOf(streamName("jobs", 0));
}

async function round(fault: Fault, n: number, lab?: NetLab): Promise<void> {
  const cluster = await startNatsCluster(
    3,
    lab ? { host: (i) => lab.hosts[i], wrap: (i) => lab.exec(i) } : {},
  );
  const home = await Deno.makeTempDir({ prefix: "mq-cluster-" });
  const done = `${home}/done.txt`;
  const env = {
    MQ_URL: `${cluster.url}?replicas=3`,
    MQ_HOME: `${home}/data`,
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    DONE: done,
  };
  const workerEnv = { ...env, MQ_URL: `${env.MQ_URL}&name=mq-worker` };
  const workers: Deno.ChildProcess[] = [];
  try {
    const created = await mqRun(env, ["topics", "create", "jobs", "--replicas", "3"]);
    eq([created.code, created.err], [
      0,
      'mq: created topic "jobs" with 1 partition, 3 replicas each\n',
    ]);
    const first = await mqRun(env, ["pub", "jobs", "-q"], numbered(0, n / 2));
    eq(first.code, 0, first.err);
    for (let i = 0; i < 2; i++) {
      workers.push(spawnMq(workerEnv, [
        "work",
        "jobs",
        "-g",
        "g",
        "-c",
        "4",
        "--prefetch",
        "16",
        "--",
        "sh",
        "-c",
        'printf "%s\\n" "$(cat)" >> "$DONE"',
      ]));
    }
    const stderr = workers.map(collectStderr);
    // The second half is published while the node goes.
    const pub = spawnMq(env, ["pub", "jobs"], "piped");
    const pubErr = collectStderr(pub);
    const feeding = (async () => {
      const w = pub.stdin.getWriter();
      const enc = new TextEncoder();
      for (let i = n / 2; i < n; i += 500) {
        await w.write(enc.encode(numbered(i, Math.min(n, i + 500))));
        await new Promise((r) => setTimeout(r, 20));
      }
      await w.close();
    })();
    await until(async () => (await linesOf(done)).length >= n / 4, 120_000, "a quarter done");
    const victim = await victimOf(cluster, fault);
    const atKill = (await linesOf(done)).length;
    const killedAt = Date.now();
    if (fault === "partition") await lab!.cut(cluster.nodes.indexOf(victim));
    else await victim.kill();
    // Going on: more than the workers held (4 running + 16 ahead, each) got done.
    await until(
      async () => (await linesOf(done)).length > atKill + 2 * (4 + 16),
      30_000,
      "the group to go on",
    );
    const resumedMs = Date.now() - killedAt;
    // A liveness check, not a timing one: the failover time is printed below
    // (2-11 s seen on the shared machine, the high end under a loaded CI run);
    // only a group that takes far longer than an election fails here. (Cut off,
    // the node may lead on until the others elect a new leader.)
    if (fault !== "partition") {
      ok(resumedMs < 25_000, `the group went on ${resumedMs}ms after the kill`);
    }
    if (fault === "partition") {
      await new Promise((r) => setTimeout(r, Math.max(0, 5000 - (Date.now() - killedAt))));
      await lab!.heal(cluster.nodes.indexOf(victim));
    }
    if (fault === "restart") {
      await new Promise((r) => setTimeout(r, 1000));
      await victim.start();
    }
    await feeding;
    const pubStatus = await pub.status;
    await pubErr.done;
    eq(pubStatus.code, 0, pubErr.lines.join("\n"));
    ok(
      pubErr.lines.at(-1)!.startsWith(`mq: published ${n / 2} messages to "jobs"`),
      pubErr.lines.join("\n"),
    );
    // Every message done (or dead-lettered: then the count stops short).
    let last = -1, still = Date.now();
    await until(
      async () => {
        const now = new Set(await linesOf(done)).size;
        if (now !== last) (last = now, still = Date.now());
        return now >= n || Date.now() - still > 45_000;
      },
      600_000,
      "every message done",
    );
    for (const w of workers) w.kill("SIGTERM");
    // A worker that does not end after SIGTERM fails the round, rather than
    // holding up the whole test run.
    const codes = [];
    for (const [i, w] of workers.entries()) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<"late">((r) => timer = setTimeout(() => r("late"), EXIT_WAIT_MS));
      const status = await Promise.race([w.status, late]);
      clearTimeout(timer);
      if (status === "late") {
        w.kill("SIGKILL");
        await w.status;
        await stderr[i].done;
        throw new Error(
          `worker ${i} did not end within ${EXIT_WAIT_MS} ms of SIGTERM (${
            (await linesOf(done)).length
          } of ${n} done); its stderr:\n${stderr[i].lines.join("\n")}`,
        );
      }
      codes.push(status.code);
    }
    await Promise.all(stderr.map((s) => s.done));
    eq(codes, [0, 0], stderr.map((s) => s.lines.join("\n")).join("\n--\n"));
    for (const s of stderr) {
      const state = s.lines.filter((l) => STATE_LINE.test(l));
      const other = s.lines.filter((l) => !STATE_LINE.test(l));
      // One line per change of state: a few, never one per failed call (a
      // busy machine may add a slow answer or two over a long round).
      ok(state.length <= (FULL ? 16 : 10), s.lines.join("\n"));
      ok(state.filter((l) => /disconnected/.test(l)).length <= 1, s.lines.join("\n"));
      for (let i = 1; i < state.length; i++) ok(state[i] !== state[i - 1], s.lines.join("\n"));
      // Nothing else but work's summary line at the end.
      eq(
        other.filter((l) =>
          !/^mq: work on "jobs": \d+ done, \d+ retried, \d+ dead-lettered$/.test(l)
        ),
        [],
        s.lines.join("\n"),
      );
    }
    const { dead } = await assertRound(env, "jobs", "g", await linesOf(done), n);
    console.error(
      `  ${fault}: ${n} messages, ${victim.name} ${
        fault === "partition" ? "cut off for 5 s" : "killed"
      }, went on after ${resumedMs}ms, ` +
        `${dead} dead-lettered`,
    );
  } finally {
    for (const w of workers) {
      try {
        w.kill("SIGKILL");
      } catch { /* ended */ }
      await w.status.catch(() => {});
    }
    await cluster.stop();
    await Deno.remove(home, { recursive: true }).catch(() => {});
  }
}

const opts = { ignore: !nats.ok, sanitizeOps: false, sanitizeResources: false };

Deno.test({
  ...opts,
  name: "cluster: the stream leader killed mid-way, then restarted on its old store (R3)",
  fn: () => round("restart", roundSize(FULL_N, 2_000)),
});

Deno.test({
  ...opts,
  ignore: opts.ignore || !FULL,
  name: "cluster: the stream leader killed mid-way (R3, MQ_CLUSTER_FULL=1)",
  fn: () => round("leader", FULL_N),
});

Deno.test({
  ...opts,
  ignore: opts.ignore || !FULL,
  name: "cluster: the node the workers are connected to killed mid-way (R3, MQ_CLUSTER_FULL=1)",
  fn: () => round("connected", FULL_N),
});

Deno.test({
  ...opts,
  ignore: opts.ignore || !FULL,
  name:
    "cluster: the stream leader cut off for 5 s by a partition (network namespaces, MQ_CLUSTER_FULL=1)",
  fn: async (t) => {
    const lab = await makeNetLab(3);
    if ("skip" in lab) {
      console.error(`  skipped: ${lab.skip}`);
      // Shown as ignored in the summary rather than passed.
      await t.step({ name: `partition (${lab.skip})`, ignore: true, fn: () => {} });
      return;
    }
    try {
      await round("partition", FULL_N, lab);
    } finally {
      await lab.close();
    }
  },
});
