import { deepStrictEqual as eq, rejects } from "node:assert/strict";
import { MemoryAdapter } from "../adapters/memory/mod.ts";
import type { TransactionCommit } from "./adapter.ts";
import { clockedMq, takeNow } from "./_clock_fixture.ts";
import { Mq } from "./client.ts";
import { ManualClock } from "./clock.ts";
import { MqError } from "./errors.ts";
import { runTransaction, type TransactionHost } from "./transaction.ts";

/** Waits (in real time, up to 10 s: the machine may be busy) until `cond` holds. */
async function eventually(cond: () => boolean, what: string): Promise<void> {
  for (const until = Date.now() + 10_000; !cond();) {
    if (Date.now() > until) throw new Error(`not within 10 s: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const MINUTE = 60_000;

Deno.test("a transaction's delayed publish reaches a group at its time on the client's ManualClock, not before", async () => {
  const { mq, clock } = clockedMq();
  await mq.transaction((tx) => {
    tx.publish("mail", "later", { delayMs: 5 * MINUTE });
    tx.publish("mail", "now");
  });
  eq(await takeNow(mq, "mail", "g", {}, "ack"), [["now", 1]]);
  await clock.advance(5 * MINUTE - 1);
  eq(await takeNow(mq, "mail", "g", {}, "ack"), []);
  await clock.advance(1);
  eq(await takeNow(mq, "mail", "g", {}, "ack"), [["later", 1]]);
  await mq.close();
});

Deno.test("a transaction's nack retries after its delay on the ManualClock; a lease held to its last ms still commits", async () => {
  const { mq, clock } = clockedMq();
  await mq.publish("jobs", "job");
  const sub = mq.subscribe("jobs", { group: "g", visibilityMs: MINUTE, follow: false });
  const [m] = (await sub.take(1))!;
  await clock.advance(MINUTE - 1);
  const r = await mq.transaction((tx) => {
    tx.publish("log", "failed once");
    tx.nack(m, { delayMs: 10 * MINUTE });
  });
  await sub.close();
  eq([r.published, r.acked, r.nacked], [1, 0, 1]);
  await clock.advance(10 * MINUTE - 1);
  eq(await takeNow(mq, "jobs", "g"), [], "not due yet");
  await clock.advance(1);
  eq(await takeNow(mq, "jobs", "g", {}, "ack"), [["job", 2]]);
  await mq.close();
});

Deno.test("a transaction's lease expires at its visibility timeout on the ManualClock: LEASE_EXPIRED, nothing written", async () => {
  const { mq, clock, adapter } = clockedMq();
  await mq.publish("jobs", "job");
  const s1 = mq.subscribe("jobs", { group: "g", visibilityMs: MINUTE, follow: false });
  const [m1] = (await s1.take(1))!;
  await clock.advance(MINUTE);
  eq(await takeNow(mq, "jobs", "g", { visibilityMs: MINUTE }), [["job", 2]], "the lease went");
  await rejects(
    mq.transaction((tx) => {
      tx.publish("out", "result");
      tx.ack(m1);
    }),
    (e) => e instanceof MqError && e.code === "LEASE_EXPIRED",
  );
  await s1.close();
  eq((await adapter.bounds("out", 0)).end, 0, "the output was not written");
  await mq.close();
});

/** A memory backend whose next `conflicts` commits lose to another writer. */
class Contended extends MemoryAdapter {
  conflicts = 0;
  tries = 0;
  override commitTransaction(commit: TransactionCommit) {
    this.tries++;
    if (this.conflicts > 0) {
      this.conflicts--;
      return Promise.resolve("conflict" as const);
    }
    return super.commitTransaction(commit);
  }
}

Deno.test("an atomic commit that meets a conflicting writer waits on the host's clock before trying again", async () => {
  const adapter = new Contended();
  const clock = new ManualClock(Date.UTC(2030, 0, 1));
  const mq = new Mq(adapter, { clock });
  const host: TransactionHost = {
    adapter,
    now: () => clock.now(),
    clock,
    topicConfig: (t, o) => mq.topicConfig(t, o),
    invalidRecord: () => undefined,
  };
  adapter.conflicts = 1;
  let done = false;
  const commit = runTransaction(host, (tx) => tx.publish("t", "x")).then((r) => {
    done = true;
    return r;
  });
  await eventually(() => clock.pendingTimers >= 1, "asleep on the clock");
  await new Promise((r) => setTimeout(r, 30)); // real time: the ManualClock stands still
  eq([done, adapter.tries, clock.pendingTimers], [false, 1, 1], "asleep on the clock");
  await clock.advance(1); // the first wait is under min(20, 1) = 1 ms
  eq((await commit).published, 1);
  eq([adapter.tries, clock.pendingTimers], [2, 0]);
  eq((await adapter.bounds("t", 0)).end, 1, "written once");
  await mq.close();
});

/** A memory backend taken as effectively-once, whose next `conflicts` compare-and-sets lose. */
class ContendedOnce extends MemoryAdapter {
  override readonly capabilities = {
    ...new MemoryAdapter().capabilities,
    transactions: "effectively-once" as const,
  };
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

Deno.test("an effectively-once commit's settlements wait on the host's clock after a conflicting writer", async () => {
  const adapter = new ContendedOnce();
  const clock = new ManualClock(Date.UTC(2030, 0, 1));
  const mq = new Mq(adapter, { clock });
  await mq.publish("in", "job");
  await mq.topics.create("out", {}); // the conflicts below meet the group's document only
  const sub = mq.subscribe("in", { group: "g", follow: false });
  const [m] = (await sub.take(1))!;
  const host: TransactionHost = {
    adapter,
    now: () => clock.now(),
    clock,
    topicConfig: (t, o) => mq.topicConfig(t, o),
    invalidRecord: () => undefined,
  };
  adapter.conflicts = 1;
  adapter.tries = 0;
  let done = false;
  const commit = runTransaction(host, (tx) => {
    tx.publish("out", "result");
    tx.ack(m);
  }).then((r) => {
    done = true;
    return r;
  });
  await eventually(() => clock.pendingTimers >= 1, "asleep on the clock");
  await new Promise((r) => setTimeout(r, 30)); // real time: the ManualClock stands still
  eq([done, clock.pendingTimers], [false, 1], "asleep on the clock");
  const tries = adapter.tries;
  await clock.advance(1); // updateGroup's first wait is under min(50, 1) = 1 ms
  eq([(await commit).published, (await commit).acked], [1, 1]);
  eq(adapter.tries, tries + 1);
  await sub.close();
  eq(await takeNow(mq, "in", "g"), [], "the input is acked");
  await mq.close();
});
