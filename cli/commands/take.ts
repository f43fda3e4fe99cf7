/** `mq take`, `mq ack`, `mq nack`: leased messages for scripts in any language. */
import type { Call } from "../definition.ts";
import { MqError } from "../../core/errors.ts";
import { assertName, parseDuration } from "../../connect.ts";
import { toEnvelope } from "../envelope.ts";
import { note, openBackend, print } from "../runtime.ts";

/** The options of `mq take`, as parsed. */
export interface TakeOptions {
  group: string;
  visibility: string;
  wait?: string;
  format: string;
}

/** `mq take <topic>`: one message leased and printed, its receipt on stderr. */
export async function takeCommand(topic: string, opts: TakeOptions, cmd: Call): Promise<void> {
  assertName("topic", topic);
  assertName("group", opts.group);
  if (opts.format !== "raw" && opts.format !== "json") {
    throw new MqError(
      "INVALID_ARGUMENT",
      `--format must be raw or json, not ${JSON.stringify(opts.format)}`,
    );
  }
  const visibilityMs = parseDuration(opts.visibility);
  const waitMs = opts.wait === undefined ? 0 : parseDuration(opts.wait);
  const { mq } = await openBackend(cmd);
  const stop = new AbortController();
  const timer = waitMs > 0 ? setTimeout(() => stop.abort(), waitMs) : undefined;
  try {
    const sub = mq.subscribe(topic, {
      group: opts.group,
      follow: waitMs > 0,
      // Without --wait: what is deliverable now, or exit 3 at once (not
      // waiting for others' leases or for retries to come due).
      awaitInFlight: false,
      count: 1,
      batchSize: 1,
      visibilityMs,
      signal: stop.signal,
    });
    const batch = await sub.take(1);
    await sub.detach();
    if (!batch || batch.length === 0) {
      throw new MqError(
        "TIMEOUT",
        waitMs > 0
          ? `no message arrived within ${opts.wait}`
          : `no message is available in "${topic}"`,
      );
    }
    const m = batch[0];
    if (opts.format === "json") await print(toEnvelope(m, { receipt: m.receipt }) + "\n");
    else {
      const out = new Uint8Array(m.payload.length + 1);
      out.set(m.payload);
      out[m.payload.length] = 10;
      let n = 0;
      while (n < out.length) n += await Deno.stdout.write(out.subarray(n));
    }
    note(`receipt: ${m.receipt}`);
  } finally {
    if (timer !== undefined) clearTimeout(timer); // none set: no timer call (see sub.ts)
    await mq.close();
  }
}

/** `mq ack <topic> <receipt>`: a taken message settled as done. */
export async function ackCommand(topic: string, receipt: string, cmd: Call): Promise<void> {
  assertName("topic", topic);
  const { mq } = await openBackend(cmd);
  try {
    await mq.ack(topic, receipt);
  } finally {
    await mq.close();
  }
}

/** `mq nack <topic> <receipt>`: a taken message given back for another attempt. */
export async function nackCommand(
  topic: string,
  receipt: string,
  opts: { delay?: string; reason?: string },
  cmd: Call,
): Promise<void> {
  assertName("topic", topic);
  const delayMs = opts.delay === undefined ? undefined : parseDuration(opts.delay);
  const { mq } = await openBackend(cmd);
  try {
    await mq.nack(topic, receipt, { delayMs, reason: opts.reason });
  } finally {
    await mq.close();
  }
}
