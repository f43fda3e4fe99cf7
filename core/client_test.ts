import { deepStrictEqual as eq, rejects } from "node:assert/strict";
import { MemoryAdapter } from "../adapters/memory/mod.ts";
import type { RecordBatch } from "./record.ts";
import { Mq } from "./client.ts";

/** A memory backend whose appends to partition `failOn` fail while `failing` is set. */
class FlakyAppends extends MemoryAdapter {
  failing = false;
  failOn = 1;
  override append(topic: string, partition: number, batch: RecordBatch): Promise<number> {
    if (this.failing && partition === this.failOn) {
      return Promise.reject(new Error("append failed"));
    }
    return super.append(topic, partition, batch);
  }
}

Deno.test("a retry after a partly failed publish stores the rest: ids of what was not written are free again", async () => {
  const adapter = new FlakyAppends();
  const mq = new Mq(adapter);
  await mq.topics.create("t", { partitions: 2 });
  // Keys that land in both partitions, each message with an id.
  const messages = Array.from({ length: 20 }, (_, i) => ({
    payload: `m${i}`,
    key: `k${i}`,
    id: `id-${i}`,
  }));
  adapter.failing = true;
  await rejects(mq.publishBatch("t", messages), /append failed/);
  adapter.failing = false;
  const retry = await mq.publishBatch("t", messages);
  const stored: string[] = [];
  for await (const m of mq.subscribe("t", { follow: false })) stored.push(m.text());
  eq(stored.sort(), messages.map((m) => m.payload).sort(), "each message stored once");
  eq(retry.count + retry.duplicates, 20);
  await mq.close();
});

Deno.test("publishing through an exchange frees the ids of the topics it did not reach", async () => {
  const adapter = new FlakyAppends();
  adapter.failOn = 0;
  const mq = new Mq(adapter);
  await mq.exchanges.create("fan", "fanout");
  await mq.exchanges.bindMany("fan", [
    { destination: "a", destinationKind: "topic" },
    { destination: "b", destinationKind: "topic" },
  ]);
  // The memory backend writes all targets at once (appendAtomic): make it fall
  // back to one by one, so that the first target's failure leaves the second unwritten.
  (adapter as { appendAtomic?: unknown }).appendAtomic = undefined;
  adapter.failing = true;
  await rejects(mq.publishVia("fan", "", [{ payload: "x", id: "only-once" }]), /append failed/);
  adapter.failing = false;
  await mq.publishVia("fan", "", [{ payload: "x", id: "only-once" }]);
  for (const t of ["a", "b"]) {
    const got: string[] = [];
    for await (const m of mq.subscribe(t, { follow: false })) got.push(m.text());
    eq(got, ["x"], `topic ${t}`);
  }
  await mq.close();
});
