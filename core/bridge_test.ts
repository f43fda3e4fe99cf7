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

/** A send the test settles: which batch, and how to end it. */
interface HeldSend {
  texts: string[];
  resolve: () => void;
  reject: (e: Error) => void;
}

/** A pipelined sink (`inFlight`) whose sends wait until the test settles them. */
function heldSink(
  inFlight: number,
): BridgeSink & { sends: HeldSend[]; open: number; most: number } {
  const sink = {
    sends: [] as HeldSend[],
    open: 0,
    most: 0,
    inFlight,
    send(_topic: string, messages: ReceivedMessage[]) {
      sink.open++;
      sink.most = Math.max(sink.most, sink.open);
      return new Promise<void>((resolve, reject) => {
        sink.sends.push({ texts: messages.map((m) => m.text()), resolve, reject });
      }).finally(() => sink.open--);
    },
    close: () => Promise.resolve(),
  };
  return sink;
}

async function waitFor(what: string, check: () => boolean) {
  for (let i = 0; !check(); i++) {
    if (i > 2000) throw new Error(`still not: ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

const texts = (n: number) => Array.from({ length: n }, (_, i) => `m${i}`);

Deno.test("bridge: a pipelined sink gets several windows at once, and nothing is acked past one not confirmed", async () => {
  const mq = new Mq(new MemoryAdapter());
  try {
    await mq.publishBatch("t", texts(100));
    const sink = heldSink(4);
    const stop = new AbortController();
    const run = runBridge(mq, sink, {
      follow: false,
      window: { messages: 10 },
      signal: stop.signal,
    });
    await waitFor("4 windows in flight", () => sink.sends.length === 4);
    eq(sink.most, 4, "4 sends at once");
    // Windows 2 to 4 are confirmed, the first is not: the run stops.
    for (const s of sink.sends.slice(1)) s.resolve();
    await new Promise((r) => setTimeout(r, 20));
    eq(sink.sends.length, 4, "no more than 4 in flight");
    stop.abort();
    sink.sends[0].reject(new Error("connection lost"));
    await rejects(run, /connection lost/);
    // The position did not move: everything comes again, from the first window, in order.
    const again = sinkGoneAfter(Infinity);
    eq(await runBridge(mq, again, { follow: false }), { t: 100 });
    eq(again.got, texts(100));
  } finally {
    await mq.close();
  }
});

Deno.test("bridge: a failure mid-pipe sends again from the first window not confirmed, in order", async () => {
  const mq = new Mq(new MemoryAdapter());
  try {
    await mq.publishBatch("t", texts(100));
    const sink = heldSink(4);
    const run = runBridge(mq, sink, { follow: false, window: { messages: 10 } });
    await waitFor("4 windows in flight", () => sink.sends.length === 4);
    // The second window fails; the first, third and fourth are stored.
    sink.sends[0].resolve();
    sink.sends[1].reject(new Error("connection lost"));
    sink.sends[2].resolve();
    sink.sends[3].resolve();
    // From then on every send is confirmed as it comes.
    let done = false;
    const ended = run.finally(() => done = true);
    for (let settled = 4; !done; await new Promise((r) => setTimeout(r, 1))) {
      for (; settled < sink.sends.length; settled++) sink.sends[settled].resolve();
    }
    eq(await ended, { t: 100 });
    const windows = sink.sends.map((s) => s.texts[0]);
    eq(windows.slice(0, 4), ["m0", "m10", "m20", "m30"]);
    // Sent again from the window that failed, in order, to the end.
    const resent = windows.indexOf("m10", 2);
    ok(resent > 0, windows.join());
    eq(windows.slice(resent), texts(100).filter((_, i) => i % 10 === 0).slice(1));
    // All acked: nothing is left for the group.
    const again = sinkGoneAfter(Infinity);
    eq(await runBridge(mq, again, { follow: false }), {});
  } finally {
    await mq.close();
  }
});

Deno.test("bridge: a rerun after a run killed mid-batch waits for its leases, and sends in order", async () => {
  const mq = new Mq(new MemoryAdapter());
  try {
    await mq.publishBatch("t", texts(30));
    // The killed run: its first window leased, never confirmed nor released.
    const killed = mq.subscribe("t", { group: "bridge", follow: false, visibilityMs: 300 });
    eq((await killed.take(10))?.length, 10);
    await killed.detach();
    const sink = sinkGoneAfter(Infinity);
    const lines: string[] = [];
    const result = await runBridge(mq, sink, {
      follow: false,
      window: { messages: 10 },
      onState: (l) => lines.push(l),
    });
    eq(result, { t: 30 });
    eq(sink.got, texts(30), "the leased window first, then the rest");
    ok(
      lines.some((l) => /^t: waiting 1 s for the leases of an earlier run/.test(l)),
      lines.join("\n"),
    );
  } finally {
    await mq.close();
  }
});

Deno.test("bridge: a pipelined drain that gives up ends then, not once its own leases expire", async () => {
  const mq = new Mq(new MemoryAdapter());
  try {
    await mq.publishBatch("t", texts(10));
    // Refuses everything; the read ahead meanwhile waits on the run's own leases.
    const sink: BridgeSink = {
      inFlight: 4,
      send: () => Promise.reject(new Error("connect ECONNREFUSED")),
      close: () => Promise.resolve(),
    };
    const t = Date.now();
    await rejects(
      runBridge(mq, sink, { follow: false, retryForMs: 300, visibilityMs: 20_000 }),
      (e: unknown) => MqError.is(e, "UNREACHABLE"),
    );
    ok(Date.now() - t < 10_000, `ended after ${Date.now() - t} ms`);
  } finally {
    await mq.close();
  }
});
