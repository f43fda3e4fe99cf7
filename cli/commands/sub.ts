/** `mq sub`: print messages of a topic. */
import type { Call } from "../definition.ts";
import { MqError } from "../../core/errors.ts";
import { assertName } from "../../core/names.ts";
import { parseDuration } from "../../core/duration.ts";
import { parseStartFrom } from "../../core/start_position.ts";
import { formatterFor } from "../message_format.ts";
import { Output, OutputClosed } from "../output.ts";
import { globals, openBackend } from "../runtime.ts";
import { Progress } from "../progress.ts";

/** The options of `mq sub`, as parsed. */
export interface SubOptions {
  group?: string;
  from: string;
  exit?: boolean;
  count?: number;
  format: string;
  null?: boolean;
  timeout?: string;
  visibility?: string;
}

/** `mq sub <topic>` with its options as parsed (see `cli/definitions/sub.ts`). */
export async function subCommand(topic: string, opts: SubOptions, cmd: Call): Promise<void> {
  await runSub(cmd, topic, opts);
}

async function runSub(cmd: Call, topic: string, opts: SubOptions): Promise<void> {
  assertName("topic", topic);
  if (opts.group !== undefined) assertName("group", opts.group);
  const from = parseStartFrom(opts.from);
  const format = formatterFor(opts.format);
  const timeoutMs = opts.timeout === undefined ? undefined : parseDuration(opts.timeout);
  const visibilityMs = parseDuration(opts.visibility ?? "30s");
  const { mq } = await openBackend(cmd);
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
