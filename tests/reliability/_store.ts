/**
 * Helpers of the reliability tests: the files of a test's fs store, damage to
 * them, and a run of mq with a deadline (a drain that never ends fails the
 * test instead of hanging it).
 */
import { envFor, MQ, type Result } from "../cli/_mq.ts";

const enc = new TextEncoder(), dec = new TextDecoder();

/** The data folder of a test's default `file:` store. */
export function dataDir(home: string): string {
  return `${home}/data`;
}

/** The first segment of partition 0 of `topic`. */
export function segmentOf(home: string, topic: string, partition = 0): string {
  return `${dataDir(home)}/log/${topic}/${partition}/${"0".padStart(20, "0")}.log`;
}

/** A group's state file. */
export function groupDoc(home: string, topic: string, group: string): string {
  return `${dataDir(home)}/state/groups/${topic}/${group}.doc`;
}

/** Flips bit `bit` of the byte at `at` (negative: from the end). */
export async function flipByte(path: string, at: number, bit = 0): Promise<number> {
  const bytes = await Deno.readFile(path);
  const pos = at < 0 ? bytes.length + at : at;
  bytes[pos] ^= 1 << bit;
  await Deno.writeFile(path, bytes);
  return pos;
}

/** Runs mq, killed (and failing the test) when it takes longer than `ms`. */
export async function mqWithin(
  home: string,
  args: string[],
  ms: number,
  options: { stdin?: string; env?: Record<string, string> } = {},
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
    // A command that stops early (a full disk) closes its stdin: not an error here.
    const w = child.stdin.getWriter();
    await w.write(enc.encode(options.stdin)).then(() => w.close()).catch(() => {});
  }
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, ms);
  const out = await child.output();
  clearTimeout(timer);
  const r = {
    code: out.code,
    stdout: out.stdout,
    out: dec.decode(out.stdout),
    err: dec.decode(out.stderr),
  };
  if (timedOut) {
    throw new Error(`mq ${args.join(" ")} did not end within ${ms}ms; stderr: ${r.err}`);
  }
  return r;
}

/** `n` lines `prefix-0` ... */
export function lines(n: number, prefix = "m", from = 0): string {
  let s = "";
  for (let i = 0; i < n; i++) s += `${prefix}-${from + i}\n`;
  return s;
}

/** Every file under `dir` whose name ends with `suffix`. */
export async function filesEndingWith(dir: string, suffix: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(d));
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isDirectory) await walk(`${d}/${e.name}`);
      else if (e.name.endsWith(suffix)) out.push(`${d}/${e.name}`);
    }
  };
  await walk(dir);
  return out.sort();
}

/** True when `path` exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
