/** `mq pub`: publish arguments, or stdin lines, as messages. */
import type { Call } from "../definition.ts";
import { MqError } from "../../core/errors.ts";
import {
  assertName,
  batchOf,
  type Mq,
  parseDuration,
  type RecordBatch,
  type RecordMeta,
} from "../../connect.ts";
import {
  type Counter,
  type LineLimit,
  prepare,
  publishOrExplain,
  type PubOptions,
  type Send,
} from "./_pub_records.ts";
import { globals, headerFlags, note, openBackend, print } from "../runtime.ts";
import { Progress } from "../progress.ts";

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
      const envelope = opts.jsonLines ? (await import("../envelope.ts")).fromEnvelope : undefined;
      const { batch, lines, error, code, skipped } = prepare(
        { ...raw, oversize: [] },
        opts,
        common,
        0,
        limit,
        "argument",
        envelope,
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
      const { pubLines } = await import("./_pub_lines.ts");
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

export type { Counter, LineLimit, PubOptions, Send } from "./_pub_records.ts";
