import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { Mq } from "./client.ts";
import { adapterOf } from "./_access.ts";
import { overview, RateTracker, topicMatcher } from "./overview.ts";
import { listDeadLetters, purgeDeadLetters, replayDeadLetters } from "./dead_letters.ts";
import { formatMetrics } from "./metrics.ts";
import { browseMessages } from "./browse.ts";
import { MemoryAdapter } from "../adapters/memory/mod.ts";

function client(clock = { now: 1_000_000 }): Mq {
  return new Mq(new MemoryAdapter(), { now: () => clock.now });
}

async function failAll(mq: Mq, topic: string, group = "w"): Promise<void> {
  await mq.consume(topic, { group, follow: false, backoff: { baseMs: 1, maxMs: 1 } }, () => {
    throw new Error("bad input");
  });
}

Deno.test("overview: counts, groups with lag and in flight, dead letters linked both ways", async () => {
  const mq = client();
  await mq.topics.create("jobs", { partitions: 2, maxAttempts: 1 });
  await mq.publishBatch("jobs", ["a", "b", "c", "d"].map((p, i) => ({ payload: p, key: `k${i}` })));
  await failAll(mq, "jobs");
  await mq.publishBatch("jobs", ["e", "f"]);
  const sub = mq.subscribe("jobs", { group: "slow", follow: false });
  const taken = await sub.take(1);
  assertEquals(taken?.length, 1);
  const o = await overview(mq);
  assertEquals(o.topics.map((t) => t.name), ["jobs", "jobs.dlq"]);
  const [jobs, dlq] = o.topics;
  assertEquals(
    [jobs.partitions, jobs.messages, jobs.published, jobs.deadLetters, jobs.dlq],
    [2, 6, 6, 4, "jobs.dlq"],
  );
  assertEquals(jobs.bytes, 6); // the memory backend counts payload bytes
  assertEquals(jobs.groups.map((g) => [g.name, g.lag, g.inFlight, g.deadLettered, g.settled]), [
    ["slow", 6, 1, 0, 0],
    ["w", 2, 0, 4, 4],
  ]);
  assertEquals(jobs.maxLag, 6);
  assertEquals([dlq.messages, dlq.deadLetterOf, dlq.deadLetters], [4, "jobs", 0]);
  await sub.close();
  await mq.close();
});

Deno.test("overview: topics filtered by names and patterns; bytes off gives null", async () => {
  const mq = client();
  for (const t of ["orders.eu", "orders.us.east", "logs", "orders"]) await mq.publish(t, "x");
  const names = async (topics: string[]) =>
    (await overview(mq, { topics, bytes: false })).topics.map((t) => [t.name, t.bytes]);
  assertEquals(await names(["orders.*"]), [["orders.eu", null]]);
  assertEquals(await names(["orders.#"]), [["orders", null], ["orders.eu", null], [
    "orders.us.east",
    null,
  ]]);
  assertEquals(await names(["logs", "nope"]), [["logs", null]]);
  assertEquals(topicMatcher([])("anything"), true);
  await mq.close();
});

Deno.test("rates: published and settled per second, a counter going back is no traffic", async () => {
  const clock = { now: 1_000_000 };
  const mq = client(clock);
  const rates = new RateTracker({ samples: 3 });
  await mq.publish("t", "seed");
  const first = rates.add(await overview(mq)).topics[0];
  assertEquals([first.publishRate, first.consumeRate, first.publishHistory], [0, 0, []]);
  await mq.publishBatch("t", Array.from({ length: 10 }, (_, i) => String(i)));
  await mq.consume("t", { group: "g", follow: false, count: 5 }, () => {});
  clock.now += 2000;
  const second = rates.add(await overview(mq)).topics[0];
  // 10 published and 5 settled in 2 s.
  assertEquals([second.publishRate, second.consumeRate], [5, 2.5]);
  await mq.topics.resetGroup("t", "g", "beginning");
  for (let i = 0; i < 3; i++) {
    clock.now += 1000;
    rates.add(await overview(mq));
  }
  const last = rates.add(await overview(mq)).topics[0];
  assertEquals(last.consumeHistory, [0, 0, 0]);
  assertEquals(last.publishHistory.length, 3);
  await mq.close();
});

Deno.test("dead letters: replay one from the middle, then the rest; each once", async () => {
  const mq = new Mq(new MemoryAdapter());
  await mq.topics.create("jobs", { maxAttempts: 2 });
  await mq.publishBatch("jobs", ["a", "b", "c"].map((p) => ({ payload: p, id: `id-${p}` })));
  await failAll(mq, "jobs");
  const letters = await listDeadLetters(mq, "jobs");
  assertEquals(letters.map((l) => [l.message.text(), l.reason, l.attempts, l.originOffset]), [
    ["a", "bad input", 2, 0],
    ["b", "bad input", 2, 1],
    ["c", "bad input", 2, 2],
  ]);
  assertEquals(typeof letters[0].firstFailure, "number");
  const b = { partition: letters[1].message.partition, offset: letters[1].message.offset };
  // Two replays of the same letter at once publish it once.
  const both = await Promise.all([
    replayDeadLetters(mq, "jobs", { only: [b] }),
    replayDeadLetters(mq, "jobs", { only: [b] }),
  ]);
  assertEquals(both.sort(), [0, 1]);
  assertEquals((await listDeadLetters(mq, "jobs")).map((l) => l.message.text()), ["a", "c"]);
  const back = [];
  for await (const m of mq.subscribe("jobs", { from: 3, follow: false })) {
    back.push([m.text(), m.id, Object.keys(m.headers).length]);
  }
  assertEquals(back, [["b", "id-b", 0]]);
  assertEquals(await replayDeadLetters(mq, "jobs", { count: 1 }), 1);
  assertEquals((await listDeadLetters(mq, "jobs")).map((l) => l.message.text()), ["c"]);
  // The log is trimmed up to the first letter still waiting.
  assertEquals(await adapterOf(mq).bounds("jobs.dlq", 0), { start: 2, end: 3 });
  assertEquals(await replayDeadLetters(mq, "jobs"), 1);
  assertEquals(await adapterOf(mq).bounds("jobs.dlq", 0), { start: 3, end: 3 });
  assertEquals(await listDeadLetters(mq, "jobs"), []);
  assertEquals(await replayDeadLetters(mq, "jobs"), 0);
  await mq.close();
});

Deno.test("dead letters: purge counts what waited; an unknown topic is TOPIC_NOT_FOUND", async () => {
  const mq = client();
  await mq.topics.create("jobs", { maxAttempts: 1 });
  await mq.publishBatch("jobs", ["a", "b"]);
  await failAll(mq, "jobs");
  const [first] = await listDeadLetters(mq, "jobs");
  await replayDeadLetters(mq, "jobs", {
    only: [{ partition: first.message.partition, offset: first.message.offset + 1 }],
  });
  assertEquals(await purgeDeadLetters(mq, "jobs"), 1);
  assertEquals(await listDeadLetters(mq, "jobs"), []);
  let code = "";
  await listDeadLetters(mq, "nope").catch((e) => (code = e.code));
  assertEquals(code, "TOPIC_NOT_FOUND");
  await mq.close();
});

/** A small parser of the Prometheus text format (0.0.4): families, samples, escapes. */
function parsePrometheus(text: string) {
  const types = new Map<string, string>(), helps = new Map<string, string>();
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
  for (const line of text.split("\n")) {
    if (line === "") continue;
    let m = line.match(/^# (HELP|TYPE) (\S+) (.*)$/);
    if (m) {
      if (!metricName.test(m[2])) throw new Error(`bad name ${m[2]}`);
      (m[1] === "HELP" ? helps : types).set(m[2], m[3]);
      continue;
    }
    m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/);
    if (!m) throw new Error(`bad line ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    let rest = m[2] ?? "";
    while (rest.length > 0) {
      const l = rest.match(/^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\["\\n])*)"(,|$)/);
      if (!l) throw new Error(`bad labels ${JSON.stringify(m[2])}`);
      labels[l[1]] = l[2].replace(/\\(["\\n])/g, (_, c) => (c === "n" ? "\n" : c));
      rest = rest.slice(l[0].length);
    }
    if (!types.has(m[1])) throw new Error(`sample before its TYPE: ${m[1]}`);
    if (types.get(m[1]) === "counter" && !m[1].endsWith("_total")) {
      throw new Error(`counter without _total: ${m[1]}`);
    }
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return { types, helps, samples };
}

Deno.test("metrics: Prometheus text that a parser reads back, names and labels by convention", async () => {
  const mq = client();
  await mq.topics.create("orders", { maxAttempts: 1 });
  await mq.publishBatch("orders", ["a", "b", "c"]);
  await mq.consume("orders", { group: "billing", follow: false, count: 1 }, () => {
    throw new Error("no");
  });
  await mq.consume("orders", { group: "ship", follow: false }, () => {});
  const text = formatMetrics(await overview(mq));
  const { types, samples } = parsePrometheus(text);
  const value = (name: string, labels: Record<string, string>) =>
    samples.filter((s) => s.name === name && JSON.stringify(s.labels) === JSON.stringify(labels))
      .map((s) => s.value);
  assertEquals(value("mq_topics", {}), [2]);
  assertEquals(value("mq_topic_messages", { topic: "orders" }), [3]);
  assertEquals(value("mq_topic_published_total", { topic: "orders" }), [3]);
  assertEquals(value("mq_topic_dead_letters", { topic: "orders" }), [1]);
  assertEquals(value("mq_group_lag", { topic: "orders", group: "billing" }), [2]);
  assertEquals(value("mq_group_dead_letters_total", { topic: "orders", group: "billing" }), [1]);
  assertEquals(value("mq_group_delivered_total", { topic: "orders", group: "ship" }), [3]);
  assertEquals(value("mq_group_lag", { topic: "orders", group: "ship" }), [0]);
  assertEquals(types.get("mq_topic_published_total"), "counter");
  assertEquals(types.get("mq_group_lag"), "gauge");
  assertEquals(samples.every((s) => Number.isFinite(s.value)), true);
  await mq.close();
});

Deno.test("browse: the end, paging both ways, from a time, filters, a scan limit", async () => {
  const clock = { now: 1_000_000 };
  const mq = client(clock);
  for (let i = 0; i < 20; i++) {
    await mq.publish("t", i % 5 === 0 ? `{"n":${i}}` : `line ${i}`, {
      key: i % 2 ? "odd" : "even",
      headers: { mod3: String(i % 3) },
    });
    clock.now += 1000;
  }
  const texts = (p: { messages: { text(): string }[] }) => p.messages.map((m) => m.text());
  const last = await browseMessages(mq, "t", { limit: 3 });
  assertEquals([texts(last), last.prev, last.next, last.start, last.end], [
    ["line 17", "line 18", "line 19"],
    17,
    null,
    0,
    20,
  ]);
  const before = await browseMessages(mq, "t", { before: 17, limit: 3 });
  assertEquals([texts(before), before.prev, before.next], [
    ["line 14", '{"n":15}', "line 16"],
    14,
    17,
  ]);
  const first = await browseMessages(mq, "t", { from: "beginning", limit: 2 });
  assertEquals([texts(first), first.prev, first.next], [['{"n":0}', "line 1"], null, 2]);
  const byTime = await browseMessages(mq, "t", { from: new Date(1_000_000 + 18_000), limit: 5 });
  assertEquals([texts(byTime), byTime.next], [["line 18", "line 19"], null]);
  const odd3 = await browseMessages(mq, "t", {
    from: "beginning",
    limit: 3,
    filter: { key: "odd", headers: { mod3: "0" } },
  });
  assertEquals([texts(odd3), odd3.next], [["line 3", "line 9", '{"n":15}'], 16]);
  const tail = await browseMessages(mq, "t", { limit: 2, filter: { text: /^\{/ } });
  assertEquals([texts(tail), tail.prev], [['{"n":10}', '{"n":15}'], 10]);
  const capped = await browseMessages(mq, "t", {
    from: "beginning",
    limit: 1,
    scanLimit: 4,
    filter: { text: "nothing like it" },
  });
  assertEquals([texts(capped), capped.next], [[], 4]);
  let code = "";
  await browseMessages(mq, "t", { partition: 1 }).catch((e) => (code = e.code));
  assertEquals(code, "INVALID_ARGUMENT");
  await mq.close();
});

Deno.test("overview: with the previous snapshot, bytes are asked for only where partitions moved", async () => {
  const adapter = new MemoryAdapter();
  let asked = 0;
  const storedBytes = adapter.storedBytes.bind(adapter);
  adapter.storedBytes = (t: string, p: number) => (asked++, storedBytes(t, p));
  const mq = new Mq(adapter);
  await mq.publish("a", "xx");
  await mq.publish("b", "yyy");
  const first = await overview(mq);
  assertEquals([asked, first.topics.map((t) => t.bytes)], [2, [2, 3]]);
  await mq.publish("b", "zzzz");
  const second = await overview(mq, { previous: first });
  assertEquals([asked, second.topics.map((t) => t.bytes)], [3, [2, 7]]);
  await mq.topics.purge("a");
  const third = await overview(mq, { previous: second });
  assertEquals([asked, third.topics.map((t) => t.bytes)], [4, [0, 7]]);
  await mq.close();
});

Deno.test("overview: listGroups false keeps the groups of the previous snapshot, reads their state", async () => {
  const mq = client();
  await mq.publishBatch("t", ["a", "b"]);
  await mq.consume("t", { group: "g1", follow: false, count: 1 }, () => {});
  const first = await overview(mq);
  await mq.consume("t", { group: "g1", follow: false, count: 1 }, () => {});
  await mq.consume("t", { group: "g2", follow: false }, () => {});
  const kept = await overview(mq, { previous: first, listGroups: false });
  assertEquals(kept.topics[0].groups.map((g) => [g.name, g.lag]), [["g1", 0]]);
  const listed = await overview(mq, { previous: kept });
  assertEquals(listed.topics[0].groups.map((g) => [g.name, g.lag]), [["g1", 0], ["g2", 0]]);
  await mq.topics.removeGroup("t", "g1");
  const gone = await overview(mq, { previous: listed, listGroups: false });
  assertEquals(gone.topics[0].groups.map((g) => g.name), ["g2"]);
  await mq.close();
});

Deno.test("overview: a topic removed and made again with the same counts gets its new bytes", async () => {
  const clock = { now: 1_000_000 };
  const mq = client(clock);
  await mq.publish("t", "small");
  const first = await overview(mq);
  clock.now += 1000;
  await mq.topics.remove("t");
  await mq.publish("t", "a much longer payload");
  const second = await overview(mq, { previous: first });
  assertEquals(
    [first.topics[0].messages, second.topics[0].messages, first.topics[0].bytes],
    [1, 1, 5],
  );
  assertEquals(second.topics[0].bytes, "a much longer payload".length);
  await mq.close();
});

Deno.test("overview: a topic another client made again is seen on the next pass that lists", async () => {
  const clock = { now: 1_000_000 };
  const adapter = new MemoryAdapter();
  const viewer = new Mq(adapter, { now: () => clock.now });
  const writer = new Mq(adapter, { now: () => clock.now });
  await writer.publish("t", "small");
  const first = await overview(viewer);
  clock.now += 1000;
  await writer.topics.remove("t");
  await writer.publish("t", "a much longer payload");
  const second = await overview(viewer, { previous: first });
  assertEquals(
    [first.topics[0].bytes, second.topics[0].messages, second.topics[0].bytes],
    [5, 1, "a much longer payload".length],
  );
  await writer.close();
});
