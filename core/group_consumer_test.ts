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
