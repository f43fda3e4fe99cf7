import { deepStrictEqual as eq } from "node:assert/strict";
import { clockedMq, takeNow } from "./_clock_fixture.ts";
import { CANCEL_KEEP_MS, cancelDelayed, loadCancelled, recordDelayed } from "./_delayed_index.ts";

const MINUTE = 60_000;

Deno.test("a delayed message reaches a group at its time on a ManualClock, not before", async () => {
  const { mq, clock } = clockedMq();
  await mq.topics.create("mail", {});
  await mq.publish("mail", "later", { delayMs: 5 * MINUTE });
  await mq.publish("mail", "now");
  eq(await takeNow(mq, "mail", "g", {}, "ack"), [["now", 1]]);
  await clock.advance(5 * MINUTE - 1);
  eq(await takeNow(mq, "mail", "g", {}, "ack"), []);
  await clock.advance(1);
  eq(await takeNow(mq, "mail", "g", {}, "ack"), [["later", 1]]);
  await mq.close();
});

Deno.test("cancel works only before a delayed message is due, and a cancelled one is never delivered", async () => {
  const { mq, clock } = clockedMq();
  await mq.topics.create("mail", {});
  await mq.publish("mail", "a", { id: "a", delayMs: 10 * MINUTE });
  await mq.publish("mail", "b", { id: "b", delayMs: 10 * MINUTE });
  await clock.advance(9 * MINUTE);
  eq(await mq.cancel("mail", "a"), true);
  eq(await mq.cancel("mail", "a"), false, "already cancelled");
  await clock.advance(MINUTE);
  eq(await mq.cancel("mail", "b"), false, "b is due: too late");
  eq(await takeNow(mq, "mail", "g", {}, "ack"), [["b", 1]]);
  await mq.close();
});

Deno.test("the delayed index prunes due ids and keeps cancelled ones for CANCEL_KEEP_MS past their time", async () => {
  const { mq, clock, adapter } = clockedMq();
  const t0 = clock.now();
  await recordDelayed(adapter, "t", [["x", t0 + MINUTE], ["y", t0 + 2 * MINUTE]], t0);
  eq(await cancelDelayed(adapter, "t", "y", t0 + MINUTE), true);
  eq(await cancelDelayed(adapter, "t", "x", t0 + MINUTE), false, "x is due at t0 + 1 min");
  eq([...await loadCancelled(adapter, "t")], ["y"]);
  // Another cancellation, long after: y's entry goes once CANCEL_KEEP_MS passed its time.
  await recordDelayed(adapter, "t", [["z", t0 + CANCEL_KEEP_MS * 2]], t0);
  await clock.advance(CANCEL_KEEP_MS + 2 * MINUTE);
  eq(await cancelDelayed(adapter, "t", "z", clock.now()), true);
  eq([...await loadCancelled(adapter, "t")], ["z"]);
  await mq.close();
});
