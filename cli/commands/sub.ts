/** `mq sub`: print messages of a topic. */
import type { Command } from "commander";
import { MqError } from "../../core/errors.ts";
import { assertName } from "../../core/names.ts";
import { parseDuration } from "../../core/duration.ts";
import { parseStartFrom } from "../../core/start_position.ts";
import { formatterFor } from "../message_format.ts";
import { Output, OutputClosed } from "../output.ts";
import { globals, openBackend, wholeNumber } from "../runtime.ts";
import { Progress } from "../progress.ts";
import { rideThroughFailures } from "../reconnect.ts";

interface SubOptions {
  group?: string;
  from: string;
  exit?: boolean;
  count?: number;
  format: string;
  null?: boolean;
  timeout?: string;
  visibility?: string;
}

const EXAMPLES = `
Examples:
  mq sub orders -e                      print every message there is, then exit
  mq sub orders                         ... and keep following new ones
  mq sub orders --group billing         share work with other members of "billing"
  mq sub orders --from -10m             what arrived in the last ten minutes
  mq sub orders -n 1 --timeout 5s       wait up to 5s for one message (exit 3 if none)
  mq sub orders --format json -e        one JSON envelope per line
  mq sub orders --format '{offset} {key} {payload} {header.trace}'

With --group the group's position moves only after a message was written to
stdout; messages that were not are delivered again.`;

/** Adds `sub` to the program. */
export function registerSub(program: Command): void {
  program
    .command("sub")
    .summary("print messages of a topic")
    .description("Print messages of a topic, from a position or as a member of a group.")
    .argument("<topic>", "topic to read")
    .option(
      "-g, --group <group>",
      "consume as a member of this group (durable position, shared messages)",
    )
    .option(
      "--from <where>",
      "beginning, end, an offset, an ISO time or -DUR (without --group, or for a new group)",
      "beginning",
    )
    .option("-e, --exit", "stop at the end of what is there")
    .option("-n, --count <n>", "stop after N messages", wholeNumber("--count", 1))
    .option("-f, --format <format>", "raw, json, or a template like '{offset} {payload}'", "raw")
    .option("-0, --null", "with raw: end each message with a NUL byte instead of a newline")
    .option("--timeout <dur>", "with -n: give up after this long (exit 3 if fewer arrived)")
    .option("--visibility <dur>", "with --group: how long a delivery is leased", "30s")
    .addHelpText("after", EXAMPLES)
    .action(async (topic: string, opts: SubOptions, cmd: Command) => {
      await runSub(cmd, topic, opts);
    });
}

async function runSub(cmd: Command, topic: string, opts: SubOptions): Promise<void> {
  assertName("topic", topic);
  if (opts.group !== undefined) assertName("group", opts.group);
  const from = parseStartFrom(opts.from);
  const format = formatterFor(opts.format);
  const timeoutMs = opts.timeout === undefined ? undefined : parseDuration(opts.timeout);
  const visibilityMs = parseDuration(opts.visibility ?? "30s");
  const { mq } = await openBackend(cmd);
  rideThroughFailures(mq, {
    follow: !opts.exit && opts.count === undefined,
    quiet: globals(cmd).quiet,
  });
  const stop = new AbortController();
  let timedOut = false;
  const timer = timeoutMs === undefined ? undefined : setTimeout(() => {
    timedOut = true;
    stop.abort();
  }, timeoutMs);
  const onSignal = () => stop.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  let printed = 0;
  // Progress (count, rate) on a terminal, unless stdout is that terminal too.
  const progress = Progress.start("sub", { quiet: globals(cmd).quiet, stdoutToo: false });
  try {
    if (opts.exit && !(await mq.topicConfig(topic))) {
      throw new MqError("TOPIC_NOT_FOUND", `topic "${topic}" does not exist`);
    }
    const sub = mq.subscribe(topic, {
      group: opts.group,
      from,
      follow: !opts.exit,
      count: opts.count,
      batchSize: 4096,
      batchBytes: 256 << 10,
      visibilityMs,
      signal: stop.signal,
    });
    const out = new Output();
    const delimiter = opts.null ? 0 : 10;
    const enc = new TextEncoder();
    try {
      for await (const batch of sub.batches()) {
        for (const m of batch) {
          const bytes = format ? enc.encode(format(m)) : m.payload;
          if (!out.tryPut(bytes, format ? 10 : delimiter)) {
            await out.flush();
            await out.write(bytes);
            await out.write(new Uint8Array([format ? 10 : delimiter]));
          }
        }
        await out.flush();
        printed += batch.length;
        progress.count(printed);
        // Written: now the group may move past them.
        sub.ackAll(batch);
      }
    } catch (e) {
      if (!(e instanceof OutputClosed)) throw e;
    } finally {
      await sub.close();
    }
  } finally {
    progress.done();
    clearTimeout(timer);
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    await mq.close();
  }
  if (timedOut && opts.count !== undefined && printed < opts.count) {
    throw new MqError(
      "TIMEOUT",
      `${printed} of ${opts.count} messages arrived within ${opts.timeout}`,
    );
  }
  if (timedOut && opts.count === undefined && printed === 0) {
    throw new MqError("TIMEOUT", `no message arrived within ${opts.timeout}`);
  }
}
