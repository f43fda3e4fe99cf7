/** Runs the real `mq` command as a subprocess, with pipes and its own data folder. */

const MAIN = new URL("../../cli/main.ts", import.meta.url).pathname;
const enc = new TextEncoder(), dec = new TextDecoder();

/** The command line that runs mq (as the `mq` task does). */
export const MQ = [
  Deno.execPath(),
  "run",
  "--quiet",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-net",
  "--allow-run",
  MAIN,
];

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
    await w.write(typeof options.stdin === "string" ? enc.encode(options.stdin) : options.stdin);
    await w.close();
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
): Deno.ChildProcess {
  return new Deno.Command(MQ[0], {
    args: [...MQ.slice(1), ...args],
    env: envFor(home),
    clearEnv: true,
    stdin,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
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
