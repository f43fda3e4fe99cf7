/**
 * Helpers of the cluster tests: run mq against a cluster, count what a
 * worker did, and check the invariants after a fault (every message acked
 * once or dead-lettered, none lost, none stored twice, the group drained).
 */
import { deepStrictEqual as eq } from "node:assert/strict";
import { MQ_MAIN } from "./_nats.ts";

const dec = new TextDecoder();

/** Messages a cluster round publishes: 20,000, or fewer in the bounded form. */
export function roundSize(full: number, bounded: number): number {
  return Deno.env.get("MQ_CLUSTER_FULL") === "1" ? full : bounded;
}

/** Runs mq to the end. */
export async function mqRun(
  env: Record<string, string>,
  args: string[],
  stdin?: string,
): Promise<{ code: number; out: string; err: string }> {
  const child = spawnMq(env, args, stdin === undefined ? "null" : "piped");
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const o = await child.output();
  return { code: o.code, out: dec.decode(o.stdout), err: dec.decode(o.stderr) };
}

/** Starts mq. */
export function spawnMq(
  env: Record<string, string>,
  args: string[],
  stdin: "piped" | "null" = "null",
): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "-A", MQ_MAIN, ...args],
    env: { ...env, NO_COLOR: "1" },
    stdin,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** `m-<from>` ... `m-<to-1>`, one a line. */
export function numbered(from: number, to: number): string {
  let s = "";
  for (let i = from; i < to; i++) s += `m-${i}\n`;
  return s;
}

/** Lines of a file (none when it is missing). */
export async function linesOf(path: string): Promise<string[]> {
  const text = await Deno.readTextFile(path).catch(() => "");
  return text.split("\n").filter((l) => l !== "");
}

/** Collects a child's stderr as lines, as they come. */
export function collectStderr(child: Deno.ChildProcess): { lines: string[]; done: Promise<void> } {
  const lines: string[] = [];
  const done = (async () => {
    let rest = "";
    for await (const c of child.stderr) {
      rest += dec.decode(c);
      const parts = rest.split("\n");
      rest = parts.pop()!;
      lines.push(...parts);
    }
    if (rest) lines.push(rest);
  })();
  return { lines, done };
}

/** Waits until `f()` holds, checking every 50 ms; throws after `ms` naming `what`. */
export async function until(f: () => Promise<boolean> | boolean, ms: number, what: string) {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms}ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Checks a drained round: `done` (the payloads the workers acked) and the
 * dead letters hold each of `m-0` ... `m-<n-1>` exactly once together; the
 * topic holds each exactly once (no publish stored twice); the group has
 * nothing left.
 */
export async function assertRound(
  env: Record<string, string>,
  topic: string,
  group: string,
  done: string[],
  n: number,
): Promise<{ dead: number }> {
  const stored = await mqRun(env, ["sub", topic, "-e"]);
  eq(stored.code, 0, stored.err);
  const storedLines = stored.out.split("\n").filter((l) => l !== "");
  eq(countsOf(storedLines, n), { total: n, distinct: n, foreign: 0 }, "what the topic holds");
  const dlq = await mqRun(env, ["sub", `${topic}.dlq`, "-e"]);
  const dead = dlq.code === 0 ? dlq.out.split("\n").filter((l) => l !== "") : [];
  eq(countsOf([...done, ...dead], n), { total: n, distinct: n, foreign: 0 }, "acked + dead");
  const info = await mqRun(env, ["topics", "info", topic, "--json"]);
  eq(info.code, 0, info.err);
  const g = JSON.parse(info.out).groups.find((x: { name: string }) => x.name === group);
  eq({ lag: g.lag, inFlight: g.inFlight }, { lag: 0, inFlight: 0 }, "the group drained");
  return { dead: dead.length };
}

function countsOf(lines: string[], n: number) {
  const seen = new Set<string>();
  let foreign = 0;
  for (const l of lines) {
    const i = /^m-(\d+)$/.test(l) ? Number(l.slice(2)) : -1;
    if (i < 0 || i >= n) foreign++;
    seen.add(l);
  }
  return { total: lines.length, distinct: seen.size, foreign };
}

/** The node names the clients named `name` are connected to, by the node's monitoring port. */
export async function nodesOfClients(
  nodes: { name: string; monitorPort: number; running: boolean }[],
  name: string,
): Promise<string[]> {
  const out: string[] = [];
  for (const n of nodes) {
    if (!n.running) continue;
    const r = await fetch(`http://127.0.0.1:${n.monitorPort}/connz?limit=1000`).catch(() => null);
    if (!r) continue;
    const body = await r.json() as { connections?: { name?: string }[] };
    for (const c of body.connections ?? []) if (c.name === name) out.push(n.name);
  }
  return out;
}
