/** `mq work`: run a command once per message, with retries and dead letters. */
import type { Call } from "../definition.ts";
import {
  assertName,
  deadLetterTopic,
  type Message,
  parseBackoff,
  parseDuration,
} from "../../mod.ts";
import { MqError } from "../../core/errors.ts";
import { DLQ_STDERR_BYTES } from "../../core/internal.ts";
import { rideThroughFailures } from "../reconnect.ts";
import { globals, note, openBackend } from "../runtime.ts";
import { Progress } from "../progress.ts";
import { WorkOutput } from "./_work_out.ts";
import {
  onTerminal,
  requireExecutable,
  type RunningCommand,
  signalTree,
  spawnCommand,
} from "../process_tree.ts";

/** The options of `mq work`, as parsed. */
export interface WorkOptions {
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

/**
 * `mq work <topic> -- COMMAND...` with its options as parsed (see
 * `cli/definitions/work.ts`).
 */
export async function workCommand(
  topic: string,
  command: string[],
  opts: WorkOptions,
  cmd: Call,
): Promise<void> {
  await runWork(cmd, topic, command, opts);
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
  cmd: Call,
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
  rideThroughFailures(mq, {
    follow: !opts.exit && opts.count === undefined,
    quiet: globals(cmd).quiet,
  });
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
      // Only the last attempt's stderr goes with a dead letter: the others pass straight through.
      keepStderr: m.attempt >= maxAttempts ? DLQ_STDERR_BYTES : undefined,
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
        const last = m.attempt >= maxAttempts;
        if (last) stats.dead++;
        stats.failed++;
        m.nack({ reason: invalid, stderr: last ? await run.stderrTail?.() : undefined });
      } else if (!status.success) {
        const reason = timedOut
          ? `killed after the visibility timeout (${opts.visibility})`
          : status.signal
          ? `killed by ${status.signal}`
          : `exit code ${status.code}`;
        const last = m.attempt >= maxAttempts;
        if (last) stats.dead++;
        stats.failed++;
        m.nack({ reason, stderr: last ? await run.stderrTail?.() : undefined });
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
  // A summary (on a terminal or not), unless -q.
  if (!globals(cmd).quiet) {
    note(
      `mq: work on "${topic}": ${stats.acked} done, ${
        stats.failed - stats.dead
      } retried, ${stats.dead} dead-lettered`,
    );
  }
  // As xargs: a run that stops by itself (-e, -n) fails when a message failed for good.
  if ((opts.exit || opts.count !== undefined) && stats.dead > 0) {
    throw new MqError(
      "DEAD_LETTERED",
      `${stats.dead} message${
        stats.dead === 1 ? "" : "s"
      } of "${topic}" went to the dead-letter topic "${
        deadLetterTopic(topic, config?.dlq)
      }" (see mq dlq ls ${topic})`,
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
