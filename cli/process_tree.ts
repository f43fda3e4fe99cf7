/**
 * Commands that `mq work` runs: spawned in a process group of their own where
 * a terminal could signal them behind mq's back, and stopped as a whole tree
 * (the command and whatever it started), so that a `sh -c 'sleep 60; ...'`
 * leaves no `sleep` behind.
 *
 * A group of its own costs a second exec per run (`setsid`, or a fork of the
 * whole Deno process with `detached`), about doubling the cost of spawning a
 * short command. So it is used only when mq runs on a terminal, where Ctrl-C
 * sends SIGINT to the whole foreground group: there it must reach mq alone,
 * which then decides. Elsewhere a signal reaches mq alone anyway, and the
 * tree is found through `/proc` (or `ps`) when it has to be killed.
 *
 * @module
 */

import { MqError } from "../core/errors.ts";

/** A command started by {@link spawnCommand}. */
export interface RunningCommand {
  /** The process. */
  readonly child: Deno.ChildProcess;
  /** Whether it leads a process group (and session) of its own. */
  readonly ownGroup: boolean;
  /** Set once its status is known (its pid may then belong to another process). */
  ended: boolean;
  /**
   * With `keepStderr`: the last lines of what the command wrote to stderr
   * (at most that many bytes), once it ended (or shortly after: a process it
   * left running may hold the pipe open).
   */
  stderrTail?: () => Promise<string>;
}

/** What to spawn. */
export interface SpawnOptions {
  /** The command's arguments. */
  args: string[];
  /** Its environment, added to mq's. */
  env: Record<string, string>;
  /** Run it in a process group and session of its own. */
  ownGroup: boolean;
  /**
   * Pass its stderr through to mq's and keep the last this many bytes of it
   * (see {@link RunningCommand.stderrTail}).
   */
  keepStderr?: number;
  /** Its stdout: mq's own (default), or a pipe for mq to read. */
  stdout?: "inherit" | "piped";
}

let setsid: Promise<string | undefined> | undefined;

/** True when a terminal may send signals to mq's whole process group. */
export function onTerminal(): boolean {
  return Deno.stdin.isTerminal() || Deno.stdout.isTerminal() || Deno.stderr.isTerminal();
}

/** Spawns `path` with the payload to come on a piped stdin; output goes to mq's. */
export async function spawnCommand(path: string, options: SpawnOptions): Promise<RunningCommand> {
  const common = {
    stdin: "piped",
    stdout: options.stdout ?? "inherit",
    stderr: options.keepStderr ? "piped" : "inherit",
    env: options.env,
  } as const;
  let child: Deno.ChildProcess;
  if (!options.ownGroup) {
    child = new Deno.Command(path, { ...common, args: options.args }).spawn();
  } else {
    // `setsid PROG` calls setsid(2) and execs PROG: same pid, now leading its
    // own group. Where it is missing, Deno's `detached` does the same (slower).
    const via = await (setsid ??= findExecutable("setsid"));
    child = via
      ? new Deno.Command(via, { ...common, args: [path, ...options.args] }).spawn()
      : new Deno.Command(path, { ...common, args: options.args, detached: true }).spawn();
  }
  const run: RunningCommand = { child, ownGroup: options.ownGroup, ended: false };
  const ended = () => void (run.ended = true);
  child.status.then(ended, ended);
  if (options.keepStderr) run.stderrTail = passStderr(child, options.keepStderr);
  return run;
}

/** How long the stderr of a command that ended may stay open (held by what it left running). */
const STDERR_LINGER_MS = 200;

/**
 * Copies the child's stderr to mq's, keeping its last `keep` bytes. The copy
 * stops soon after the child ends, also when a process it left running holds
 * the pipe open (that would keep mq from exiting).
 */
function passStderr(child: Deno.ChildProcess, keep: number): () => Promise<string> {
  const reader = child.stderr.getReader();
  let tail = new Uint8Array(0);
  const pump = (async () => {
    try {
      while (true) {
        const { value, done } = await reader.read();
        if (done) return;
        let n = 0;
        while (n < value.length) n += await Deno.stderr.write(value.subarray(n));
        const joined = new Uint8Array(Math.min(keep, tail.length + value.length));
        const fromValue = Math.min(value.length, joined.length);
        joined.set(tail.subarray(tail.length - (joined.length - fromValue)), 0);
        joined.set(value.subarray(value.length - fromValue), joined.length - fromValue);
        tail = joined;
      }
    } catch {
      // The pipe closed under us: keep what was read.
    }
  })();
  const stopped = child.status.catch(() => {}).then(async () => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const linger = new Promise<void>((resolve) => timer = setTimeout(resolve, STDERR_LINGER_MS));
    await Promise.race([pump, linger]);
    clearTimeout(timer);
    await reader.cancel().catch(() => {});
  });
  return async () => {
    await stopped;
    return lastLines(tail, keep);
  };
}

/**
 * The text of `bytes`, the end of a longer output: when it was cut (it holds
 * `keep` bytes), from its first whole line on; without a final newline.
 *
 * @example
 * ```ts
 * import { lastLines } from "./process_tree.ts";
 * lastLines(new TextEncoder().encode("ut line\nlast\n"), 13); // "last"
 * ```
 */
export function lastLines(bytes: Uint8Array, keep: number): string {
  let start = 0;
  if (bytes.length >= keep) {
    const nl = bytes.indexOf(10);
    if (nl >= 0 && nl < bytes.length - 1) start = nl + 1;
  }
  return new TextDecoder().decode(bytes.subarray(start)).replace(/\r?\n$/, "");
}

/**
 * Sends `signal` to the command, its process group (when it has one) and
 * every process it started that is still its descendant.
 */
export async function signalTree(run: RunningCommand, signal: Deno.Signal): Promise<void> {
  if (run.ended) return;
  const pid = run.child.pid;
  const below = await descendants(pid);
  if (run.ended) return;
  if (run.ownGroup) {
    try {
      Deno.kill(-pid, signal);
    } catch { /* no group yet (setsid not run yet) or gone */ }
  }
  try {
    run.child.kill(signal);
  } catch { /* gone */ }
  for (const p of below) {
    try {
      Deno.kill(p, signal);
    } catch { /* gone */ }
  }
}

/** The pids below `root` in the process tree (none where it cannot be read). */
async function descendants(root: number): Promise<number[]> {
  const parents = (await fromProc()) ?? (await fromPs()) ?? new Map<number, number>();
  const children = new Map<number, number[]>();
  for (const [pid, ppid] of parents) {
    let xs = children.get(ppid);
    if (!xs) children.set(ppid, xs = []);
    xs.push(pid);
  }
  const out: number[] = [];
  const todo = [root];
  while (todo.length > 0) {
    for (const c of children.get(todo.pop()!) ?? []) {
      out.push(c);
      todo.push(c);
    }
  }
  return out;
}

/** pid → parent pid from `/proc` (Linux). */
async function fromProc(): Promise<Map<number, number> | undefined> {
  const out = new Map<number, number>();
  try {
    for await (const e of Deno.readDir("/proc")) {
      if (!/^\d+$/.test(e.name)) continue;
      try {
        const stat = await Deno.readTextFile(`/proc/${e.name}/stat`);
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        out.set(Number(e.name), ppid);
      } catch { /* gone meanwhile */ }
    }
  } catch {
    return undefined;
  }
  return out;
}

/** pid → parent pid from `ps` (where there is no `/proc`). */
async function fromPs(): Promise<Map<number, number> | undefined> {
  try {
    const r = await new Deno.Command("ps", {
      args: ["-A", "-o", "pid=,ppid="],
      stdout: "piped",
      stderr: "null",
    }).output();
    if (!r.success) return undefined;
    const out = new Map<number, number>();
    for (const line of new TextDecoder().decode(r.stdout).split("\n")) {
      const [pid, ppid] = line.trim().split(/\s+/).map(Number);
      if (pid > 0) out.set(pid, ppid);
    }
    return out;
  } catch {
    return undefined;
  }
}

/** Where `name` is on the PATH (or itself, with a slash), or undefined. */
export async function findExecutable(name: string): Promise<string | undefined> {
  const isExec = async (p: string) => {
    try {
      const st = await Deno.stat(p);
      return st.isFile && ((st.mode ?? 0o111) & 0o111) !== 0;
    } catch {
      return false;
    }
  };
  if (name.includes("/")) return (await isExec(name)) ? name : undefined;
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir && (await isExec(`${dir}/${name}`))) return `${dir}/${name}`;
  }
  return undefined;
}

/**
 * Where the command `name` is, for `mq work` and `mq reply`.
 *
 * @throws {MqError} `INVALID_ARGUMENT` (exit 2) when it is not found, before anything is taken
 */
export async function requireExecutable(name: string): Promise<string> {
  const path = await findExecutable(name);
  if (!path) {
    throw new MqError(
      "INVALID_ARGUMENT",
      `command ${JSON.stringify(name)} not found (looked in PATH)`,
    );
  }
  return path;
}
