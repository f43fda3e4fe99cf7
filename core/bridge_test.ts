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
