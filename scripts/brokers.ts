/**
 * Test brokers: start a private `nats-server` (JetStream, temporary store) or
 * `mosquitto` on a free loopback port, and stop it. Where the binary is
 * missing, `available()` says why; under `CI=true` a missing broker is a
 * failure rather than a skip.
 *
 * @module
 */

/** A running broker. */
export interface Broker {
  /** Its URL, e.g. `nats://127.0.0.1:41234`. */
  url: string;
  /** Its port. */
  port: number;
  /** Stops it (SIGTERM, then SIGKILL) and removes its store unless `keepStore`. */
  stop(options?: { keepStore?: boolean }): Promise<void>;
  /** Starts it again on the same port and store (after `stop({ keepStore: true })`). */
  restart(): Promise<void>;
}

const BINARIES: Record<string, string[]> = {
  "nats-server": ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"],
  mosquitto: ["/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"],
  "redis-server": [
    "/usr/bin/redis-server",
    "/usr/local/bin/redis-server",
    "/usr/sbin/redis-server",
  ],
  "redis-cli": ["/usr/bin/redis-cli", "/usr/local/bin/redis-cli"],
  mosquitto_sub: ["/usr/bin/mosquitto_sub", "/usr/local/bin/mosquitto_sub"],
  mosquitto_pub: ["/usr/bin/mosquitto_pub", "/usr/local/bin/mosquitto_pub"],
  "rabbitmq-server": ["/usr/lib/rabbitmq/bin/rabbitmq-server"],
  kcat: ["/usr/bin/kcat", "/usr/local/bin/kcat"],
  openssl: ["/usr/bin/openssl", "/usr/local/bin/openssl"],
};

/** The path of a broker binary, or undefined. */
export function findBinary(name: string): string | undefined {
  for (const p of BINARIES[name] ?? []) {
    try {
      if (Deno.statSync(p).isFile) return p;
    } catch { /* next */ }
  }
  return undefined;
}

const skipNoted = new Set<string>();

/**
 * Whether tests needing `name` can run: `{ ok: true }`, or the reason to skip,
 * which is also printed (once per process and broker). Under `CI=true` a
 * missing binary throws instead.
 */
export function available(name: string): { ok: true } | { ok: false; reason: string } {
  if (findBinary(name)) return { ok: true };
  const missing = `${name} is not installed (apt-get install ${name})`;
  if (Deno.env.get("CI") === "true") {
    throw new Error(`CI=true: ${missing}, and tests need it`);
  }
  const reason = `${missing}; skipping tests that need it`;
  if (!skipNoted.has(name)) {
    skipNoted.add(name);
    console.error(`note: ${reason}`);
  }
  return { ok: false, reason };
}

/**
 * A free loopback TCP port below the kernel's range of ephemeral ports
 * (`/proc/sys/net/ipv4/ip_local_port_range`), for a server that is stopped
 * and started again on the same port: a port from {@link freePort} may be
 * taken meanwhile as the source port of any outgoing connection (a restarted
 * cluster node then fails with "address already in use"); one below the
 * range never is.
 */
export function restartablePort(): number {
  let low = 32768;
  try {
    low = Number(Deno.readTextFileSync("/proc/sys/net/ipv4/ip_local_port_range").split(/\s+/)[0]) ||
      low;
  } catch { /* not Linux: the usual range */ }
  const from = Math.max(1024, low - 12_000);
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = from + Math.floor(Math.random() * (low - from));
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
      return port;
    } catch { /* taken: try another */ }
  }
  return freePort();
}

/** A free loopback TCP port. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function waitForPort(port: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      c.close();
      return;
    } catch {
      if (Date.now() > until) {
        throw new Error(`broker did not listen on 127.0.0.1:${port} within ${ms}ms`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

/** Options of {@link startNats}. */
export interface NatsOptions {
  /**
   * More nats-server configuration (authorization, tls, accounts, ...), added
   * to a file that sets the port and the JetStream store.
   */
  config?: string;
  /** Start without JetStream. @default false */
  noJetStream?: boolean;
}

/**
 * Starts a nats-server with JetStream on a free loopback port and a temporary
 * store (removed by `stop()`); `config` adds to its configuration file.
 */
export async function startNats(options: NatsOptions = {}): Promise<Broker> {
  const bin = findBinary("nats-server");
  if (!bin) throw new Error("nats-server is not installed");
  const port = freePort();
  const store = await Deno.makeTempDir({ prefix: "mq-nats-" });
  const conf = `${store}/nats.conf`;
  await Deno.writeTextFile(
    conf,
    [
      `listen: "127.0.0.1:${port}"`,
      options.noJetStream ? "" : `jetstream { store_dir: ${JSON.stringify(`${store}/js`)} }`,
      options.config ?? "",
    ].join("\n") + "\n",
  );
  let child: Deno.ChildProcess | undefined;
  const start = async () => {
    const c = child = new Deno.Command(bin, {
      args: ["-c", conf, "-l", `${store}/nats.log`],
      stdout: "null",
      stderr: "null",
    }).spawn();
    // A bad configuration ends the server at once: say why rather than wait.
    const exited = c.status.then(async (s) => {
      const log = await Deno.readTextFile(`${store}/nats.log`).catch(() => "");
      throw new Error(`nats-server exited (code ${s.code}): ${log.trim().split("\n").at(-1)}`);
    });
    exited.catch(() => {});
    await Promise.race([waitForPort(port, 10_000), exited]);
  };
  const stop = async () => {
    if (!child) return;
    const c = child;
    child = undefined;
    try {
      c.kill("SIGTERM");
    } catch { /* gone */ }
    const timer = setTimeout(() => {
      try {
        c.kill("SIGKILL");
      } catch { /* gone */ }
    }, 3000);
    await c.status;
    clearTimeout(timer);
  };
  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    async stop(options) {
      await stop();
      if (!options?.keepStore) await Deno.remove(store, { recursive: true }).catch(() => {});
    },
    restart: start,
  };
}

/** Options of {@link startMosquitto}. */
export interface MosquittoOptions {
  /** Keep sessions and queued messages in a store (saved on stop, loaded on start). @default false */
  persistence?: boolean;
  /** More mosquitto configuration lines. */
  config?: string;
}

/**
 * Starts a mosquitto on a free loopback port (anonymous access); with
 * `persistence`, its store is a temporary folder that `stop({ keepStore: true })`
 * keeps for a `restart()`.
 */
export async function startMosquitto(options: MosquittoOptions = {}): Promise<Broker> {
  const bin = findBinary("mosquitto");
  if (!bin) throw new Error("mosquitto is not installed");
  const port = freePort();
  const dir = await Deno.makeTempDir({ prefix: "mq-mosquitto-" });
  // Started as root, mosquitto drops to its own user: the store must be theirs
  // to write too, or nothing is saved on stop (and a restart loses every session).
  if (options.persistence) await Deno.chmod(dir, 0o777);
  await Deno.writeTextFile(
    `${dir}/m.conf`,
    [
      `listener ${port} 127.0.0.1`,
      "allow_anonymous true",
      options.persistence ? `persistence true\npersistence_location ${dir}/` : "persistence false",
      options.config ?? "",
    ].join("\n") + "\n",
  );
  let child: Deno.ChildProcess | undefined;
  const start = async () => {
    const c = child = new Deno.Command(bin, {
      args: ["-c", `${dir}/m.conf`],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const exited = c.status.then((s) => {
      throw new Error(`mosquitto exited (code ${s.code})`);
    });
    exited.catch(() => {});
    await Promise.race([waitForPort(port, 10_000), exited]);
  };
  const stop = async () => {
    if (!child) return;
    const c = child;
    child = undefined;
    try {
      c.kill("SIGTERM");
    } catch { /* gone */ }
    await c.status;
  };
  await start();
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    async stop(opts) {
      await stop();
      if (!opts?.keepStore) await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
    restart: start,
  };
}

/** Options of {@link startRedis}. */
export interface RedisOptions {
  /** More `redis-server` arguments (`["--requirepass", "s3cret"]`). */
  args?: string[];
}

/**
 * Starts a redis-server on a free loopback port with a temporary store (an
 * append-only file, so that `stop({ keepStore: true })` then `restart()`
 * keeps the streams and groups).
 */
export async function startRedis(options: RedisOptions = {}): Promise<Broker> {
  const bin = findBinary("redis-server");
  if (!bin) throw new Error("redis-server is not installed");
  const port = freePort();
  const dir = await Deno.makeTempDir({ prefix: "mq-redis-" });
  let child: Deno.ChildProcess | undefined;
  const start = async () => {
    const c = child = new Deno.Command(bin, {
      args: [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        dir,
        "--save",
        "",
        "--appendonly",
        "yes",
        "--logfile",
        `${dir}/redis.log`,
        ...(options.args ?? []),
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const exited = c.status.then(async (s) => {
      const log = await Deno.readTextFile(`${dir}/redis.log`).catch(() => "");
      throw new Error(`redis-server exited (code ${s.code}): ${log.trim().split("\n").at(-1)}`);
    });
    exited.catch(() => {});
    await Promise.race([waitForPort(port, 10_000), exited]);
  };
  const stop = async () => {
    if (!child) return;
    const c = child;
    child = undefined;
    try {
      c.kill("SIGTERM");
    } catch { /* gone */ }
    const timer = setTimeout(() => {
      try {
        c.kill("SIGKILL");
      } catch { /* gone */ }
    }, 5000);
    await c.status;
    clearTimeout(timer);
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async stop(opts) {
      await stop();
      if (!opts?.keepStore) await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
    restart: start,
  };
}

/** Where the RabbitMQ server's own start script lives (not the Debian wrapper, which changes user). */
const RABBITMQ_BIN = "/usr/lib/rabbitmq/bin";

/** A running RabbitMQ node of a test. */
export interface RabbitBroker extends Broker {
  /** Runs `rabbitmqctl` against this node; resolves to its stdout (throws on a non-zero exit). */
  ctl(...args: string[]): Promise<string>;
  /** Kills the node at once (SIGKILL to its process group), keeping its store. */
  kill(): Promise<void>;
}

/**
 * Starts a private RabbitMQ node (AMQP 0-9-1) on a free loopback port with a
 * temporary store, its own Erlang distribution port and its own epmd (so the
 * machine's node on 5672 is never touched); user `guest`/`guest` on vhost `/`.
 * Takes about 5 s on our machines. `stop({ keepStore: true })` then `restart()`
 * brings it back with its durable queues and messages.
 *
 * @example
 * ```ts ignore
 * const rabbit = await startRabbitMq();
 * try { console.log(rabbit.url); } finally { await rabbit.stop(); }
 * ```
 */
export async function startRabbitMq(): Promise<RabbitBroker> {
  const server = `${RABBITMQ_BIN}/rabbitmq-server`;
  try {
    Deno.statSync(server);
  } catch {
    throw new Error("rabbitmq-server is not installed");
  }
  const port = freePort(), dist = freePort(), epmdPort = freePort();
  const dir = await Deno.makeTempDir({ prefix: "mq-rabbit-" });
  const node = `mqtest${port}@localhost`;
  await Deno.mkdir(`${dir}/home`);
  await Deno.writeTextFile(
    `${dir}/rabbitmq.conf`,
    [
      `listeners.tcp.default = 127.0.0.1:${port}`,
      "loopback_users = none",
      "log.console = false",
      "log.file.level = warning",
    ].join("\n") + "\n",
  );
  await Deno.writeTextFile(`${dir}/enabled_plugins`, "[].\n");
  const env: Record<string, string> = {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin:/usr/sbin:/sbin",
    HOME: `${dir}/home`,
    LANG: "C.UTF-8",
    RABBITMQ_NODENAME: node,
    RABBITMQ_NODE_IP_ADDRESS: "127.0.0.1",
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(dist),
    ERL_EPMD_PORT: String(epmdPort),
    ERL_EPMD_ADDRESS: "127.0.0.1",
    RABBITMQ_MNESIA_BASE: `${dir}/mnesia`,
    RABBITMQ_LOG_BASE: `${dir}/log`,
    RABBITMQ_CONFIG_FILE: `${dir}/rabbitmq.conf`,
    RABBITMQ_ENABLED_PLUGINS_FILE: `${dir}/enabled_plugins`,
    RABBITMQ_PID_FILE: `${dir}/rabbit.pid`,
  };
  // Our own epmd, in the foreground, so that it is ours to stop.
  const epmd = new Deno.Command("/usr/bin/epmd", {
    args: ["-port", String(epmdPort), "-address", "127.0.0.1"],
    env,
    clearEnv: true,
    stdout: "null",
    stderr: "null",
  }).spawn();
  await waitForPort(epmdPort, 10_000);
  let child: Deno.ChildProcess | undefined;
  const start = async () => {
    const c = child = new Deno.Command(server, {
      env,
      clearEnv: true,
      stdout: "null",
      stderr: "null",
      detached: true,
    }).spawn();
    const exited = c.status.then((s) => {
      throw new Error(`rabbitmq-server exited (code ${s.code}); see ${dir}/log`);
    });
    exited.catch(() => {});
    try {
      await Promise.race([waitForPort(port, 120_000), exited]);
    } catch (e) {
      const log = await Deno.readTextFile(`${dir}/log/${node}.log`).catch(() => "");
      throw new Error(
        `${(e as Error).message}; its log ends: ${log.trim().split("\n").slice(-5).join(" | ")}`,
      );
    }
  };
  const ctl = async (...args: string[]) => {
    const out = await new Deno.Command(`${RABBITMQ_BIN}/rabbitmqctl`, {
      args: ["-n", node, ...args],
      env,
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    if (!out.success) {
      throw new Error(`rabbitmqctl ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
    }
    return text;
  };
  const stopNode = async (signal: Deno.Signal) => {
    if (!child) return;
    const c = child;
    child = undefined;
    try {
      Deno.kill(-c.pid, signal);
    } catch { /* gone */ }
    const timer = setTimeout(() => {
      try {
        Deno.kill(-c.pid, "SIGKILL");
      } catch { /* gone */ }
    }, 15_000);
    await c.status;
    clearTimeout(timer);
    // The node's helpers (erl_child_setup, inet_gethost) are in its group too.
    try {
      Deno.kill(-c.pid, "SIGKILL");
    } catch { /* all gone */ }
  };
  await start();
  return {
    url: `amqp://guest:guest@127.0.0.1:${port}`,
    port,
    ctl,
    kill: () => stopNode("SIGKILL"),
    async stop(options) {
      await stopNode("SIGTERM");
      if (!options?.keepStore) {
        try {
          epmd.kill("SIGTERM");
        } catch { /* gone */ }
        await epmd.status;
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
    },
    restart: start,
  };
}

/** A running Kafka mock cluster (librdkafka's, inside a `kcat` process). */
export interface KafkaMock {
  /** `kafka://127.0.0.1:PORT` */
  url: string;
  /** `127.0.0.1:PORT`, for `kcat -b`. */
  bootstrap: string;
  /** Stops the kcat process that holds the cluster (its topics are gone with it). */
  stop(): Promise<void>;
}

/**
 * Starts librdkafka's mock Kafka cluster (one broker, on a free loopback port
 * of its choosing) inside a `kcat -P` that waits on its stdin for as long as
 * the test runs; topics are created on first use. It speaks the real protocol
 * (produce, fetch, consumer groups, offset commits, idempotent producers),
 * not admin calls or transactions.
 *
 * @example
 * ```ts ignore
 * const kafka = await startKafkaMock();
 * try { console.log(kafka.bootstrap); } finally { await kafka.stop(); }
 * ```
 */
export async function startKafkaMock(): Promise<KafkaMock> {
  const child = new Deno.Command("kcat", {
    args: ["-X", "test.mock.num.brokers=1", "-b", "127.0.0.1:1", "-P", "-t", "mq-mock-keepalive"],
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const found = await (async () => {
    const until = Date.now() + 10_000;
    while (Date.now() < until) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
      const m = /replaced with (127\.0\.0\.1:\d+)/.exec(text);
      if (m) return m[1];
    }
    return undefined;
  })();
  // Keep reading what it says, so that it never blocks on a full pipe.
  (async () => {
    try {
      while (!(await reader.read()).done) { /* drop */ }
    } catch { /* closed */ }
  })();
  const stop = async () => {
    try {
      await child.stdin.close();
    } catch { /* closed */ }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 3000);
    await child.status;
    clearTimeout(timer);
  };
  if (!found) {
    await stop();
    throw new Error(`kcat did not start a mock cluster: ${text.trim()}`);
  }
  await waitForPort(Number(found.split(":")[1]), 10_000);
  return { url: `kafka://${found}`, bootstrap: found, stop };
}
