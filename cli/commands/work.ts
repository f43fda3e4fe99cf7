/** `mq work`: run a command once per message, with retries and dead letters. */
import type { Command } from "commander";
import { assertName } from "../../core/names.ts";
import { parseDuration } from "../../core/duration.ts";
import { parseBackoff } from "../../core/retry.ts";
import type { Message } from "../../core/message.ts";
import { MqError } from "../../core/errors.ts";
import { globals, note, openBackend, wholeNumber } from "../runtime.ts";
import { Progress } from "../progress.ts";
import { WorkOutput } from "./_work_out.ts";
import {
  onTerminal,
  requireExecutable,
  type RunningCommand,
  signalTree,
  spawnCommand,
} from "../process_tree.ts";

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
  prefetch?: number;
  out?: string;
  outKeyFromInput?: boolean;
}

/** After the grace period, how long a command has between SIGTERM and SIGKILL. */
export const KILL_AFTER_MS = 2000;

/**
 * Without `--prefetch`, messages are claimed ahead of the free slots only as
 * far as the slots finish them within about this long (at the mean run time
 * seen so far), so that slow commands are shared among workers, not hoarded.
 */
const AHEAD_MS = 100;

/** A signal that the command most likely got with mq (sent to the whole process group). */
function endedBySignal(status: Deno.CommandStatus): boolean {
  return status.signal !== null || (status.code > 128 && status.code < 160);
}

const EXAMPLES = `
Examples:
  mq work jobs -- ./handle.sh                 one run per message, payload on stdin
  mq work jobs -c 4 -e -- python3 job.py      four at a time, exit when drained
  mq work mail --max-attempts 3 --backoff 5s,5m -- ./send.sh
  mq work jobs --visibility 30s -- ./slow.sh  kill and retry a run that takes longer
  mq work raw --out clean -c 4 -- ./clean.sh  stdout lines become messages of "clean"

The command gets the payload on stdin and MQ_TOPIC, MQ_GROUP, MQ_ID, MQ_OFFSET,
MQ_PARTITION, MQ_KEY, MQ_ATTEMPT and MQ_HEADER_<NAME> in its environment. Exit 0
acks; any other exit retries after the backoff; after --max-attempts the message
moves to the dead-letter topic (<topic>.dlq, see mq dlq). On SIGINT/SIGTERM mq
stops taking and lets running commands finish for --grace; then it stops them
(SIGTERM to the command and what it started, SIGKILL 2s later), releases their
messages without counting an attempt, and exits 0. A second signal ends the
grace at once. On a terminal each command runs in a process group of its own,
so Ctrl-C reaches mq alone.

With --out TOPIC each line the command prints on stdout becomes a message of
TOPIC, and those messages and the input's ack are one transaction: a crash at
any point loses no input and repeats no output (on nats: effectively once, the
outputs' ids derived from the input, deduplicated within TOPIC's dedup window).
--out-key-from-input gives each output the input's key.`;

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
    .option(
      "--prefetch <n>",
      "messages claimed ahead of the free slots (default: what the slots finish in ~100ms)",
      wholeNumber("--prefetch", 0),
    )
    .option(
      "--out <topic>",
      "stdout lines become messages of TOPIC, committed with the input's ack (exactly once)",
    )
    .option("--out-key-from-input", "with --out: each output gets the input's key")
    .addHelpText("after", EXAMPLES)
    .action(async (topic: string, command: string[], opts: WorkOptions, cmd: Command) => {
      await runWork(cmd, topic, command, opts);
    });
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
  if (opts.out !== undefined) assertName("topic", opts.out);
  else if (opts.outKeyFromInput) {
    throw new MqError("INVALID_ARGUMENT", "--out-key-from-input goes with --out TOPIC");
  }
  const backoff = parseBackoff(opts.backoff);
  const visibilityMs = parseDuration(opts.visibility);
  const graceMs = parseDuration(opts.grace);
  const [program, ...args] = command;
  const path = await requireExecutable(program);

  const { mq } = await openBackend(cmd);
  const config = await mq.topicConfig(topic);
  const maxAttempts = opts.maxAttempts ?? config?.maxAttempts ?? 5;
  const output = opts.out === undefined
    ? undefined
    : new WorkOutput(mq, { topic: opts.out, keyFromInput: opts.outKeyFromInput });
  const concurrency = opts.concurrency;
  const ownGroup = onTerminal();

  // Signals: the first stops taking, a second ends the grace period at once.
  const stop = new AbortController();
  const hurry = new AbortController();
  let stopping = false;
  /** Wakes the main loop: a run ended, a claim came back, or a signal came. */
  let wake: (() => void) | undefined;
  const nudge = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const onSignal = () => {
    if (stopping) return hurry.abort();
    stopping = true;
    stop.abort();
    nudge();
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const stopped = aborted(stop.signal);
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(() => (timers.delete(t), resolve()), ms);
      timers.add(t);
    });

  const progress = Progress.start("work", { quiet: globals(cmd).quiet });
  const stats = { acked: 0, failed: 0, dead: 0 };
  /** Commands running, with their message and whether mq stopped them at shutdown. */
  const runs = new Map<RunningCommand, { m: Message; stoppedByUs: boolean }>();
  const running = new Set<Promise<void>>();
  /** Set once the grace period is over: what is still running is stopped. */
  let killing: Deno.Signal | undefined;
  let meanRunMs: number | undefined;
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
    const started = performance.now();
    const run = await spawnCommand(path, {
      args,
      env: envFor(m, opts.group),
      ownGroup,
      stdout: output ? "piped" : "inherit",
    });
    // With --out: all of stdout, read while the command runs.
    const printed = output
      ? new Response(run.child.stdout).arrayBuffer().then((b) => new Uint8Array(b))
      : undefined;
    const entry = { m, stoppedByUs: killing !== undefined };
    runs.set(run, entry);
    if (killing) void signalTree(run, killing);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      void signalTree(run, "SIGKILL");
    }, visibilityMs);
    try {
      const w = run.child.stdin.getWriter();
      await w.write(m.payload).catch(() => {});
      await w.close().catch(() => {});
      const status = await run.child.status;
      const stdout = await printed?.catch(() => new Uint8Array(0));
      const took = performance.now() - started;
      meanRunMs = meanRunMs === undefined ? took : meanRunMs * 0.8 + took * 0.2;
      // Stopped by mq at shutdown and failing for it: released at close, no
      // attempt counted. One that still finished its work (exit 0) is acked.
      if (entry.stoppedByUs && !timedOut && !status.success) return;
      if (!status.success && !timedOut && endedBySignal(status)) {
        // A signal to the whole process group (Ctrl-C, a supervisor) reaches
        // mq too; give it a moment to arrive before counting a failure.
        if (!stopping) await Promise.race([stopped, sleep(250)]);
        if (stopping) return;
      }
      let invalid: string | undefined;
      if (status.success && output) {
        // The slot is free at once; the commit (with others) follows.
        const r = await output.add(m, stdout!);
        if ("invalid" in r) invalid = r.invalid;
        else {
          void r.committed.then((ok) => {
            if (ok) stats.acked++;
            progress.update(stats.acked, stats.failed, running.size);
            nudge();
          });
        }
      } else if (status.success) {
        m.ack();
        stats.acked++;
      }
      if (invalid !== undefined) {
        if (m.attempt >= maxAttempts) stats.dead++;
        stats.failed++;
        m.nack({ reason: invalid });
      } else if (!status.success) {
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
      runs.delete(run);
    }
  };
  const start = (m: Message) => {
    const p = runOne(m).catch((e) => void (failure ??= { error: e })).finally(() => {
      running.delete(p);
      progress.update(stats.acked, stats.failed, running.size);
      nudge();
    });
    running.add(p);
  };

  // Claim for the free slots, and ahead of them only as far as a fixed
  // --prefetch or about AHEAD_MS of work at the mean run time: fast commands
  // get batches (one state write each, acks included), slow ones are shared
  // with the group's other workers. The next claim is made while half of what
  // was claimed ahead still waits. Leases of what waits are kept fresh.
  const ahead = () =>
    opts.prefetch ??
      (meanRunMs === undefined
        ? 0
        : Math.min(concurrency * 64, Math.floor(concurrency * AHEAD_MS / Math.max(meanRunMs, 1))));
  const queue: Message[] = [];
  let claiming: Promise<void> | undefined;
  let drained = false;
  let failure: { error: unknown } | undefined;
  const claimMore = () => {
    const extra = ahead();
    const want = concurrency + extra - running.size - queue.length;
    // Claim again once half of what is claimed ahead is used, so that the
    // next batch arrives before the queue runs dry.
    const low = extra > 0 ? Math.max(concurrency, Math.floor(extra / 2)) : 0;
    if (drained || claiming || want <= 0 || queue.length > low) return;
    claiming = sub.take(want).then((batch) => {
      if (batch === null) drained = true;
      else queue.push(...batch);
    }, (e) => {
      failure ??= { error: e };
    }).finally(() => {
      claiming = undefined;
      nudge();
    });
  };
  const heartbeat = setInterval(
    () => void sub.extend().catch(() => {}),
    Math.max(100, visibilityMs / 3),
  );
  const committer = setInterval(() => void sub.commit().catch(() => {}), 250);
  try {
    while (!stopping && !failure && output?.failure === undefined) {
      while (queue.length > 0 && running.size < concurrency) start(queue.shift()!);
      claimMore();
      if (drained && queue.length === 0) break;
      await new Promise<void>((resolve) => wake = resolve);
    }
    if (stopping && running.size > 0) {
      const all = Promise.all(running);
      await Promise.race([all, sleep(graceMs), aborted(hurry.signal)]);
      if (running.size > 0) {
        killing = "SIGTERM";
        for (const [run, entry] of runs) {
          entry.stoppedByUs = true;
          void signalTree(run, killing);
        }
        await Promise.race([all, sleep(KILL_AFTER_MS)]);
        killing = "SIGKILL";
        for (const run of runs.keys()) void signalTree(run, killing);
      }
    }
    await Promise.all(running);
    await output?.drain();
    await claiming; // aborted by the stop, or done
    if (failure) throw failure.error;
    if (output?.failure !== undefined) throw output.failure;
  } finally {
    clearInterval(heartbeat);
    clearInterval(committer);
    for (const t of timers) clearTimeout(t);
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    await sub.close();
    await mq.close();
    progress.done();
  }
  // A summary where the progress line was (a terminal, without -q); nothing elsewhere.
  if (progress.on) {
    note(
      `mq: work on "${topic}": ${stats.acked} acked, ${stats.failed} failed attempt${
        stats.failed === 1 ? "" : "s"
      }, ${stats.dead} dead-lettered`,
    );
  }
}

/** Resolves when `signal` aborts. */
function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}
