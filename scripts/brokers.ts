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
