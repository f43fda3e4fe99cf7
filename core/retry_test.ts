import { deepStrictEqual as eq, throws } from "node:assert/strict";
import { backoffDelay, parseBackoff } from "./retry.ts";

const b = { baseMs: 1000, maxMs: 8000 };

Deno.test("backoffDelay doubles per attempt up to the maximum, with equal jitter", () => {
  const low = () => 0, high = () => 1;
  eq([1, 2, 3, 4, 5, 9].map((a) => backoffDelay(a, b, high)), [1000, 2000, 4000, 8000, 8000, 8000]);
  eq([1, 2, 3, 4, 5, 9].map((a) => backoffDelay(a, b, low)), [500, 1000, 2000, 4000, 4000, 4000]);
  eq(backoffDelay(3, b, () => 0.5), 3000);
  eq(backoffDelay(1_000, b, high), 8000, "no overflow for huge attempts");
});

Deno.test("parseBackoff reads DUR[,MAX] and refuses a maximum below the base", () => {
  eq(parseBackoff("500ms,30s"), { baseMs: 500, maxMs: 30_000 });
  eq(parseBackoff("2s"), { baseMs: 2000, maxMs: 60_000 });
  eq(parseBackoff("2m"), { baseMs: 120_000, maxMs: 120_000 });
  throws(() => parseBackoff("5s,1s"), /below its base/);
});

import { clockedMq, takeNow } from "./_clock_fixture.ts";

Deno.test("a nacked message comes back after its backoff on a ManualClock, then is dead-lettered after maxAttempts", async () => {
  const { mq, clock } = clockedMq();
  await mq.topics.create("jobs", { maxAttempts: 3 });
  await mq.publish("jobs", "j1");
  const backoff = { baseMs: 1_000, maxMs: 8_000 };
  eq(await takeNow(mq, "jobs", "w", { backoff }, "nack"), [["j1", 1]]);
  // The second attempt waits between half and all of baseMs (equal jitter).
  await clock.advance(499);
  eq(await takeNow(mq, "jobs", "w", { backoff }), [], "not due before half the base");
  await clock.advance(501);
  eq(await takeNow(mq, "jobs", "w", { backoff }, "nack"), [["j1", 2]]);
  // The third waits between 1 s and 2 s.
  await clock.advance(999);
  eq(await takeNow(mq, "jobs", "w", { backoff }), []);
  await clock.advance(1_001);
  eq(await takeNow(mq, "jobs", "w", { backoff }, "nack"), [["j1", 3]]);
  await clock.advance(60_000);
  eq(await takeNow(mq, "jobs", "w", { backoff }), [], "the last attempt failed: dead-lettered");
  const dead = await takeNow(mq, "jobs.dlq", "inspect");
  eq(dead.map(([text]) => text), ["j1"]);
  await mq.close();
});
