/**
 * Runs the real `mq` command as a subprocess, with pipes and its own data
 * folder; {@link cliTest} runs a case once per backend (`file:`, `kv:`, and
 * `nats://` on a private nats-server), each with a store of its own.
 */
import { available, type Broker, startNats } from "../../scripts/brokers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const enc = new TextEncoder(), dec = new TextDecoder();

/**
 * The command line that runs mq: exactly the `mq` task of deno.json (what
 * `deno task mq` runs and `deno task install` installs), with `deno` as this
 * Deno and its paths made absolute, so that a test runs what users run from
 * any folder.
 */
export const MQ: string[] = (() => {
  const config = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`));
  const words = (config.tasks.mq as string).trim().split(/\s+/);
  if (words[0] !== "deno" || words[1] !== "run") {
    throw new Error(`the mq task is not a deno run command line: ${config.tasks.mq}`);
  }
  return words.map((w, i) => {
    if (i === 0) return Deno.execPath();
    return /^[\w.][\w./-]*\.(ts|json)$/.test(w) ? `${ROOT}${w}` : w;
  });
})();

/** What a run of mq did. */
export interface Result {
  code: number;
  stdout: Uint8Array;
  out: string;
  err: string;
}

/** The environment of a test's mq: its own data and config folders, no inherited URL or context. */
export function envFor(home: string, extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = { ...Deno.env.toObject() };
  delete env.MQ_URL;
  delete env.MQ_CONTEXT;
  delete env.MQ_ENV;
  // npx sets INIT_CWD for the test runner (`npx deno task test`); `deno task`
  // keeps one that is set, so a child would take the checkout as its caller's folder.
  delete env.INIT_CWD;
  const url = backendUrls.get(home);
  if (url) env.MQ_URL = url;
  return { ...env, MQ_HOME: `${home}/data`, XDG_CONFIG_HOME: `${home}/config`, ...extra };
}

/** Runs `mq args...` with `stdin` (bytes or text). */
export async function mq(
  home: string,
  args: string[],
  options: { stdin?: Uint8Array | string; env?: Record<string, string> } = {},
): Promise<Result> {
  const child = new Deno.Command(MQ[0], {
    args: [...MQ.slice(1), ...args],
    env: envFor(home, options.env),
    clearEnv: true,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const w = child.stdin.getWriter();
    try {
      await w.write(typeof options.stdin === "string" ? enc.encode(options.stdin) : options.stdin);
      await w.close();
    } catch (e) {
      // mq may stop reading before the end (a bad line, a full disk): that is its answer.
      if (!(e instanceof Deno.errors.BrokenPipe)) throw e;
    }
  }
  const out = await child.output();
  return {
    code: out.code,
    stdout: out.stdout,
    out: dec.decode(out.stdout),
    err: dec.decode(out.stderr),
  };
}

/** Spawns mq without waiting (for kill -9 and concurrency cases). */
export function spawnMq(
  home: string,
  args: string[],
  stdin: "piped" | "null" = "null",
  env: Record<string, string> = {},
): Deno.ChildProcess {
  return new Deno.Command(MQ[0], {
    args: [...MQ.slice(1), ...args],
    env: envFor(home, env),
    clearEnv: true,
    stdin,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/**
 * An `mq` on the PATH, as `deno task install` gives users (a shell script
 * running {@link MQ}, in `home/bin`); resolves to the environment whose PATH
 * finds it first (completion scripts call `mq`).
 */
export async function mqOnPath(
  home: string,
  extra: Record<string, string> = {},
): Promise<Record<string, string>> {
  const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  await Deno.mkdir(`${home}/bin`, { recursive: true });
  await Deno.writeTextFile(`${home}/bin/mq`, `#!/bin/sh\nexec ${MQ.map(q).join(" ")} "$@"\n`, {
    mode: 0o755,
  });
  const env = envFor(home, extra);
  return { ...env, PATH: `${home}/bin:${env.PATH ?? "/usr/bin:/bin"}` };
}

/** A temporary folder for one test, removed afterwards. */
export async function withHome(fn: (home: string) => Promise<void>): Promise<void> {
  const home = await Deno.makeTempDir({ prefix: "mq-cli-" });
  try {
    await fn(home);
  } finally {
    await Deno.remove(home, { recursive: true }).catch(() => {});
  }
}

/** The one error line of a failed run. */
export function errorLine(r: Result): string {
  const lines = r.err.trim().split("\n");
  if (lines.length !== 1) {
    throw new Error(`expected one stderr line, got ${lines.length}: ${r.err}`);
  }
  return lines[0];
}

/**
 * Checks that the store of `home` holds no topic: `mq topics --json` prints
 * `[]`; on `kv:`, whose file a reading command does not create, it says the
 * file does not exist (exit 1) and leaves none behind.
 */
export async function assertNoTopics(home: string, backend: Backend): Promise<void> {
  const r = await mq(home, ["topics", "--json"]);
  if (backend !== "kv") {
    if (r.code !== 0 || r.out.trim() !== "[]") {
      throw new Error(`topics: ${r.code} ${r.out} ${r.err}`);
    }
    return;
  }
  const file = `${home}/mq.sqlite`;
  const line =
    `mq: error: Deno KV file ${file} does not exist (a command that writes, such as mq pub, creates it)`;
  if (r.code !== 1 || r.err.trim() !== line) throw new Error(`topics on kv: ${r.code} ${r.err}`);
  if (await Deno.stat(file).then(() => true, () => false)) throw new Error(`${file} was created`);
}

/** A backend the end-to-end cases run on. */
export type Backend = "file" | "kv" | "nats";

/** Every backend a case runs on unless it says otherwise. */
export const ALL_BACKENDS: readonly Backend[] = ["file", "kv", "nats"];

/** The backend URL of each test folder (none: the default `file:$MQ_HOME`). */
const backendUrls = new Map<string, string>();

const nats = (() => {
  try {
    return available("nats-server");
  } catch (e) {
    return { ok: false as const, reason: (e as Error).message, fatal: true };
  }
})();

/**
 * Registers an end-to-end case once per backend, named `cli [backend]: title`.
 * Each run gets a folder of its own (see {@link withHome}) and, through
 * `MQ_URL`, a store of its own: `file:` under the folder, `kv:` in a SQLite
 * file there, `nats://` on a private nats-server started for the case.
 * Commands given an explicit `--url` or `MQ_URL` keep theirs.
 */
export function cliTest(
  title: string,
  fn: (home: string, backend: Backend) => Promise<void>,
  options: { backends?: readonly Backend[] } = {},
): void {
  for (const backend of options.backends ?? ALL_BACKENDS) {
    const skip = backend === "nats" && !nats.ok && !("fatal" in nats) ? nats.reason : undefined;
    Deno.test({
      name: `cli [${backend}]: ${title}`,
      ignore: skip !== undefined,
      sanitizeOps: false,
      sanitizeResources: false,
      fn: () =>
        withHome(async (home) => {
          if (backend === "nats" && !nats.ok) throw new Error(nats.reason);
          let broker: Broker | undefined;
          if (backend === "kv") backendUrls.set(home, `kv:${home}/mq.sqlite`);
          if (backend === "nats") backendUrls.set(home, (broker = await startNats()).url);
          try {
            await fn(home, backend);
          } finally {
            backendUrls.delete(home);
            await broker?.stop();
          }
        }),
    });
  }
}
