/**
 * A test cluster of nats-servers on loopback: each node with a name, a client
 * port, a route port and a temporary JetStream store, routed to the others,
 * all in one cluster. Nodes can be killed (SIGKILL), stopped and started
 * again on their old store; the cluster says which node leads a stream.
 *
 * @example
 * ```ts ignore
 * import { startNatsCluster } from "./nats_cluster.ts";
 * const cluster = await startNatsCluster(3);
 * console.log(cluster.url); // nats://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3
 * await cluster.stop();
 * ```
 *
 * @module
 */
import { connect as natsConnect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { findBinary, restartablePort } from "./brokers.ts";

/** One node of a {@link NatsCluster}. */
export interface ClusterNode {
  /** Its server name (`n1`, `n2`, ...). */
  name: string;
  /** Its client port on 127.0.0.1. */
  port: number;
  /** Its route port on 127.0.0.1. */
  routePort: number;
  /** Its monitoring port (`/connz`, `/jsz`, ...). */
  monitorPort: number;
  /** Whether it runs now. */
  readonly running: boolean;
  /** Kills it with SIGKILL (its store stays). */
  kill(): Promise<void>;
  /** Stops it with SIGTERM (its store stays). */
  stop(): Promise<void>;
  /** Starts it again on its old store. */
  start(): Promise<void>;
}

/** A running test cluster. */
export interface NatsCluster {
  /** The seed URL naming every node: `nats://127.0.0.1:p1,127.0.0.1:p2,...`. */
  url: string;
  /** The nodes, in order. */
  nodes: ClusterNode[];
  /** The node that leads `stream` now (waits up to `ms` for a leader). */
  leaderOf(stream: string, ms?: number): Promise<ClusterNode>;
  /** Waits until JetStream answers on every running node and a meta leader is elected. */
  ready(ms?: number): Promise<void>;
  /** Stops every node and removes the stores. */
  stop(): Promise<void>;
}

/** Options of {@link startNatsCluster}. */
export interface ClusterOptions {
  /** Address the nodes listen on (clients and routes). @default "127.0.0.1" */
  host?: (index: number) => string;
  /** Runs each node's command through this prefix (e.g. `ip netns exec NS`). */
  wrap?: (index: number) => string[];
}

/**
 * Starts `size` nats-servers with JetStream that form one cluster, and waits
 * until it is ready.
 *
 * @throws {Error} when nats-server is not installed or a node does not start
 */
export async function startNatsCluster(
  size = 3,
  options: ClusterOptions = {},
): Promise<NatsCluster> {
  const bin = findBinary("nats-server");
  if (!bin) throw new Error("nats-server is not installed");
  const dir = await Deno.makeTempDir({ prefix: "mq-cluster-" });
  const hostOf = options.host ?? (() => "127.0.0.1");
  const ports = Array.from(
    { length: size },
    // Nodes are killed and started again on their ports (see restartablePort).
    () => ({ client: restartablePort(), route: restartablePort(), monitor: restartablePort() }),
  );
  const nodes: (ClusterNode & { conf: string })[] = [];
  for (let i = 0; i < size; i++) {
    const name = `n${i + 1}`;
    const store = `${dir}/${name}`;
    await Deno.mkdir(store, { recursive: true });
    const conf = `${store}/nats.conf`;
    const routes = ports.map((p, j) => `nats-route://${hostOf(j)}:${p.route}`)
      .filter((_, j) => j !== i);
    await Deno.writeTextFile(
      conf,
      [
        `server_name: ${name}`,
        `listen: "${hostOf(i)}:${ports[i].client}"`,
        `http: "${hostOf(i)}:${ports[i].monitor}"`,
        `jetstream { store_dir: ${JSON.stringify(`${store}/js`)} }`,
        `cluster {`,
        `  name: mq-test`,
        `  listen: "${hostOf(i)}:${ports[i].route}"`,
        `  routes: [${routes.map((r) => JSON.stringify(r)).join(", ")}]`,
        `}`,
      ].join("\n") + "\n",
    );
    let child: Deno.ChildProcess | undefined;
    const node = {
      name,
      port: ports[i].client,
      routePort: ports[i].route,
      monitorPort: ports[i].monitor,
      conf,
      get running() {
        return child !== undefined;
      },
      async start() {
        if (child) return;
        const prefix = options.wrap?.(i) ?? [];
        const argv = [...prefix, bin, "-c", conf, "-l", `${store}/nats.log`];
        const c = child = new Deno.Command(argv[0], {
          args: argv.slice(1),
          stdout: "null",
          stderr: "null",
        }).spawn();
        const exited = c.status.then(async (s) => {
          const log = await Deno.readTextFile(`${store}/nats.log`).catch(() => "");
          throw new Error(
            `nats-server ${name} exited (code ${s.code}): ${log.trim().split("\n").at(-1)}`,
          );
        });
        exited.catch(() => {});
        await Promise.race([waitForPort(hostOf(i), ports[i].client, 10_000), exited]);
      },
      async kill() {
        await end("SIGKILL");
      },
      async stop() {
        await end("SIGTERM");
      },
    };
    const end = async (signal: Deno.Signal) => {
      if (!child) return;
      const c = child;
      child = undefined;
      try {
        c.kill(signal);
      } catch { /* gone */ }
      const timer = setTimeout(() => {
        try {
          c.kill("SIGKILL");
        } catch { /* gone */ }
      }, 3000);
      await c.status;
      clearTimeout(timer);
    };
    nodes.push(node);
  }
  const cluster: NatsCluster = {
    url: `nats://${nodes.map((n, i) => `${hostOf(i)}:${n.port}`).join(",")}`,
    nodes,
    async leaderOf(stream, ms = 15_000) {
      const until = Date.now() + ms;
      for (;;) {
        for (const [i, n] of nodes.entries()) {
          if (!n.running) continue;
          const leader = await askLeader(hostOf(i), n.port, stream).catch(() => undefined);
          const node = nodes.find((x) => x.name === leader && x.running);
          if (node) return node;
        }
        if (Date.now() > until) throw new Error(`stream ${stream} has no leader after ${ms}ms`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async ready(ms = 30_000) {
      const until = Date.now() + ms;
      for (const [i, n] of nodes.entries()) {
        if (!n.running) continue;
        for (;;) {
          const ok = await jetStreamAnswers(hostOf(i), n.port).catch(() => false);
          if (ok) break;
          if (Date.now() > until) {
            throw new Error(`JetStream on ${n.name} not ready after ${ms}ms`);
          }
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      // And the meta leader counts every running node as a current peer: before
      // that, a stream of N replicas is refused ("no suitable peers for placement").
      const running = nodes.filter((n) => n.running);
      for (;;) {
        const peers = await Promise.all(
          running.map((n) => currentMetaPeers(hostOf(nodes.indexOf(n)), n.monitorPort, n.name)),
        ).catch(() => []);
        if (peers.some((k) => k >= running.length)) return;
        if (Date.now() > until) {
          throw new Error(
            `the JetStream meta group has not all ${running.length} nodes after ${ms}ms`,
          );
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop() {
      await Promise.all(nodes.map((n) => n.kill()));
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  try {
    await Promise.all(nodes.map((n) => n.start()));
    await cluster.ready();
  } catch (e) {
    await cluster.stop();
    throw e;
  }
  return cluster;
}

async function askLeader(host: string, port: number, stream: string): Promise<string | undefined> {
  const nc = await natsConnect({ servers: `${host}:${port}`, timeout: 1000, reconnect: false });
  try {
    const jsm = await jetstreamManager(nc, { timeout: 1000 });
    return (await jsm.streams.info(stream)).cluster?.leader;
  } finally {
    await nc.close();
  }
}

/**
 * How many nodes the JetStream meta group has current, as the node `name`
 * (monitoring on `monitorPort`) sees it when it is the meta leader (itself
 * and its current replicas); 0 on a node that is not the leader.
 */
async function currentMetaPeers(host: string, monitorPort: number, name: string): Promise<number> {
  const r = await fetch(`http://${host}:${monitorPort}/jsz`, { signal: AbortSignal.timeout(1000) });
  const jsz = await r.json() as {
    meta_cluster?: { leader?: string; replicas?: { current?: boolean }[] };
  };
  const meta = jsz.meta_cluster;
  if (!meta?.leader || meta.leader !== name) return 0;
  return 1 + (meta.replicas ?? []).filter((p) => p.current).length;
}

/** JetStream answers account info (a meta leader is elected and this node is current). */
async function jetStreamAnswers(host: string, port: number): Promise<boolean> {
  const nc = await natsConnect({ servers: `${host}:${port}`, timeout: 1000, reconnect: false });
  try {
    const jsm = await jetstreamManager(nc, { timeout: 1000 });
    await jsm.getAccountInfo();
    return true;
  } finally {
    await nc.close();
  }
}

async function waitForPort(host: string, port: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      const c = await Deno.connect({ hostname: host, port });
      c.close();
      return;
    } catch {
      if (Date.now() > until) throw new Error(`no listener on ${host}:${port} within ${ms}ms`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}
