/** `mq sub`: print messages of topics. */
import type { Command } from "commander";
import { MqError } from "../../core/errors.ts";
import { assertName } from "../../core/names.ts";
import { parseDuration } from "../../core/duration.ts";
import { parseStartFrom, type StartFrom } from "../../core/start_position.ts";
import { assertTopicOrPattern, isTopicPattern } from "../../core/topic_pattern.ts";
import type { Mq } from "../../core/client.ts";
import type { MessageFilter } from "../../core/read_filter.ts";
import type { SubscribeOptions, Subscription } from "../../core/subscription.ts";
import { formatterFor, type LineFormatter } from "../message_format.ts";
import { Output, OutputClosed } from "../output.ts";
import { collect, globals, headerFlags, openBackend, wholeNumber } from "../runtime.ts";
import { Progress } from "../progress.ts";

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

const EXAMPLES = `
Examples:
  mq sub orders -e                      print every message there is, then exit
  mq sub orders                         ... and keep following new ones
  mq sub orders --group billing         share work with other members of "billing"
  mq sub orders --from -10m             what arrived in the last ten minutes
  mq sub orders --last 10 -e            the ten most recent messages
  mq sub orders --from -1h --until -10m a window: from an hour ago to ten minutes ago
  mq sub orders --partition 0 -e        only partition 0
  mq sub orders payments 'logs.#'       several topics and patterns (* one word, # any)
  mq sub logs --grep 'error|fatal' -e   payloads that match a regular expression
  mq sub logs --header level=debug --invert -e   all but the debug ones
  mq sub orders --key customer-7 -e     one key's messages
  mq sub orders --idle 5s               stop after 5s without a new message
  mq sub jobs --all -e --format json    cancelled and expired ones too (deliver_at, expires_at)
  mq sub orders -n 1 --timeout 5s       wait up to 5s for one message (exit 3 if none)
  mq sub orders --format json -e        one JSON envelope per line
  mq sub orders --format '{offset}\\t{key}\\t{payload} {header.trace}'

With --group the group's position moves only after a message was written to
stdout; messages that were not are delivered again. --last, --until,
--partition, --idle, --all, the filters (--key, --header, --grep, --invert)
and several topics are for reads without a group. --invert keeps the messages
that do not match all of --key, --header and --grep. --last takes the N most
recent over the partitions read, by time, before any filter. --timeout is a
total deadline; --idle ends the read once nothing new came for that long.
A plain read skips cancelled and expired messages (as groups do); --all shows
them too. Delayed messages keep their place (the envelope says when each is
due, deliver_at).`;

/** Adds `sub` to the program. */
export function registerSub(program: Command): void {
  program
    .command("sub")
    .summary("print messages of topics")
    .description(
      "Print messages of topics (names or patterns), from a position or as a member of a group.",
    )
    .argument("<topics...>", "topics to read, or patterns such as orders.* and logs.#")
    .option(
      "-g, --group <group>",
      "consume as a member of this group (durable position, shared messages)",
    )
    .option(
      "--from <where>",
      "beginning, end, an offset, an ISO time or -DUR (without --group, or for a new group)",
      "beginning",
    )
    .option("--last <n>", "start at the N most recent messages (by time)", wholeNumber("--last"))
    .option("--until <where>", "stop before this offset, ISO time or -DUR, and exit 0")
    .option(
      "--partition <n>",
      "read only this partition (repeatable)",
      (v: string, prev: number[]) => [...prev, wholeNumber("--partition")(v)],
      [],
    )
    .option("-k, --key <key>", "only messages with this key")
    .option("-H, --header <name=value>", "only messages with this header (repeatable)", collect, [])
    .option("--grep <regex>", "only messages whose payload matches this regular expression")
    .option("--invert", "keep the messages that do not match the filters")
    .option("--idle <dur>", "exit 0 after this long with no new message")
    .option("--all", "show cancelled and expired messages too")
    .option("-e, --exit", "stop at the end of what is there")
    .option("-n, --count <n>", "stop after N messages", wholeNumber("--count", 1))
    .option(
      "-f, --format <format>",
      "raw, json, or a template like '{offset}\\t{payload}'",
      "raw",
    )
    .option("-0, --null", "with raw: end each message with a NUL byte instead of a newline")
    .option("--timeout <dur>", "give up after this long in all (with -n: exit 3 if fewer came)")
    .option("--visibility <dur>", "with --group: how long a delivery is leased", "30s")
    .addHelpText("after", EXAMPLES)
    .action(async (topics: string[], opts: SubOptions, cmd: Command) => {
      await runSub(
        topics,
        { ...opts, quiet: globals(cmd).quiet },
        async () => (await openBackend(cmd)).mq,
      );
    });
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
