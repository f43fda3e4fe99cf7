/** Conformance cases: topic administration. Run against every adapter by `conformance.ts`. */
import { deepStrictEqual as eq, ok, rejects } from "node:assert/strict";
import { code, type DefineCase, drain, texts, topicName } from "./_helpers.ts";

/** Registers the cases. */
export function adminCases(test: DefineCase): void {
  // --- administration ---------------------------------------------------------
  test("topics: create, list with counts, info, purge (offsets go on), remove", async (mq) => {
    const t = topicName("admin");
    await mq.topics.create(t, { partitions: 2 });
    await rejects(mq.topics.create(t), code("TOPIC_EXISTS"));
    await mq.publishBatch(t, ["a", "b", "c"]);
    eq((await mq.topics.list()).find((x) => x.name === t), { name: t, partitions: 2, messages: 3 });
    await drain(mq, t, "g");
    const info = await mq.topics.info(t);
    eq([info.partitions.length, info.messages, info.groups.map((g) => [g.name, g.lag])], [2, 3, [[
      "g",
      0,
    ]]]);
    eq(await mq.topics.purge(t), 3);
    eq(await texts(mq, t), []);
    await mq.publish(t, "d", { partition: 0 });
    const ends = (await mq.topics.info(t)).partitions.map((p) => p.end);
    ok(ends.reduce((a, b) => a + b, 0) === 4, `offsets go on after a purge: ${ends}`);
    await mq.topics.remove(t);
    eq((await mq.topics.list()).some((x) => x.name === t), false);
    await rejects(mq.topics.info(t), code("TOPIC_NOT_FOUND"));
  });
}
