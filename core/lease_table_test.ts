import { deepStrictEqual as assertEquals } from "node:assert/strict";
import {
  claim,
  inFlight,
  lag,
  newCursor,
  release,
  settle,
  toRanges,
  waitingDelay,
  waitingRetry,
} from "./_lease_table.ts";

const bounds = (end: number) => ({ start: 0, end });

Deno.test("claim takes fresh offsets up to max and the end", () => {
  const c = newCursor(0);
  assertEquals(claim(c, bounds(10), 4, 0, 100, "a"), [{ from: 0, to: 4, attempt: 1 }]);
  assertEquals(claim(c, bounds(10), 100, 0, 100, "b"), [{ from: 4, to: 10, attempt: 1 }]);
  assertEquals(claim(c, bounds(10), 100, 0, 100, "c"), []);
  assertEquals(inFlight(c), 10);
});

Deno.test("out-of-order acks advance the floor only over a contiguous prefix", () => {
  const c = newCursor(0);
  claim(c, bounds(4), 4, 0, 100, "a");
  assertEquals(settle(c, "a", [{ from: 3, to: 4 }]), 0);
  assertEquals(settle(c, "a", [{ from: 1, to: 2 }]), 0);
  assertEquals(c.floor, 0);
  assertEquals(lag(c, 4), 2);
  settle(c, "a", [{ from: 2, to: 3 }]);
  assertEquals(c.floor, 0);
  settle(c, "a", [{ from: 0, to: 1 }]);
  assertEquals([c.floor, c.settled, c.leases, lag(c, 4)], [4, [], [], 0]);
});

Deno.test("an expired lease is claimed again with the next attempt; the old token is stale", () => {
  const c = newCursor(0);
  claim(c, bounds(2), 2, 0, 100, "a");
  assertEquals(claim(c, bounds(2), 2, 50, 150, "b"), []);
  assertEquals(claim(c, bounds(2), 2, 100, 200, "b"), [{
    from: 0,
    to: 2,
    attempt: 2,
    firstFailure: 100,
  }]);
  assertEquals(settle(c, "a", [{ from: 0, to: 2 }]), 2);
  assertEquals(settle(c, "b", [{ from: 0, to: 2 }]), 0);
  assertEquals(c.floor, 2);
});

Deno.test("release with a failure counts an attempt and waits for notBefore; without, it does not count", () => {
  const c = newCursor(0);
  claim(c, bounds(2), 2, 0, 100, "a");
  release(c, "a", [{ from: 0, to: 1 }], 30, 10);
  release(c, "a", [{ from: 1, to: 2 }], 0);
  assertEquals(waitingRetry(c), 1);
  assertEquals(claim(c, bounds(2), 10, 5, 100, "b"), [{ from: 1, to: 2, attempt: 1 }]);
  assertEquals(claim(c, bounds(2), 10, 29, 100, "c"), []);
  assertEquals(claim(c, bounds(2), 10, 30, 100, "c"), [{
    from: 0,
    to: 1,
    attempt: 2,
    firstFailure: 10,
  }]);
});

Deno.test("trimmed offsets below the start are dropped", () => {
  const c = newCursor(0);
  claim(c, bounds(5), 5, 0, 100, "a");
  assertEquals(claim(c, { start: 3, end: 8 }, 10, 0, 100, "b"), [{ from: 5, to: 8, attempt: 1 }]);
  assertEquals(c.floor, 3);
  assertEquals(c.leases.map((l) => [l.from, l.to]), [[3, 5], [5, 8]]);
});

Deno.test("toRanges compresses sorted offsets", () => {
  assertEquals(toRanges([1, 2, 3, 7, 9, 10]), [{ from: 1, to: 4 }, { from: 7, to: 8 }, {
    from: 9,
    to: 11,
  }]);
});

Deno.test("waitingDelay counts only never-delivered offsets not yet due, not releases", () => {
  const c = newCursor(0);
  claim(c, bounds(3), 3, 0, 100, "a");
  release(c, "a", [{ from: 0, to: 1 }], 0); // released at shutdown: due now
  release(c, "a", [{ from: 1, to: 2 }], 500); // a delayed message, due at 500
  release(c, "a", [{ from: 2, to: 3 }], 400, 10); // a failed attempt: a retry, not a delay
  assertEquals([waitingDelay(c, 10), waitingRetry(c)], [1, 1]);
  assertEquals(waitingDelay(c, 500), 0);
});

// On a fake clock, through a client: the visibility timeout, not real time.

import { clockedMq, takeNow } from "./_clock_fixture.ts";

Deno.test("visibility timeout on a ManualClock: a lease not settled is delivered again once it expires, not before", async () => {
  const { mq, clock } = clockedMq();
  await mq.topics.create("jobs", {});
  await mq.publish("jobs", "j1");
  // A consumer takes it and hangs (neither settles nor closes).
  const hung = mq.subscribe("jobs", { group: "w", follow: false, visibilityMs: 30_000 });
  assertEquals((await hung.take(10))?.map((m) => [m.text(), m.attempt]), [["j1", 1]]);
  await clock.advance(29_999);
  assertEquals(await takeNow(mq, "jobs", "w"), [], "still leased");
  await clock.advance(1);
  assertEquals(await takeNow(mq, "jobs", "w", {}, "ack"), [["j1", 2]], "expired: the next attempt");
  await hung.close();
  await clock.advance(60_000);
  assertEquals(await takeNow(mq, "jobs", "w"), [], "acked: never again");
  await mq.close();
});
