import { deepStrictEqual as eq } from "node:assert/strict";
import { clockedMq } from "./_clock_fixture.ts";
import { enforceRetention, retainedSince } from "./_retention.ts";
import { makeTopicConfig } from "./topic_config.ts";

const HOUR = 3_600_000;

async function texts(mq: import("./client.ts").Mq, topic: string): Promise<string[]> {
  const out: string[] = [];
  for await (const m of mq.subscribe(topic, { follow: false })) out.push(m.text());
  return out;
}

Deno.test("retention by age on a ManualClock: what grew older than the age is trimmed on the next publish, and never read", async () => {
  const { mq, clock, adapter } = clockedMq();
  await mq.topics.create("events", { retentionAgeMs: 2 * HOUR });
  await mq.publish("events", "t0");
  await clock.advance(HOUR);
  await mq.publish("events", "t1h");
  await clock.advance(HOUR);
  // t0 is exactly two hours old: kept up to, not past, the age.
  eq(await texts(mq, "events"), ["t0", "t1h"]);
  await clock.advance(1);
  eq(await texts(mq, "events"), ["t1h"], "a reader skips what aged out before any trim");
  eq((await adapter.bounds("events", 0)).start, 0, "nothing trimmed yet");
  await mq.publish("events", "t2h");
  eq((await adapter.bounds("events", 0)).start, 1, "the publish trimmed t0");
  await clock.advance(10 * HOUR);
  eq(await texts(mq, "events"), []);
  await mq.close();
});

Deno.test("enforceRetention cuts at the first record not older than the age, at the time it is given", async () => {
  const { mq, clock, adapter } = clockedMq();
  await mq.topics.create("t", {});
  for (let i = 0; i < 5; i++) {
    await mq.publish("t", `m${i}`);
    await clock.advance(HOUR);
  }
  // Records at 0h..4h; now is 5h.
  const config = makeTopicConfig({ retentionAgeMs: 3 * HOUR }, clock.now());
  eq(retainedSince(config, clock.now()), clock.now() - 3 * HOUR);
  await enforceRetention(adapter, "t", config, 0, clock.now());
  eq((await adapter.bounds("t", 0)).start, 2, "0h and 1h are older than 3 h");
  await enforceRetention(adapter, "t", config, 0, clock.now() + HOUR);
  eq((await adapter.bounds("t", 0)).start, 3);
  await mq.close();
});
