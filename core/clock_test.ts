import { deepStrictEqual as eq, rejects } from "node:assert/strict";
import { MemoryAdapter } from "../adapters/memory/mod.ts";
import { Mq } from "./client.ts";
import { clockWithNow, ManualClock, systemClock } from "./clock.ts";

Deno.test("ManualClock: timers fire in time order at their own time, only when advanced", async () => {
  const clock = new ManualClock(1_000);
  const fired: [string, number][] = [];
  clock.setTimeout(() => fired.push(["b", clock.now()]), 200);
  clock.setTimeout(() => fired.push(["a", clock.now()]), 100);
  const gone = clock.setTimeout(() => fired.push(["gone", clock.now()]), 150);
  gone.cancel();
  await clock.advance(99);
  eq(fired, []);
  eq(clock.now(), 1_099);
  await clock.advance(101);
  eq(fired, [["a", 1_100], ["b", 1_200]]);
  eq(clock.pendingTimers, 0);
});

Deno.test("ManualClock: a timer set by a timer fires within the same advance; intervals repeat until cancelled", async () => {
  const clock = new ManualClock();
  const seen: number[] = [];
  clock.setTimeout(() => clock.setTimeout(() => seen.push(clock.now()), 50), 50);
  const every = clock.setInterval(() => seen.push(-clock.now()), 40);
  await clock.advance(130);
  eq(seen, [-40, -80, 100, -120]);
  every.cancel();
  await clock.advance(1_000);
  eq(seen, [-40, -80, 100, -120]);
});

Deno.test("ManualClock: sleep resolves when its time comes, or at once on abort", async () => {
  const clock = new ManualClock();
  let woke = 0;
  const sleeping = clock.sleep(5_000).then(() => woke = clock.now());
  await clock.advance(4_999);
  eq(woke, 0);
  await clock.advance(1);
  await sleeping;
  eq(woke, 5_000);
  const stop = new AbortController();
  const aborted = clock.sleep(60_000, stop.signal).then(() => clock.now());
  stop.abort();
  eq(await aborted, 5_000);
  eq(clock.pendingTimers, 0, "an aborted sleep leaves no timer behind");
});

Deno.test("systemClock sleeps for real; clockWithNow keeps the timers but not the time", async () => {
  const t = performance.now();
  await systemClock.sleep(20);
  eq(performance.now() - t >= 15, true);
  const stop = new AbortController();
  stop.abort();
  await systemClock.sleep(60_000, stop.signal); // returns at once
  const c = clockWithNow(() => 42);
  eq(c.now(), 42);
});

Deno.test("a client's clock: mq.now is the clock's, and a request times out on it without real waiting", async () => {
  const clock = new ManualClock(Date.UTC(2030, 0, 1));
  const mq = new Mq(new MemoryAdapter(), { clock });
  eq(mq.now(), Date.UTC(2030, 0, 1));
  await mq.topics.create("rpc", {});
  const started = performance.now();
  const answer = mq.request("rpc", "ping", { timeoutMs: 30_000 });
  const failed = rejects(answer, (e: Error & { code?: string }) => {
    eq(e.code, "TIMEOUT");
    eq(/within 30000ms/.test(e.message), true);
    return true;
  });
  // Nobody replies: the 30 s go by on the clock.
  for (let i = 0; i < 50 && clock.pendingTimers === 0; i++) await clock.advance(0);
  await clock.advance(30_000);
  await failed;
  eq(performance.now() - started < 10_000, true, "the 30 s timeout took no real 30 s");
  await mq.close();
});
