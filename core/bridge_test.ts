import { deepStrictEqual as eq, ok, rejects } from "node:assert/strict";
import { Mq } from "./client.ts";
import { type BridgeSink, runBridge } from "./bridge.ts";
import { MqError } from "./errors.ts";
import type { ReceivedMessage } from "./message.ts";
import { MemoryAdapter } from "../adapters/memory/mod.ts";

/** A sink that takes `good` batches, then fails as a broker that is gone does. */
function sinkGoneAfter(good: number): BridgeSink & { got: string[] } {
  const got: string[] = [];
  let sends = 0;
  return {
    got,
    send(_topic: string, messages: ReceivedMessage[]) {
      if (sends++ >= good) return Promise.reject(new Error("connect ECONNREFUSED"));
      for (const m of messages) got.push(m.text());
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
  };
}

Deno.test("bridge: a drain gives up on a target gone for longer than retryForMs, saying what it forwarded", async () => {
  const mq = new Mq(new MemoryAdapter());
  try {
    await mq.publishBatch("t", ["a", "b"]);
    const sink = sinkGoneAfter(1);
    const lines: string[] = [];
    const first = runBridge(mq, sink, { follow: false, onState: (l) => lines.push(l) });
    eq(await first, { t: 2 });
    await mq.publishBatch("t", ["c"]);
    await rejects(
      runBridge(mq, sink, { follow: false, retryForMs: 300, onState: (l) => lines.push(l) }),
      (e: unknown) => {
        ok(MqError.is(e, "UNREACHABLE"), String(e));
        ok(
          /stayed unavailable for \d+ s \(connect ECONNREFUSED\); 0 messages forwarded before/.test(
            (e as Error).message,
          ),
          (e as Error).message,
        );
        return true;
      },
    );
    ok(
      lines.some((l) => l.startsWith("target unavailable (connect ECONNREFUSED)")),
      lines.join("\n"),
    );
    eq(sink.got, ["a", "b"]);
    // Nothing was lost: the message not forwarded is still the group's to take.
    const again = sinkGoneAfter(Infinity);
    eq(await runBridge(mq, again, { follow: false }), { t: 1 });
    eq(again.got, ["c"]);
  } finally {
    await mq.close();
  }
});

Deno.test("bridge: a slow sink never holds more than the window of unconfirmed messages or bytes", async () => {
  const mq = new Mq(new MemoryAdapter());
  try {
    // Sizes that vary, so that a batch sized by the average could overrun the bytes.
    const payloads: Uint8Array[] = [];
    for (let i = 0; i < 3000; i++) payloads.push(new Uint8Array(i % 7 === 0 ? 900 : 10).fill(i));
    await mq.publishBatch("t", payloads);
    const window = { messages: 64, bytes: 4096 };
    let inFlight = 0;
    let maxMessages = 0;
    let maxBytes = 0;
    const got: number[] = [];
    const sink: BridgeSink = {
      async send(_topic, messages) {
        inFlight++;
        eq(inFlight, 1, "a send starts only once the one before was confirmed");
        maxMessages = Math.max(maxMessages, messages.length);
        maxBytes = Math.max(maxBytes, messages.reduce((n, m) => n + m.payload.length, 0));
        // Slow: the sink confirms only after other tasks ran.
        for (let i = 0; i < 3; i++) await new Promise((r) => setTimeout(r, 0));
        for (const m of messages) got.push(m.payload[0]);
        inFlight--;
      },
      close: () => Promise.resolve(),
    };
    eq(await runBridge(mq, sink, { follow: false, window }), { t: 3000 });
    ok(maxMessages <= window.messages, `${maxMessages} messages in one send`);
    ok(maxBytes <= window.bytes, `${maxBytes} bytes in one send`);
    eq(got, payloads.map((p) => p[0]));
    // A message larger than the window's bytes still goes, alone.
    await mq.publish("big", new Uint8Array(10_000));
    let sizes: number[] = [];
    const one: BridgeSink = {
      send(_t, messages) {
        sizes = sizes.concat(messages.map((m) => m.payload.length));
        return Promise.resolve();
      },
      close: () => Promise.resolve(),
    };
    eq(await runBridge(mq, one, { follow: false, topics: ["big"], window }), { big: 1 });
    eq(sizes, [10_000]);
  } finally {
    await mq.close();
  }
});
