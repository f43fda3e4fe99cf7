/**
 * `mq pub` reading stdin line by line (loaded only when it does: a publish of
 * arguments needs none of it).
 *
 * @module
 */
import { MqError } from "../../core/errors.ts";
import type { RecordBatch, RecordMeta } from "../../connect.ts";
import { LineBatcher } from "../line_batcher.ts";
import { note } from "../runtime.ts";
import {
  type Counter,
  type LineLimit,
  prepare,
  publishOrExplain,
  type PubOptions,
  type Send,
} from "./_pub_records.ts";

/** Bytes of stdin read at once. */
const CHUNK_BYTES = 1 << 20;
/** Bytes of complete lines held while a write is in flight, before reading waits. */
const PENDING_BYTES = 4 << 20;

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
  const envelope = opts.jsonLines ? (await import("../envelope.ts")).fromEnvelope : undefined;
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
    const { batch, lines, error, code, skipped } = prepare(
      raw,
      opts,
      common,
      lineBase,
      limit,
      "line",
      envelope,
    );
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
