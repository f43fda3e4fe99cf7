import { deepStrictEqual as eq, rejects } from "node:assert/strict";
import { MemoryAdapter } from "../adapters/memory/mod.ts";
import { Mq } from "./client.ts";

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
