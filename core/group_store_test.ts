import { deepStrictEqual as eq } from "node:assert/strict";
import { MemoryAdapter } from "../adapters/memory/mod.ts";
import { ManualClock } from "./clock.ts";
import { Mq } from "./client.ts";
import { loadGroup, updateGroup } from "./_group_store.ts";
import { settleReceipt } from "./_receipts.ts";
import { TopicAdmin } from "./topic_admin.ts";

/** A memory backend whose next `conflicts` compare-and-sets lose to another writer. */
class Contended extends MemoryAdapter {
  conflicts = 0;
  tries = 0;
  override compareAndSet(key: string[], expected: string | null, value: Uint8Array) {
    this.tries++;
    if (this.conflicts > 0) {
      this.conflicts--;
      return Promise.resolve(false);
    }
    return super.compareAndSet(key, expected, value);
  }
}

/** Real time passing (the ManualClock stands still meanwhile). */
const realWait = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits (in real time, up to 10 s: the machine may be busy) until `cond` holds. */
async function eventually(cond: () => boolean, what: string): Promise<void> {
  for (const until = Date.now() + 10_000; !cond();) {
    if (Date.now() > until) throw new Error(`not within 10 s: ${what}`);
    await realWait(5);
  }
}

Deno.test("updateGroup after a conflicting writer waits on its clock: nothing is tried again until the ManualClock moves", async () => {
  const adapter = new Contended();
  const clock = new ManualClock(1_000);
  adapter.conflicts = 2;
  // Waits near their longest (0.999 and 1.998 ms), so that the second is not
  // due within the first advance (random waits summing to under 1 ms would be).
  const random = Math.random;
  Math.random = () => 0.999;
  try {
    let done = false;
    const update = updateGroup(adapter, "t", "g", () => ({ partitions: {} }), (s) => {
      s.deadLettered = (s.deadLettered ?? 0) + 1;
      return "changed";
    }, { clock }).then((r) => {
      done = true;
      return r;
    });
    await eventually(
      () => adapter.tries === 1 && clock.pendingTimers === 1,
      "one try, then asleep",
    );
    await realWait(30);
    eq(
      [done, adapter.tries, clock.pendingTimers],
      [false, 1, 1],
      "asleep on the clock after one try",
    );
    // The first wait is under min(50, 1 + 0) = 1 ms; the second under 2 ms.
    await clock.advance(1);
    await eventually(() => adapter.tries === 2 && clock.pendingTimers === 1, "a second try");
    eq([done, adapter.tries], [false, 2]);
    await realWait(30);
    eq([done, adapter.tries, clock.pendingTimers], [false, 2, 1], "real time does not wake it");
    await clock.advance(2);
    eq(await update, "changed");
    eq([adapter.tries, clock.pendingTimers], [3, 0]);
    eq(
      (await loadGroup(adapter, "t", "g"))?.deadLettered,
      1,
      "applied once, by the write that won",
    );
  } finally {
    Math.random = random;
  }
  await adapter.close();
});

/** Resolves `p`'s outcome into `done.value` so a test can see whether it finished. */
function watch<T>(p: Promise<T>): { done: boolean; result: Promise<T> } {
  const w = { done: false, result: p };
  w.result = p.then((r) => {
    w.done = true;
    return r;
  });
  return w;
}

Deno.test("a group reset through a TopicAdmin given a ManualClock waits on it after a conflicting writer", async () => {
  const adapter = new Contended();
  const clock = new ManualClock(Date.UTC(2030, 0, 1));
  const mq = new Mq(adapter, { clock });
  await mq.publish("t", "m");
  const admin = new TopicAdmin(
    adapter,
    (t) => mq.topicConfig(t),
    () => {},
    () => clock.now(),
    clock,
  );
  adapter.conflicts = 1;
  adapter.tries = 0;
  const reset = watch(admin.resetGroup("t", "g", "end"));
  await eventually(() => adapter.tries === 1 && clock.pendingTimers === 1, "one try, then asleep");
  eq([reset.done, adapter.tries, clock.pendingTimers], [false, 1, 1]);
  await clock.advance(1);
  await reset.result;
  eq(adapter.tries, 2);
  eq((await loadGroup(adapter, "t", "g"))?.partitions[0].next, 1, "reset to the end");
  await mq.close();
});

Deno.test("a settle by receipt with a ManualClock in its context waits on it after a conflicting writer", async () => {
  const adapter = new Contended();
  const clock = new ManualClock(Date.UTC(2030, 0, 1));
  const mq = new Mq(adapter, { clock });
  await mq.publish("t", "m");
  const sub = mq.subscribe("t", { group: "g", follow: false });
  const [m] = (await sub.take(1))!;
  const receipt = m.receipt!;
  adapter.conflicts = 1;
  adapter.tries = 0;
  const ack = watch(settleReceipt(
    {
      adapter,
      now: () => clock.now(),
      clock,
      config: (t) => mq.topicConfig(t),
      publishDeadLetter: () => Promise.reject(new Error("no dead letter expected")),
    },
    "t",
    receipt,
    { kind: "ack" },
  ));
  await eventually(() => adapter.tries === 1 && clock.pendingTimers === 1, "one try, then asleep");
  eq([ack.done, adapter.tries, clock.pendingTimers], [false, 1, 1]);
  await clock.advance(1);
  await ack.result;
  eq(adapter.tries, 2);
  eq((await loadGroup(adapter, "t", "g"))?.partitions[0].floor, 1, "acked");
  await sub.close();
  await mq.close();
});
