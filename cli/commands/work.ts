/** `mq work`: run a command once per message, with retries and dead letters. */
import type { Command } from "commander";
import { MqError } from "../../core/errors.ts";
import { assertName } from "../../core/names.ts";
import { parseDuration } from "../../core/duration.ts";
import { parseBackoff } from "../../core/retry.ts";
import type { Message } from "../../core/message.ts";
import { globals, note, openBackend, wholeNumber } from "../runtime.ts";
import { Progress } from "../progress.ts";

interface WorkOptions {
  group: string;
  concurrency: number;
  maxAttempts?: number;
  backoff: string;
  visibility: string;
  ordered?: boolean;
  exit?: boolean;
  count?: number;
  grace: string;
}

const EXAMPLES = `
Examples:
  mq work jobs -- ./handle.sh                 one run per message, payload on stdin
  mq work jobs -c 4 -e -- python3 job.py      four at a time, exit when drained
  mq work mail --max-attempts 3 --backoff 5s,5m -- ./send.sh
  mq work jobs --visibility 30s -- ./slow.sh  kill and retry a run that takes longer

The command gets the payload on stdin and MQ_TOPIC, MQ_GROUP, MQ_ID, MQ_OFFSET,
MQ_PARTITION, MQ_KEY, MQ_ATTEMPT and MQ_HEADER_<NAME> in its environment. Exit 0
acks; any other exit retries after the backoff; after --max-attempts the message
moves to the dead-letter topic (<topic>.dlq, see mq dlq). On SIGINT/SIGTERM mq
stops taking, lets running commands finish (for --grace), releases the rest
unharmed, and exits 0.`;

/** Adds `work` to the program. */
export function registerWork(program: Command): void {
  program
    .command("work")
    .summary("run a command per message, with retries and dead letters")
    .description("Run COMMAND once per message of a group, the payload on its stdin.")
    .argument("<topic>", "topic to work on")
    .argument("<command...>", "the command and its arguments (after --)")
    .option("-g, --group <group>", "the group whose messages to work on", "default")
    .option("-c, --concurrency <n>", "commands running at once", wholeNumber("--concurrency", 1), 1)
    .option(
      "--max-attempts <n>",
      "attempts before a message is dead-lettered (default: the topic's, 5)",
      wholeNumber("--max-attempts", 1),
    )
    .option(
      "--backoff <dur[,max]>",
      "delay before a retry, doubling up to max, with jitter",
      "1s,1m",
    )
    .option("--visibility <dur>", "a run that takes longer is killed and retried", "5m")
    .option("--ordered", "at most one message per key in flight (per-key order, keys in parallel)")
    .option("-e, --exit", "exit when the topic is drained and nothing is in flight")
    .option("-n, --count <n>", "stop after N messages", wholeNumber("--count", 1))
    .option("--grace <dur>", "on SIGINT/SIGTERM, how long running commands may finish", "10s")
    .addHelpText("after", EXAMPLES)
    .action(async (topic: string, command: string[], opts: WorkOptions, cmd: Command) => {
      await runWork(cmd, topic, command, opts);
    });
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

function envFor(m: Message, group: string): Record<string, string> {
  const env: Record<string, string> = {
    MQ_TOPIC: m.topic,
    MQ_GROUP: group,
    MQ_ID: m.id,
    MQ_OFFSET: String(m.offset),
    MQ_PARTITION: String(m.partition),
    MQ_KEY: m.key ?? "",
    MQ_ATTEMPT: String(m.attempt),
  };
  for (const [k, v] of Object.entries(m.headers)) {
    env[`MQ_HEADER_${k.toUpperCase().replace(/[^A-Z0-9_]/g, "_")}`] = v;
  }
  return env;
}

async function runWork(
  cmd: Command,
  topic: string,
  command: string[],
  opts: WorkOptions,
): Promise<void> {
  assertName("topic", topic);
  assertName("group", opts.group);
  const backoff = parseBackoff(opts.backoff);
  const visibilityMs = parseDuration(opts.visibility);
  const graceMs = parseDuration(opts.grace);
  const [program, ...args] = command;
  const path = await findExecutable(program);
  if (!path) {
    throw new MqError(
      "INVALID_ARGUMENT",
      `command ${JSON.stringify(program)} not found (looked in PATH)`,
    );
  }

  const { mq } = await openBackend(cmd);
  const config = await mq.topicConfig(topic);
  const maxAttempts = opts.maxAttempts ?? config?.maxAttempts ?? 5;
  const stop = new AbortController();
  let stopping = false;
  const onSignal = () => {
    if (stopping) return;
    stopping = true;
    stop.abort();
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);

  const progress = new Progress(!globals(cmd).quiet && Deno.stderr.isTerminal(), "work");
  const stats = { acked: 0, failed: 0, dead: 0 };
  const children = new Map<Deno.ChildProcess, Message>();
  const running = new Set<Promise<void>>();
  const sub = mq.subscribe(topic, {
    group: opts.group,
    follow: !opts.exit,
    count: opts.count,
    visibilityMs,
    maxAttempts,
    backoff,
    ordered: opts.ordered,
    signal: stop.signal,
  });

  const runOne = async (m: Message) => {
    const child = new Deno.Command(path, {
      args,
      stdin: "piped",
      stdout: "inherit",
      stderr: "inherit",
      env: envFor(m, opts.group),
    }).spawn();
    children.set(child, m);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }, visibilityMs);
    try {
      const w = child.stdin.getWriter();
      await w.write(m.payload).catch(() => {});
      await w.close().catch(() => {});
      const status = await child.status;
      if (stopping && status.signal !== null && !timedOut) return; // released at close
      if (status.success) {
        m.ack();
        stats.acked++;
      } else {
        const reason = timedOut
          ? `killed after the visibility timeout (${opts.visibility})`
          : status.signal
          ? `killed by ${status.signal}`
          : `exit code ${status.code}`;
        if (m.attempt >= maxAttempts) stats.dead++;
        stats.failed++;
        m.nack({ reason });
      }
    } finally {
      clearTimeout(timer);
      children.delete(child);
      progress.update(stats.acked, stats.failed, running.size);
    }
  };

  // Claim ahead of the free slots (one state write per batch), keep the
  // leases of what waits fresh, and commit acks often.
  const prefetch = Math.max(opts.concurrency * 8, 16);
  const queue: Message[] = [];
  const heartbeat = setInterval(
    () => void sub.extend().catch(() => {}),
    Math.max(100, visibilityMs / 3),
  );
  const committer = setInterval(() => void sub.commit().catch(() => {}), 250);
  try {
    while (!stopping) {
      if (running.size >= opts.concurrency) {
        await Promise.race(running);
        continue;
      }
      if (queue.length === 0) {
        const batch = await sub.take(
          opts.count === undefined ? prefetch : Math.min(prefetch, opts.count),
        );
        if (batch === null) break;
        queue.push(...batch);
        continue;
      }
      const m = queue.shift()!;
      const p = runOne(m).finally(() => running.delete(p));
      running.add(p);
    }
    if (stopping && running.size > 0) {
      const deadline = new Promise((r) => setTimeout(r, graceMs));
      await Promise.race([Promise.all(running), deadline]);
      for (const child of children.keys()) {
        try {
          child.kill("SIGTERM");
        } catch { /* gone */ }
      }
    }
    await Promise.all(running);
  } finally {
    clearInterval(heartbeat);
    clearInterval(committer);
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    await sub.close();
    await mq.close();
    progress.done();
  }
  if (!globals(cmd).quiet) {
    note(
      `mq: work on "${topic}": ${stats.acked} acked, ${stats.failed} failed attempt${
        stats.failed === 1 ? "" : "s"
      }, ${stats.dead} dead-lettered`,
    );
  }
}
