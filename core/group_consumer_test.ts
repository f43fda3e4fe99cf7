import { deepStrictEqual as eq, rejects } from "node:assert/strict";
import { MemoryAdapter } from "../adapters/memory/mod.ts";
import { Mq } from "./client.ts";
import { ManualClock } from "./clock.ts";
import { CLOSE_WAIT_MS, HELD_BACK_WAIT_MS } from "./_group_consumer.ts";

/** A memory backend whose state writes fail while `failing` is set. */
class FlakyAdapter extends MemoryAdapter {
  failing = false;
  override compareAndSet(key: string[], expected: string | null, value: Uint8Array) {
    if (this.failing) return Promise.reject(new Error("state write failed"));
    return super.compareAndSet(key, expected, value);
  }
}

Deno.test("acks given before a failed state write are written with the next one", async () => {
  const adapter = new FlakyAdapter();
  const mq = new Mq(adapter);
  await mq.publishBatch("t", ["a", "b", "c"]);
  const sub = mq.subscribe("t", { group: "g", follow: false });
  const batch = (await sub.take(3))!;
  sub.ackAll(batch);
  adapter.failing = true;
  await rejects(sub.commit(), /state write failed/);
  adapter.failing = false;
  await sub.commit();
  const [g] = (await mq.topics.info("t")).groups;
  eq([g.lag, g.inFlight], [0, 0], "none of the three is delivered again");
  await sub.close();
  await mq.close();
});

/** A memory backend whose state writes take 200 ms while `slow`, and fail if it went meanwhile. */
class SlowAdapter extends MemoryAdapter {
  slow = false;
  gone = false;
  override async compareAndSet(key: string[], expected: string | null, value: Uint8Array) {
    if (this.slow) {
      await new Promise((r) => setTimeout(r, 200));
      if (this.gone) throw new Error("connection draining");
    }
    return super.compareAndSet(key, expected, value);
  }
}

Deno.test("closing while a claim is in flight keeps the acks it carries (nothing delivered again)", async () => {
  const adapter = new SlowAdapter();
  const mq = new Mq(adapter);
  await mq.publishBatch("t", ["a", "b", "c", "d"]);
  const sub = mq.subscribe("t", { group: "g" });
  const batch = (await sub.take(2))!;
  eq(batch.map((m) => m.text()), ["a", "b"]);
  sub.ackAll(batch);
  adapter.slow = true;
  // The next claim carries the acks of a and b; the subscription closes meanwhile,
  // then the backend goes (as closing the client drains its connection).
  const claiming = sub.take(2);
  await new Promise((r) => setTimeout(r, 20));
  await sub.close();
  adapter.gone = true;
  await claiming.catch(() => {});
  adapter.slow = adapter.gone = false;
  const [g] = (await mq.topics.info("t")).groups;
  eq([g.lag, g.inFlight], [2, 0], "a and b acked; c and d back for the group, none leased");
  await mq.close();
});

/** A memory backend whose log reads fail as a file deleted under the reader does. */
class VanishingLog extends MemoryAdapter {
  vanished = false;
  override async openReader(topic: string, partition: number, from: number) {
    const gone = () => new Deno.errors.NotFound(`open '${topic}/${partition}/0.log'`);
    if (this.vanished) throw gone();
    const reader = await super.openReader(topic, partition, from);
    const read = reader.read.bind(reader);
    reader.read = (max: number) => this.vanished ? Promise.reject(gone()) : read(max);
    return reader;
  }
}

Deno.test("a group consumer whose log went with its topic's settings says the topic was removed", async () => {
  const adapter = new VanishingLog();
  const mq = new Mq(adapter);
  await mq.publishBatch("t", ["a", "b"]);
  const sub = mq.subscribe("t", { group: "g", follow: false });
  eq((await sub.take(1))!.map((m) => m.text()), ["a"]);
  // `topics rm` removes the settings first, then the log: a read between fails under us.
  await adapter.deleteState(["topics", "t"]);
  adapter.vanished = true;
  await rejects(sub.take(1), { code: "TOPIC_NOT_FOUND", message: 'topic "t" was removed' });
  await sub.close();
  // While the settings are there, a failing read is what it is.
  const other = new VanishingLog();
  const mq2 = new Mq(other);
  await mq2.publishBatch("u", ["a"]);
  other.vanished = true;
  const sub2 = mq2.subscribe("u", { group: "g", follow: false });
  await rejects(sub2.take(1), (e: unknown) => e instanceof Deno.errors.NotFound);
  await sub2.close();
  await mq.close();
  await mq2.close();
});

/** Real time passing (a ManualClock stands still meanwhile). */
const realWait = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits (in real time, up to 10 s: the machine may be busy) until `cond` holds. */
async function eventually(cond: () => boolean, what: string): Promise<void> {
  for (const until = Date.now() + 10_000; !cond();) {
    if (Date.now() > until) throw new Error(`not within 10 s: ${what}`);
    await realWait(5);
  }
}

/** Tracks whether `p` finished, so a test can see it has not yet. */
function watch<T>(p: Promise<T>): { done: boolean; result: Promise<T> } {
  const w = { done: false, result: p };
  w.result = p.then((r) => {
    w.done = true;
    return r;
  });
  return w;
}

/**
 * A memory backend whose next `conflicts` compare-and-sets lose to another
 * writer, and whose compare-and-sets wait while `held` is set (until `let()`).
 */
class Gated extends MemoryAdapter {
  conflicts = 0;
  tries = 0;
  /** Compare-and-sets waiting at the gate. */
  waiting = 0;
  #gate: Promise<void> | undefined;
  #open: (() => void) | undefined;
  hold(): void {
    this.#gate = new Promise((r) => this.#open = r);
  }
  let(): void {
    this.#gate = undefined;
    this.#open?.();
  }
  override async compareAndSet(key: string[], expected: string | null, value: Uint8Array) {
    this.tries++;
    if (this.conflicts > 0) {
      this.conflicts--;
      return false;
    }
    if (this.#gate) {
      this.waiting++;
      await this.#gate;
      this.waiting--;
    }
    return super.compareAndSet(key, expected, value);
  }
}

Deno.test("a group consumer's state writes after a conflicting writer wait on the client's ManualClock (claim, extend, commit)", async () => {
  const adapter = new Gated();
  const clock = new ManualClock(Date.UTC(2030, 0, 1));
  const mq = new Mq(adapter, { clock });
  await mq.publish("t", "m");
  const sub = mq.subscribe("t", { group: "g", follow: false });
  // Each write loses once, then sleeps a random wait under 1 ms on the clock:
  // real time does not end it, a 1 ms advance does.
  const contended = async <T>(what: string, write: () => Promise<T>): Promise<T> => {
    adapter.conflicts = 1;
    adapter.tries = 0;
    const w = watch(write());
    await eventually(() => adapter.tries === 1 && clock.pendingTimers === 1, `${what}: asleep`);
    await realWait(30);
    eq([w.done, adapter.tries, clock.pendingTimers], [false, 1, 1], `${what}: still asleep`);
    await clock.advance(1);
    const result = await w.result;
    eq([adapter.tries, clock.pendingTimers], [2, 0], `${what}: written on the second try`);
    return result;
  };
  const batch = (await contended("claim", () => sub.take(1)))!;
  eq(batch.map((m) => m.text()), ["m"]);
  await contended("extend", () => sub.extend());
  const [held] = (await mq.topics.info("t")).groups;
  eq(held.inFlight, 1);
  batch[0].ack();
  await contended("commit", () => sub.commit());
  const [g] = (await mq.topics.info("t")).groups;
  eq([g.lag, g.inFlight], [0, 0], "acked");
  await sub.close();
  await mq.close();
});

Deno.test("an ordered claim held back behind a key whose ack came meanwhile waits on the client's ManualClock", async () => {
  const adapter = new Gated();
  const clock = new ManualClock(Date.UTC(2030, 0, 1));
  const mq = new Mq(adapter, { clock });
  await mq.publishBatch("t", [{ payload: "a", key: "k" }, { payload: "b", key: "k" }]);
  const sub = mq.subscribe("t", { group: "g", ordered: true });
  const [a, ...rest] = (await sub.take(2))!;
  eq([a.text(), rest.length], ["a", 0], "b waits behind a, its key's holder");
  // The next claim's write is held; a is acked meanwhile, so the claim finds b
  // still behind a, with a's ack queued here: it waits a moment and claims again.
  adapter.hold();
  const next = watch(sub.take(1));
  await eventually(() => adapter.waiting === 1, "the claim's write at the gate");
  a.ack();
  adapter.let();
  await eventually(() => clock.pendingTimers === 1, "asleep on the clock");
  await realWait(30);
  eq([next.done, clock.pendingTimers], [false, 1], "real time does not end the wait");
  await clock.advance(HELD_BACK_WAIT_MS - 1);
  eq(next.done, false, "not before its time");
  await clock.advance(1);
  eq((await next.result)!.map((m) => m.text()), ["b"], "a's ack applied, b claimed");
  await sub.close();
  await mq.close();
});

Deno.test("closing while a claim hangs waits for it on the client's ManualClock, then closes", async () => {
  const adapter = new Gated();
  const clock = new ManualClock(Date.UTC(2030, 0, 1));
  const mq = new Mq(adapter, { clock });
  await mq.publish("t", "m");
  const sub = mq.subscribe("t", { group: "g" });
  adapter.hold();
  const claiming = sub.take(1).catch((e: unknown) => e);
  await eventually(() => adapter.waiting === 1, "the claim's write at the gate");
  const closing = watch(sub.close());
  await eventually(() => clock.pendingTimers === 1, "closing asleep on the clock");
  await realWait(30);
  eq(closing.done, false, "waiting for the claim");
  await clock.advance(CLOSE_WAIT_MS - 1);
  eq(closing.done, false, "not before its time");
  await clock.advance(1);
  await eventually(() => closing.done, "closed once the wait ran out");
  eq(clock.pendingTimers, 0);
  adapter.let();
  await claiming;
  await mq.close();
});
