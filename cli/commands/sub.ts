/** `mq sub`: print messages of topics. */
import { MqError } from "../../core/errors.ts";
import {
  assertName,
  assertTopicOrPattern,
  isTopicPattern,
  type MessageFilter,
  type Mq,
  parseDuration,
  parseStartFrom,
  type StartFrom,
  type SubscribeOptions,
  type Subscription,
} from "../../connect.ts";
import { formatterFor, type LineFormatter } from "../message_format.ts";
import { Output, OutputClosed } from "../output.ts";
import { headerFlags } from "../runtime.ts";
import { Progress } from "../progress.ts";
import { rideThroughFailures } from "../reconnect.ts";

/** The options of `mq sub`, as plain values (what any parser hands over). */
export interface SubOptions {
  group?: string;
  from?: string;
  exit?: boolean;
  count?: number;
  format?: string;
  null?: boolean;
  timeout?: string;
  visibility?: string;
  last?: number;
  until?: string;
  partition?: number[];
  key?: string;
  header?: string[];
  grep?: string;
  invert?: boolean;
  idle?: string;
  all?: boolean;
  /** No progress line. */
  quiet?: boolean;
}

/**
 * The subscription options `mq sub` asks for (checked, parsed).
 *
 * @example
 * ```ts
 * import { subscribeOptionsOf } from "./sub.ts";
 * subscribeOptionsOf(["logs.#"], { grep: "error", last: 10, exit: true }).follow; // false
 * ```
 * @throws {MqError} `INVALID_ARGUMENT`, `INVALID_NAME` (exit 2)
 */
export function subscribeOptionsOf(topics: readonly string[], opts: SubOptions): SubscribeOptions {
  for (const t of topics) assertTopicOrPattern(t);
  if (opts.group !== undefined) {
    assertName("group", opts.group);
    const plain: string[] = [];
    if (topics.length > 1 || topics.some(isTopicPattern)) plain.push("several topics or patterns");
    for (
      const [flag, given] of [
        ["--last", opts.last !== undefined],
        ["--until", opts.until !== undefined],
        ["--partition", (opts.partition ?? []).length > 0],
        ["--key", opts.key !== undefined],
        ["--header", (opts.header ?? []).length > 0],
        ["--grep", opts.grep !== undefined],
        ["--invert", opts.invert === true],
        ["--idle", opts.idle !== undefined],
        ["--all", opts.all === true],
      ] as const
    ) if (given) plain.push(flag);
    if (plain.length > 0) {
      throw new MqError(
        "INVALID_ARGUMENT",
        `${plain.join(", ")} cannot be used with --group (they are for reads without a group)`,
      );
    }
  }
  if (opts.from !== undefined && /^-\d+$/.test(opts.from)) {
    throw new MqError(
      "INVALID_ARGUMENT",
      `--from ${opts.from} is not a time span (use e.g. ${opts.from}s or ${opts.from}m); ` +
        `for the last ${opts.from.slice(1)} messages use --last ${opts.from.slice(1)}`,
    );
  }
  if (opts.last !== undefined && opts.from !== undefined && opts.from !== "beginning") {
    throw new MqError("INVALID_ARGUMENT", "--last and --from cannot be used together");
  }
  let grep: RegExp | undefined;
  if (opts.grep !== undefined) {
    try {
      grep = new RegExp(opts.grep);
    } catch (e) {
      throw new MqError(
        "INVALID_ARGUMENT",
        `--grep ${JSON.stringify(opts.grep)} is not a valid regular expression: ${
          (e as Error).message.replace(/^Invalid regular expression: /, "")
        }`,
      );
    }
  }
  const headers = headerFlags(opts.header ?? []);
  const filter: MessageFilter | undefined = opts.key !== undefined || headers || grep || opts.invert
    ? { key: opts.key, headers, grep, invert: opts.invert }
    : undefined;
  const partitions = opts.partition && opts.partition.length > 0
    ? [...new Set(opts.partition)]
    : undefined;
  return {
    group: opts.group,
    from: parseStartFrom(opts.from ?? "beginning"),
    follow: !opts.exit,
    count: opts.count,
    visibilityMs: parseDuration(opts.visibility ?? "30s"),
    last: opts.last,
    until: opts.until === undefined ? undefined : parseUntil(opts.until),
    partitions,
    filter,
    idleMs: opts.idle === undefined ? undefined : parseDuration(opts.idle),
    all: opts.all || undefined,
  };
}

function parseUntil(text: string): StartFrom {
  try {
    return parseStartFrom(text);
  } catch {
    throw new MqError(
      "INVALID_ARGUMENT",
      `invalid --until ${JSON.stringify(text)}: use an offset, an ISO time, -DUR or end`,
    );
  }
}

/**
 * Runs `mq sub` on `topics` with plain options; `open` connects to the
 * backend (after the options were checked, so a bad flag touches nothing).
 *
 * @example
 * ```ts ignore
 * await runSub(["orders"], { last: 10, exit: true }, () => connect("file:./data"));
 * ```
 */
export async function runSub(
  topics: readonly string[],
  opts: SubOptions,
  open: () => Promise<Mq>,
): Promise<void> {
  const options = subscribeOptionsOf(topics, opts);
  const format = formatterFor(opts.format ?? "raw");
  const timeoutMs = opts.timeout === undefined ? undefined : parseDuration(opts.timeout);
  const mq = await open();
  rideThroughFailures(mq, {
    follow: !opts.exit && opts.count === undefined,
    quiet: opts.quiet,
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
  const progress = Progress.start("sub", { quiet: opts.quiet, stdoutToo: false });
  try {
    if (opts.exit) {
      for (const t of topics) {
        if (!isTopicPattern(t) && !(await mq.topicConfig(t))) {
          throw new MqError("TOPIC_NOT_FOUND", `topic "${t}" does not exist`);
        }
      }
    }
    const blocks = format === undefined && options.group === undefined;
    const sub = mq.subscribe(topics, {
      ...options,
      batchSize: blocks ? 16384 : 4096,
      batchBytes: 256 << 10,
      signal: stop.signal,
    });
    const out = new Output();
    const count = (n: number) => {
      printed += n;
      progress.count(printed);
    };
    try {
      if (blocks) {
        await printBlocks(sub, out, opts.null ? 0 : 10, count);
      } else await printBatches(sub, out, format, opts.null ? 0 : 10, count);
    } catch (e) {
      if (!(e instanceof OutputClosed)) throw e;
    } finally {
      await sub.close();
    }
  } finally {
    progress.done();
    // Only a timer that was set: the first timer call loads Deno's timers
    // (node:timers), milliseconds that `mq sub -e` does not need.
    if (timer !== undefined) clearTimeout(timer);
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

/**
 * The hot path of a plain raw read: payload bytes copied from the read
 * buffers into one output buffer, one write per megabyte, no object and no
 * string per message.
 */
async function printBlocks(
  sub: Subscription,
  out: Output,
  delimiter: number,
  count: (n: number) => void,
): Promise<void> {
  for await (const block of sub.blocks()) {
    const { data, starts, ends } = block;
    const n = block.count;
    for (let i = out.putRanges(data, starts, ends, 0, n, delimiter); i < n;) {
      await out.flush();
      const next = out.putRanges(data, starts, ends, i, n, delimiter);
      if (next === i) {
        // Larger than the whole buffer: written on its own.
        await out.write(data.subarray(starts[i], ends[i]));
        await out.write(new Uint8Array([delimiter]));
        i++;
      } else i = next;
    }
    await out.flush();
    count(n);
  }
}

/** Messages one batch at a time, formatted; a group's position moves once they are written. */
async function printBatches(
  sub: Subscription,
  out: Output,
  format: LineFormatter | undefined,
  delimiter: number,
  count: (n: number) => void,
): Promise<void> {
  const enc = new TextEncoder();
  const end = format ? 10 : delimiter;
  for await (const batch of sub.batches()) {
    for (const m of batch) {
      const bytes = format ? enc.encode(format(m)) : m.payload;
      if (!out.tryPut(bytes, end)) {
        await out.flush();
        await out.write(bytes);
        await out.write(new Uint8Array([end]));
      }
    }
    await out.flush();
    count(batch.length);
    // Written: now the group may move past them.
    sub.ackAll(batch);
  }
}
