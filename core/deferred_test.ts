import { deepStrictEqual as eq, rejects } from "node:assert/strict";
import { deferred } from "./_deferred.ts";
import { MemoryAdapter } from "../adapters/memory/mod.ts";
import { Mq } from "./client.ts";

Deno.test("deferred: makes the real object once, on the first call, and forwards every call", async () => {
  let made = 0;
  const real = {
    n: 0,
    add(k: number) {
      this.n += k;
      return Promise.resolve(this.n);
    },
  };
  const stand = deferred(() => {
    made++;
    return Promise.resolve(real);
  });
  eq(made, 0);
  eq(await Promise.all([stand.add(1), stand.add(2)]), [1, 3]);
  eq(made, 1);
  // Not a thenable: awaiting the stand-in gives the stand-in.
  eq((await stand) === stand, true);
  await rejects(() => (stand as unknown as { n: () => Promise<void> }).n(), /n is not a method/);
});

Deno.test("deferred: mq.topics and mq.exchanges work before and after their modules load", async () => {
  const mq = new Mq(new MemoryAdapter());
  await mq.exchanges.create("ev", "fanout");
  await mq.topics.create("a", { partitions: 2 });
  await mq.exchanges.bind("ev", { destination: "a", destinationKind: "topic" });
  eq((await mq.publishVia("ev", "k", ["x"])).topics, ["a"]);
  eq((await mq.topics.list()).map((t) => [t.name, t.partitions, t.messages]), [["a", 2, 1]]);
  await mq.close();
});
