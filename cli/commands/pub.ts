/** `mq pub`: publish arguments, or stdin lines, as messages. */
import type { Call } from "../definition.ts";
import { MqError } from "../../core/errors.ts";
import {
  assertName,
  type Mq,
  type MqErrorCode,
  parseDuration,
  type RecordBatch,
  type RecordMeta,
} from "../../connect.ts";
import { batchOf, pickRecords } from "../../core/internal.ts";
import { fromEnvelope } from "../envelope.ts";
import { LineBatcher } from "../line_batcher.ts";
import { globals, headerFlags, note, openBackend, print } from "../runtime.ts";
import { Progress } from "../progress.ts";
import { EXIT_USAGE, exitCodeOf } from "../exit_codes.ts";

/** The options of `mq pub`, as parsed. */
export interface PubOptions {
  null?: boolean;
  raw?: boolean;
  key?: string;
  keyDelimiter?: string;
  header: string[];
  id?: string;
  partition?: number;
  jsonLines?: boolean;
  skipInvalid?: boolean;
  skipEmpty?: boolean;
  json?: boolean;
  delay?: string;
  ttl?: string;
  exchange?: string;
  routingKey: string;
  allowUnroutable?: boolean;
  atomic?: boolean;
}

/**
 * `mq pub [topic] [payload...]` with its options as parsed (see
 * `cli/definitions/pub.ts`): to a topic, or with `--exchange` through an
 * exchange (then every argument is a payload).
 *
 * @throws {MqError} `INVALID_ARGUMENT` for options that do not go together or a missing topic
 */
export async function pubCommand(
  topic: string | undefined,
  payloads: string[],
  opts: PubOptions,
  cmd: Call,
): Promise<void> {
  if (opts.exchange !== undefined) {
    if (topic !== undefined) payloads = [topic, ...payloads];
    return await runPub(cmd, { exchange: opts.exchange }, payloads, opts);
  }
  if (opts.routingKey !== "" || opts.allowUnroutable) {
    throw new MqError(
      "INVALID_ARGUMENT",
      `${opts.allowUnroutable ? "--allow-unroutable" : "--routing-key"} goes with --exchange EX`,
    );
  }
  if (topic === undefined) {
    throw new MqError(
      "INVALID_ARGUMENT",
      "missing topic: mq pub <topic> [payload...] (or --exchange)",
    );
  }
  await runPub(cmd, { topic }, payloads, opts);
}

/** Where a publish goes. */
type Target = { topic: string } | { exchange: string };

async function runPub(
  cmd: Call,
  target: Target,
  payloads: string[],
  opts: PubOptions,
): Promise<void> {
  if ("topic" in target) assertName("topic", target.topic);
  else assertName("exchange", target.exchange);
  const topic = "topic" in target ? target.topic : `exchange ${target.exchange}`;
  const headers = headerFlags(opts.header);
  const now = Date.now();
  const deliverAt = opts.delay === undefined ? undefined : now + parseDuration(opts.delay);
  const expiresAt = opts.ttl === undefined ? undefined : now + parseDuration(opts.ttl);
  const common: RecordMeta | undefined =
    opts.key !== undefined || opts.id !== undefined || headers || deliverAt !== undefined ||
      expiresAt !== undefined
      ? { key: opts.key, id: opts.id, headers, deliverAt, expiresAt }
      : undefined;
  if (opts.keyDelimiter === "") {
    throw new MqError("INVALID_ARGUMENT", "--key-delimiter must not be empty");
  }
  if (opts.raw && (opts.null || opts.jsonLines || opts.keyDelimiter)) {
    throw new MqError(
      "INVALID_ARGUMENT",
      "--raw reads all of stdin as one message; it goes with none of -0, -K, --json-lines",
    );
  }
  if (opts.atomic && !("topic" in target)) {
    throw new MqError("INVALID_ARGUMENT", "--atomic publishes to a topic, not through --exchange");
  }
  const { mq } = await openBackend(cmd);
  const counter: Counter = { n: 0, duplicates: 0, skipped: 0, unroutable: 0 };
  const atomic = opts.atomic && "topic" in target ? atomicSender(mq, target.topic) : undefined;
  // Progress (count, rate) on a terminal while stdin lines are published.
  const progress = Progress.start("pub", {
    quiet: globals(cmd).quiet || payloads.length > 0 || opts.raw,
  });
  progress.track(counter);
  const send: Send = atomic
    ? atomic.send
    : "topic" in target
    ? (b) => mq.publishRecords(target.topic, b, { partition: opts.partition })
    : async (b) => {
      const r = await mq.publishVia(target.exchange, opts.routingKey, b, {
        allowUnroutable: opts.allowUnroutable,
      });
      counter.unroutable += r.unroutable;
      return { count: r.count, duplicates: 0 };
    };
  const started = performance.now();
  try {
    // The longest line worth reading: a message of the topic's largest size
    // (an envelope or a "key SEP payload" line may be somewhat longer).
    const topicLimit = "topic" in target ? await mq.messageLimit(target.topic) : undefined;
    const maxMessage = topicLimit?.bytes ?? EXCHANGE_LINE_BYTES;
    const limit: LineLimit = {
      why: topicLimit?.why ??
        `at most ${EXCHANGE_LINE_BYTES} bytes are read per message through an exchange`,
      lineBytes: "topic" in target
        ? opts.jsonLines
          ? Math.ceil(maxMessage * 4 / 3) + (256 << 10)
          : opts.keyDelimiter !== undefined
          ? maxMessage + 4096 + opts.keyDelimiter.length * 3
          : maxMessage
        : EXCHANGE_LINE_BYTES,
      raw: !opts.jsonLines && opts.keyDelimiter === undefined,
    };
    if (payloads.length > 0) {
      if (opts.null || opts.raw) {
        throw new MqError(
          "INVALID_ARGUMENT",
          `${opts.null ? "-0" : "--raw"} reads stdin; give no payload arguments with it`,
        );
      }
      const enc = new TextEncoder();
      const raw = batchOf(payloads.map((p) => enc.encode(p)));
      const { batch, lines, error, code, skipped } = prepare(
        { ...raw, oversize: [] },
        opts,
        common,
        0,
        limit,
        "argument",
      );
      counter.skipped += skipped;
      const place = (i: number) => `argument ${lines ? lines[i] : i + 1}`;
      if (batch.count > 0) await publishOrExplain(send, batch, opts, place, counter);
      if (error) {
        throw new MqError(
          code ?? "MALFORMED_MESSAGE",
          `${error}; published ${counter.n} before it`,
        );
      }
    } else if (opts.raw) {
      const data = await readAll(Deno.stdin, maxMessage);
      if (!data) {
        throw new MqError(
          "MESSAGE_TOO_LARGE",
          `stdin is over ${maxMessage} bytes; ${limit.why}`,
        );
      }
      const batch = batchOf([data], common ? [common] : undefined);
      await publishOrExplain(send, batch, opts, () => "stdin", counter);
    } else {
      await pubLines(send, opts, common, counter, limit);
    }
    if (atomic) {
      const r = await atomic.commit(opts.partition);
      counter.n = r.published;
      counter.duplicates = r.duplicates;
    }
  } catch (e) {
    // --atomic: nothing of the run was stored, whatever was read before.
    if (atomic && MqError.is(e)) {
      throw new MqError(
        e.code,
        `${e.message.replace(/; published \d+ before it$/, "")}; nothing was published (--atomic)`,
        { cause: e },
      );
    }
    throw e;
  } finally {
    progress.done();
    await mq.close();
  }
  const published = counter.n;
  const seconds = (performance.now() - started) / 1000;
  const rate = seconds > 0 ? Math.round(published / seconds) : published;
  if (opts.json) {
    await print(
      JSON.stringify({
        topic,
        published,
        duplicates: counter.duplicates,
        skipped: counter.skipped,
        unroutable: counter.unroutable,
        seconds: Number(seconds.toFixed(3)),
        rate,
      }) + "\n",
    );
  } else if (!globals(cmd).quiet) {
    const extra = [
      counter.duplicates > 0 ? `${counter.duplicates} dropped as duplicates` : "",
      counter.skipped > 0 ? `${counter.skipped} invalid skipped` : "",
      counter.unroutable > 0 ? `${counter.unroutable} unroutable dropped` : "",
    ].filter(Boolean).join(", ");
    note(
      `mq: published ${published} message${published === 1 ? "" : "s"} to "${topic}" in ${
        seconds.toFixed(2)
      }s (${rate} msg/s)${extra ? `; ${extra}` : ""}`,
    );
  }
}

/**
 * `--atomic`: a {@link Send} that checks each batch as a publish would and
 * keeps a copy, and the commit of everything kept as one transaction.
 *
 * @example
 * ```ts ignore
 * const atomic = atomicSender(mq, "orders"); // refuses a backend that is not atomic
 * await pubLines(atomic.send, opts, undefined, counter, limit);
 * const { published } = await atomic.commit();
 * ```
 * @throws {MqError} `INVALID_ARGUMENT` on a backend without atomic transactions
 */
export function atomicSender(
  mq: Mq,
  topic: string,
): {
  send: Send;
  commit: (partition?: number) => Promise<{ published: number; duplicates: number }>;
} {
  if (mq.capabilities.transactions !== "atomic") {
    throw new MqError(
      "INVALID_ARGUMENT",
      `--atomic needs a backend that commits atomically; this one is ${
        mq.capabilities.transactions ?? "not transactional"
      } (nats-server 2.9 has no atomic batch)`,
    );
  }
  const kept: RecordBatch[] = [];
  let count = 0;
  return {
    send: async (b) => {
      await mq.checkRecords(topic, b);
      kept.push(copyOf(b));
      count += b.count;
      return { count: b.count, duplicates: 0 };
    },
    commit: async (partition) => {
      if (count === 0) return { published: 0, duplicates: 0 };
      const r = await mq.transaction((tx) => {
        for (const b of kept) tx.publishRecords(topic, b, { partition });
      });
      return { published: r.published, duplicates: r.duplicates };
    },
  };
}

/** A batch over a copy of its bytes (the line buffer is reused). */
function copyOf(b: RecordBatch): RecordBatch {
  let from = Infinity, to = 0;
  for (let i = 0; i < b.count; i++) {
    if (b.starts[i] < from) from = b.starts[i];
    if (b.ends[i] > to) to = b.ends[i];
  }
  if (b.count === 0) from = 0;
  const starts = new Uint32Array(b.count), ends = new Uint32Array(b.count);
  for (let i = 0; i < b.count; i++) {
    starts[i] = b.starts[i] - from;
    ends[i] = b.ends[i] - from;
  }
  return { ...b, data: b.data.slice(from, to), starts, ends, meta: b.meta?.slice() };
}

/** What a run published, dropped as duplicates or unroutable, and skipped as invalid. */
export interface Counter {
  n: number;
  duplicates: number;
  skipped: number;
  unroutable: number;
}

/** The size limit lines are checked against, and how to say it. */
export interface LineLimit {
  /** Why, in the words of the core's own check. */
  why: string;
  /** The longest line read (an envelope or "key SEP payload" line is longer than its message). */
  lineBytes: number;
  /** A line is the message itself (no -K, no --json-lines). */
  raw: boolean;
}

/** Bytes of stdin read at once. */
const CHUNK_BYTES = 1 << 20;
/** Bytes of complete lines held while a write is in flight, before reading waits. */
const PENDING_BYTES = 4 << 20;

/** Through an exchange the target topics are not known up front: lines are capped at this. */
const EXCHANGE_LINE_BYTES = 16 << 20;

/** All of `input`, or undefined as soon as it is longer than `max` bytes. */
async function readAll(
  input: { read(p: Uint8Array): Promise<number | null> },
  max: number,
): Promise<Uint8Array | undefined> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const buf = new Uint8Array(1 << 20);
  for (;;) {
    const n = await input.read(buf);
    if (n === null) break;
    total += n;
    if (total > max) return undefined;
    chunks.push(buf.slice(0, n));
  }
  const out = new Uint8Array(total);
  let pos = 0;
  for (const c of chunks) (out.set(c, pos), (pos += c.length));
  return out;
}

/**
 * Publishes a batch; on a refused record, publishes those before it and throws
 * an error naming its place (or, with --skip-invalid, reports it and goes on).
 */
async function publishOrExplain(
  send: Send,
  batch: RecordBatch,
  opts: PubOptions,
  place: (index: number) => string,
  counter: Counter,
): Promise<void> {
  let rest = batch;
  let offset = 0;
  for (;;) {
    try {
      const r = await send(rest);
      counter.n += r.count;
      counter.duplicates += r.duplicates;
      return;
    } catch (e) {
      if (!MqError.is(e) || e.details.index === undefined) {
        // A failed write (a full disk, a lost broker): what was stored before
        // it is a clean prefix of the input; say how long.
        if (!MqError.is(e) || exitCodeOf(e.code) === EXIT_USAGE) throw e;
        counter.n += e.details.published ?? 0;
        const n = counter.n;
        throw new MqError(
          e.code,
          `${e.message}; published ${n} message${n === 1 ? "" : "s"} before the failure`,
          {
            cause: e,
            details: { published: counter.n },
          },
        );
      }
      const index = e.details.index;
      counter.n += e.details.published ?? 0;
      if (!opts.skipInvalid) {
        throw new MqError(
          e.code,
          `${place(offset + index)}: ${e.message}; published ${counter.n} before it`,
        );
      }
      note(`mq: warning: ${place(offset + index)}: ${e.message} (skipped)`);
      counter.skipped++;
      const keep = Array.from({ length: rest.count - index - 1 }, (_, j) => index + 1 + j);
      rest = pickRecords(rest, keep);
      offset += index + 1;
      if (rest.count === 0) return;
    }
  }
}

/** Publishes a batch; resolves to how many were stored and dropped as duplicates. */
export type Send = (b: RecordBatch) => Promise<{ count: number; duplicates: number }>;

/**
 * Turns raw lines (or arguments) into the records to publish: keys,
 * envelopes, empties, oversize lines. `lines` maps records back to line
 * numbers when some were dropped; `error` names the first bad line.
 */
function prepare(
  raw: RecordBatch & { oversize: number[]; oversizeBytes?: number[] },
  opts: PubOptions,
  common: RecordMeta | undefined,
  lineBase: number,
  limit: LineLimit,
  unit: "line" | "argument" = "line",
): {
  batch: RecordBatch;
  lines: number[] | undefined;
  skipped: number;
  error?: string;
  code?: MqErrorCode;
} {
  const needsWork = opts.keyDelimiter !== undefined || opts.jsonLines || opts.skipEmpty ||
    raw.oversize.length > 0 || unit === "argument";
  if (!needsWork) {
    if (common) raw.meta = new Array(raw.count).fill(common);
    return { batch: raw, lines: undefined, skipped: 0 };
  }
  const enc = new TextEncoder(), dec = new TextDecoder();
  const sep = opts.keyDelimiter !== undefined ? enc.encode(opts.keyDelimiter) : undefined;
  const payloads: Uint8Array[] = [];
  const meta: (RecordMeta | undefined)[] = [];
  const lines: number[] = [];
  const oversize = new Map(raw.oversize.map((i, k) => [i, raw.oversizeBytes?.[k] ?? -1]));
  let skipped = 0;
  for (let i = 0; i < raw.count; i++) {
    let bytes = raw.data.subarray(raw.starts[i], raw.ends[i]);
    const line = lineBase + i + 1;
    if (opts.skipEmpty && bytes.length === 0 && !oversize.has(i)) continue;
    let m: RecordMeta | undefined = common ? { ...common } : undefined;
    try {
      if (oversize.has(i)) {
        const bytes = oversize.get(i)!;
        const size = bytes < 0 ? `over ${limit.lineBytes}` : `${bytes}`;
        throw new MqError(
          "MESSAGE_TOO_LARGE",
          limit.raw
            ? `message is ${size} bytes; ${limit.why}`
            : `line is ${size} bytes, too long for a message: ${limit.why}`,
        );
      }
      if (opts.jsonLines) {
        const env = fromEnvelope(dec.decode(bytes));
        bytes = env.payload;
        if (env.meta) m = { ...m, ...env.meta };
      } else if (sep) {
        const at = indexOfBytes(bytes, sep);
        if (at < 0) {
          throw new MqError(
            "MALFORMED_MESSAGE",
            `no key delimiter ${JSON.stringify(opts.keyDelimiter)} in the line`,
          );
        }
        m = { ...m, key: dec.decode(bytes.subarray(0, at)) };
        bytes = bytes.subarray(at + sep.length);
      }
    } catch (e) {
      if (!MqError.is(e)) throw e;
      if (opts.skipInvalid) {
        note(`mq: warning: ${unit} ${line}: ${e.message} (skipped)`);
        skipped++;
        continue;
      }
      const batch = batchOf(payloads, meta, raw.timestamp);
      return { batch, lines, skipped, error: `${unit} ${line}: ${e.message}`, code: e.code };
    }
    payloads.push(bytes);
    meta.push(m);
    lines.push(line);
  }
  return { batch: batchOf(payloads, meta, raw.timestamp), lines, skipped };
}

function indexOfBytes(hay: Uint8Array, needle: Uint8Array): number {
  if (needle.length === 1) return hay.indexOf(needle[0]);
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/**
 * Publishes stdin line by line. Reading goes on while a batch is being
 * written, so a batch is whatever arrived meanwhile: large when input is
 * fast, a single line when it trickles in.
 */
export async function pubLines(
  send: Send,
  opts: PubOptions,
  common: RecordMeta | undefined,
  counter: Counter,
  limit: LineLimit,
  input: { read(p: Uint8Array): Promise<number | null> } = Deno.stdin,
): Promise<void> {
  // Pending lines are held to PENDING_BYTES while a write is in flight; the
  // buffer has room for that, a read chunk and a partial line, so that in a
  // steady stream it never grows and its buffers are reused.
  const batcher = new LineBatcher({
    delimiter: opts.null ? "nul" : "newline",
    maxLineBytes: limit.lineBytes,
    capacity: PENDING_BYTES + CHUNK_BYTES + Math.min(limit.lineBytes, 4 << 20) + 1024,
  });
  const chunk = new Uint8Array(CHUNK_BYTES);
  let failure: unknown;
  let inflight: Promise<void> | undefined;
  // Wakes the pending read when a write fails, so that a bad line stops the
  // run at once, not at the next read of stdin (which may never come:
  // `tail -f | mq pub`). A new promise per read: one long-lived promise would
  // keep a reaction for every read ever raced against it.
  let wake: ((v: null) => void) | undefined;

  const submit = async (raw: RecordBatch & { oversize: number[] }, lineBase: number) => {
    const { batch, lines, error, code, skipped } = prepare(raw, opts, common, lineBase, limit);
    try {
      counter.skipped += skipped;
      if (batch.count > 0) {
        const place = (i: number) => `line ${lines ? lines[i] : lineBase + i + 1}`;
        await publishOrExplain(send, batch, opts, place, counter);
      }
      if (error) {
        throw new MqError(
          code ?? "MALFORMED_MESSAGE",
          `${error}; published ${counter.n} before it`,
        );
      }
    } catch (e) {
      failure = e;
      wake?.(null);
    }
  };
  const pump = () => {
    if (inflight || failure !== undefined || batcher.pending === 0) return;
    const base = batcher.linesBefore;
    const raw = batcher.take(Date.now());
    inflight = submit(raw, base).finally(() => {
      inflight = undefined;
      batcher.recycle(raw);
      pump();
    });
  };

  // Interrupted (Ctrl-C, SIGTERM): the whole lines read so far are published
  // before exiting; nothing accepted is lost.
  const onSignal = async () => {
    pump();
    while (inflight) await inflight;
    if (failure === undefined && batcher.pending > 0) {
      pump();
      while (inflight) await inflight;
    }
    note(
      opts.atomic
        ? "mq: interrupted; nothing was published (--atomic)"
        : `mq: interrupted; published ${counter.n} message${counter.n === 1 ? "" : "s"}`,
    );
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    for (;;) {
      // A write that failed meanwhile (also while waiting just below) ends the
      // run now, before another read of stdin that may never return.
      if (failure !== undefined) break;
      const n = await Promise.race([
        input.read(chunk),
        new Promise<null>((resolve) => wake = resolve),
      ]);
      if (failure !== undefined || n === null) break;
      batcher.push(chunk.subarray(0, n));
      pump();
      // Bound memory: wait when much is pending behind a slow write.
      while (inflight && batcher.pendingBytes > PENDING_BYTES) await inflight;
    }
    if (failure === undefined) {
      batcher.finish();
      pump();
    }
    while (inflight) await inflight;
    if (failure === undefined && batcher.pending > 0) {
      pump();
      while (inflight) await inflight;
    }
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
  if (failure !== undefined) throw failure;
}
