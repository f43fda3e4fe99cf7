/** `mq bench pub|sub|work`: throughput and latency on the resolved backend, as `nats bench` reports. */
import type { Call } from "../definition.ts";
import { MqError } from "../../core/errors.ts";
import { redactUrl } from "../../core/backend_url.ts";
import { batchOf } from "../../core/internal.ts";
import type { Mq, ReceivedMessage, Subscription } from "../../mod.ts";
import { globals, note, openBackend, print } from "../runtime.ts";
import { Progress } from "../progress.ts";

/** The modes of `mq bench`. */
export const BENCH_MODES = ["pub", "sub", "work"] as const;
/** A mode of `mq bench`. */
export type BenchMode = typeof BENCH_MODES[number];

/** The largest message a default topic takes (its `maxMessageBytes`). */
const MAX_SIZE = 1024 * 1024;

/** What `mq bench --json` prints (fixed field names). */
export interface BenchReport {
  mode: BenchMode;
  /** The backend URL, secrets as `***`. */
  backend: string;
  messages: number;
  /** Payload bytes per message. */
  size: number;
  /** Messages per publish call. */
  batch: number;
  /** Seconds the measured side took. */
  seconds: number;
  msgs_per_sec: number;
  /** Payload megabytes (10^6 bytes) per second. */
  mb_per_sec: number;
  p50_ms: number;
  p99_ms: number;
  p999_ms: number;
}

/** The options of `mq bench`, as parsed. */
export interface BenchOptions {
  count: number;
  size: number;
  batch: number;
  json?: boolean;
}

/** `mq bench [mode]`: throughput and latency on the resolved backend. */
export async function benchCommand(mode: string, opts: BenchOptions, cmd: Call): Promise<void> {
  if (!(BENCH_MODES as readonly string[]).includes(mode)) {
    throw new MqError(
      "INVALID_ARGUMENT",
      `unknown bench mode ${JSON.stringify(mode)}: use pub, sub or work`,
    );
  }
  if (opts.size > MAX_SIZE) {
    throw new MqError(
      "INVALID_ARGUMENT",
      `--size must be at most ${MAX_SIZE} (the largest message a topic takes by default)`,
    );
  }
  const quiet = globals(cmd).quiet;
  const { mq, backend } = await openBackend(cmd);
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const progress = Progress.start(`bench ${mode}`, { quiet });
  let report: BenchReport;
  try {
    report = await runBench(mq, mode as BenchMode, opts, stop.signal, progress);
  } finally {
    progress.done();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    await mq.close();
  }
  if (stop.signal.aborted) {
    note("mq: bench interrupted; the bench topic was removed");
    Deno.exit(130);
  }
  report.backend = redactUrl(backend.url);
  if (opts.json) return await print(JSON.stringify(report) + "\n");
  await print(formatReport(report));
}

/** The human-readable report. */
export function formatReport(r: BenchReport): string {
  const what = { pub: "published", sub: "received", work: "taken and acked" }[r.mode];
  return [
    `mq bench ${r.mode} on ${r.backend}: ${r.messages} messages of ${r.size} bytes, batches of ${r.batch}`,
    `  ${what} in ${r.seconds.toFixed(3)}s: ${r.msgs_per_sec} msgs/s, ${r.mb_per_sec} MB/s`,
    `  latency publish->receive: p50 ${r.p50_ms} ms, p99 ${r.p99_ms} ms, p99.9 ${r.p999_ms} ms`,
  ].join("\n") + "\n";
}

/** The value at quantile `q` of ascending `sorted` (nearest rank). */
export function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

const round = (x: number, digits: number) => Number(x.toFixed(digits));

/**
 * Publishes `count` messages to a new throwaway topic while a reader (plain
 * or, for `work`, a group member that acks) takes them; removes the topic.
 */
async function runBench(
  mq: Mq,
  mode: BenchMode,
  opts: BenchOptions,
  signal: AbortSignal,
  progress: Progress,
): Promise<BenchReport> {
  const topic = `mq-bench-${Date.now().toString(36)}-${
    crypto.getRandomValues(new Uint32Array(1))[0].toString(36)
  }`;
  await mq.topics.create(topic, {});
  const payload = new Uint8Array(opts.size);
  crypto.getRandomValues(payload.subarray(0, Math.min(payload.length, 65536)));
  // Send times by offset run, receive times by offset: latency is matched afterwards,
  // as a reader may see a message before its publish call has returned.
  const runs: { first: number; count: number; at: number }[] = [];
  const received = new Float64Array(opts.count);
  const receivedOffsets = new Float64Array(opts.count);
  let got = 0, published = 0;
  const stopReader = new AbortController();
  signal.addEventListener("abort", () => stopReader.abort(), { once: true });
  const sub: Subscription = mq.subscribe(topic, {
    ...(mode === "work" ? { group: "bench" } : { from: "beginning" as const }),
    follow: true,
    count: opts.count,
    batchSize: 4096,
    signal: stopReader.signal,
  });
  const started = performance.now();
  let publishedAt = started, lastReceivedAt = started;
  const reader = (async () => {
    for (;;) {
      const batch: ReceivedMessage[] | null = await sub.take(4096);
      if (batch === null) break;
      const now = performance.now();
      for (const m of batch) {
        if (got >= opts.count) break;
        received[got] = now;
        receivedOffsets[got++] = m.offset;
      }
      if (mode === "work") {
        sub.ackAll(batch);
        await sub.commit();
      }
      lastReceivedAt = performance.now();
      if (mode !== "pub") progress.count(got);
    }
  })();
  try {
    const messages = new Array<Uint8Array>(opts.batch).fill(payload);
    while (published < opts.count && !signal.aborted) {
      const n = Math.min(opts.batch, opts.count - published);
      const at = performance.now();
      const result = await mq.publishRecords(topic, batchOf(messages.slice(0, n)));
      for (const w of result.written) runs.push({ first: w.first, count: w.count, at });
      published += n;
      if (mode === "pub") progress.count(published);
    }
    publishedAt = performance.now();
    if (signal.aborted) stopReader.abort();
    await reader;
  } finally {
    stopReader.abort();
    await reader.catch(() => {});
    await sub.close().catch(() => {});
    await mq.topics.remove(topic).catch(() => {});
  }
  const latencies = latenciesOf(runs, receivedOffsets.subarray(0, got), received);
  const seconds = Math.max(
    1e-6,
    ((mode === "pub" ? publishedAt : lastReceivedAt) - started) / 1000,
  );
  const measured = mode === "pub" ? published : got;
  return {
    mode,
    backend: "",
    messages: measured,
    size: opts.size,
    batch: opts.batch,
    seconds: round(seconds, 4),
    msgs_per_sec: Math.round(measured / seconds),
    mb_per_sec: round((measured * opts.size) / seconds / 1e6, 2),
    p50_ms: round(percentile(latencies, 0.5), 3),
    p99_ms: round(percentile(latencies, 0.99), 3),
    p999_ms: round(percentile(latencies, 0.999), 3),
  };
}

/** Publish->receive latencies (ms), ascending. */
function latenciesOf(
  runs: { first: number; count: number; at: number }[],
  offsets: Float64Array,
  receivedAt: Float64Array,
): Float64Array {
  const sorted = [...runs].sort((a, b) => a.first - b.first);
  const out = new Float64Array(offsets.length);
  let n = 0;
  for (let i = 0; i < offsets.length; i++) {
    const o = offsets[i];
    let lo = 0, hi = sorted.length - 1, run: typeof sorted[number] | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = sorted[mid];
      if (o < r.first) hi = mid - 1;
      else if (o >= r.first + r.count) lo = mid + 1;
      else {
        run = r;
        break;
      }
    }
    if (run) out[n++] = Math.max(0, receivedAt[i] - run.at);
  }
  return out.subarray(0, n).sort();
}
