/**
 * The `mq ui` handler in process (no browser): the token rules, the JSON API's
 * answers and refusals, and live updates that cost nothing with no page open.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { Mq } from "../../core/client.ts";
import { MemoryAdapter } from "../../adapters/memory/mod.ts";
import { createUiHandler, Pacer, type UiHandler } from "../../cli/ui_server.ts";
import { redactUrl } from "../../core/backend_url.ts";

const TOKEN = "api-test-token";
const ORIGIN = "http://127.0.0.1:8977";

function setup(readOnly = false, intervalMs = 100): { mq: Mq; ui: UiHandler; calls: () => number } {
  const adapter = new MemoryAdapter();
  let calls = 0;
  const listState = adapter.listState.bind(adapter);
  adapter.listState = (prefix: string[]) => {
    calls++;
    return listState(prefix);
  };
  const mq = new Mq(adapter);
  const ui = createUiHandler(mq, {
    token: TOKEN,
    readOnly,
    backend: redactUrl("nats://app:s3cr3t-pass@broker:4222"),
    intervalMs,
  });
  return { mq, ui, calls: () => calls };
}

function call(
  ui: UiHandler,
  path: string,
  init: { method?: string; body?: unknown; auth?: "bearer" | "cookie" | "none" } = {},
): Promise<Response> {
  const headers: Record<string, string> = {};
  const auth = init.auth ?? "bearer";
  if (auth === "bearer") headers.authorization = `Bearer ${TOKEN}`;
  if (auth === "cookie") headers.cookie = `other=1; mq_ui_token=${TOKEN}`;
  if (init.body !== undefined) headers["content-type"] = "application/json";
  return ui.handle(
    new Request(`${ORIGIN}${path}`, {
      method: init.method ?? "GET",
      headers,
      body: init.body === undefined
        ? undefined
        : typeof init.body === "string"
        ? init.body
        : JSON.stringify(init.body),
    }),
  );
}

async function answer(r: Promise<Response>): Promise<[number, unknown]> {
  const res = await r;
  return [res.status, await res.json()];
}

Deno.test("ui api: ?token= sets an HttpOnly SameSite=Strict cookie and leaves the address", async () => {
  const { mq, ui } = setup();
  const r = await ui.handle(new Request(`${ORIGIN}/topics/orders?token=${TOKEN}&partition=1`));
  assertEquals(r.status, 303);
  assertEquals(r.headers.get("location"), "/topics/orders?partition=1");
  assertEquals(
    r.headers.get("set-cookie"),
    `mq_ui_token=${TOKEN}; HttpOnly; SameSite=Strict; Path=/`,
  );
  const page = await call(ui, "/topics/orders", { auth: "cookie" });
  assertEquals(page.status, 200);
  const html = await page.text();
  assertEquals(html.includes(`<meta name="mq-token" content="${TOKEN}">`), true);
  assertEquals(page.headers.get("content-security-policy")?.includes("script-src 'self'"), true);
  for (const path of ["/", "/exchanges", "/topics/a", "/topics/a/dlq", "/topics/a/groups/g"]) {
    const p = await call(ui, path, { auth: "cookie" });
    await p.body?.cancel();
    assertEquals([path, p.status], [path, 200]);
  }
  const wrong = await ui.handle(new Request(`${ORIGIN}/?token=nope`));
  assertEquals(wrong.status, 401);
  await wrong.body?.cancel();
  assertEquals(await answer(call(ui, "/api/overview", { auth: "none" })), [401, {
    error: "this needs the token of mq ui (Authorization: Bearer T)",
  }]);
  assertEquals((await answer(call(ui, "/nowhere", { auth: "cookie" })))[0], 404);
  ui.close();
  await mq.close();
});

Deno.test("ui api: the backend's secrets never reach the page", async () => {
  const { mq, ui } = setup();
  const [status, body] = await answer(call(ui, "/api/overview"));
  assertEquals(status, 200);
  assertEquals((body as { backend: string }).backend, "nats://app:***@broker:4222");
  assertEquals(JSON.stringify(body).includes("s3cr3t"), false);
  ui.close();
  await mq.close();
});

Deno.test("ui api: topics, messages, publish, groups, dead letters, with --json's field names", async () => {
  const { mq, ui } = setup();
  await mq.topics.create("jobs", { maxAttempts: 1, partitions: 2 });
  await mq.publishBatch("jobs", [{ payload: "a", key: "x" }, { payload: "b", key: "x" }]);
  await mq.consume("jobs", { group: "w", follow: false }, () => {
    throw new Error("broken");
  });
  const [, o] = await answer(call(ui, "/api/overview"));
  const jobs = (o as { topics: Record<string, unknown>[] }).topics[0];
  assertEquals(
    Object.keys(jobs).sort(),
    [
      "bytes",
      "consumeHistory",
      "consumeRate",
      "deadLetters",
      "delayed",
      "dlq",
      "groups",
      "maxLag",
      "messages",
      "name",
      "partitions",
      "publishHistory",
      "publishRate",
      "published",
    ],
  );
  const [s1, info] = await answer(call(ui, "/api/topics/jobs"));
  assertEquals(s1, 200);
  const i = info as {
    name: string;
    messages: number;
    groups: { name: string; deadLettered: number }[];
  };
  assertEquals([i.name, i.messages, i.groups.map((g) => [g.name, g.deadLettered])], [
    "jobs",
    2,
    [["w", 2]],
  ]);
  const partition = (await mq.publish("jobs", "probe", { key: "x" })).partition;
  const [s2, posted] = await answer(call(ui, "/api/topics/jobs/messages", {
    method: "POST",
    body: { payload: "<b>c</b>", key: "x", headers: { trace: "t1" } },
  }));
  assertEquals([s2, posted], [201, { topic: "jobs", partition, offset: 3, duplicate: false }]);
  const [, page] = await answer(
    call(ui, `/api/topics/jobs/messages?partition=${partition}&limit=2&header=trace=t1`),
  );
  const pg = page as { messages: Record<string, unknown>[]; prev: number | null };
  assertEquals(pg.messages.map((m) => [m.offset, m.payload, m.key, m.headers]), [
    [3, "<b>c</b>", "x", { trace: "t1" }],
  ]);
  const [, letters] = await answer(call(ui, "/api/topics/jobs/dlq"));
  const ls = letters as Record<string, unknown>[];
  assertEquals(
    ls.map((l) => [l.payload, l.reason, l.attempts, (l.origin as { offset: number }).offset]),
    [
      ["a", "broken", 1, 0],
      ["b", "broken", 1, 1],
    ],
  );
  assertEquals(
    await answer(call(ui, "/api/topics/jobs/dlq/replay", {
      method: "POST",
      body: { only: [{ partition: ls[1].partition, offset: ls[1].offset }] },
    })),
    [200, { replayed: 1 }],
  );
  assertEquals(
    await answer(call(ui, "/api/topics/jobs/dlq/purge", { method: "POST" })),
    [200, { purged: 1 }],
  );
  assertEquals(
    await answer(call(ui, "/api/topics/jobs/groups/w/reset", {
      method: "POST",
      body: { to: "beginning" },
    })),
    [200, { reset: "w", to: "beginning" }],
  );
  const [, g] = await answer(call(ui, "/api/topics/jobs/groups/w"));
  assertEquals((g as { lag: number }).lag, 5);
  assertEquals(
    await answer(call(ui, "/api/topics/jobs/groups/w", { method: "DELETE" })),
    [200, { removed: "w" }],
  );
  assertEquals((await mq.topics.groups("jobs")).length, 0);
  ui.close();
  await mq.close();
});

Deno.test("ui api: bad input is one clear error with the right status, nothing written", async () => {
  const { mq, ui } = setup();
  await mq.publish("t", "x");
  const cases: [string, { method?: string; body?: unknown; auth?: "cookie" }, number, string][] = [
    ["/api/topics/nope", {}, 404, 'topic "nope" does not exist'],
    ["/api/topics/..%2Fx", {}, 400, 'topic name "../x" may contain only A-Z a-z 0-9 . _ -'],
    [
      "/api/topics/t/messages",
      { method: "POST", body: "{not json" },
      400,
      "the request body is not JSON",
    ],
    [
      "/api/topics/t/messages",
      { method: "POST", body: { payload: 1 } },
      400,
      "payload must be a string",
    ],
    [
      "/api/topics/t/messages",
      { method: "POST", body: { payload: "x", headers: { a: 1 } } },
      400,
      "headers.a must be a string",
    ],
    [
      "/api/topics/t/messages",
      { method: "POST", body: { payload: "x" }, auth: "cookie" },
      403,
      "a writing call needs the token in an Authorization: Bearer header",
    ],
    ["/api/topics/t/messages?partition=3", {}, 400, 'topic "t" has partitions 0 to 0, not 3'],
    ["/api/topics/t/messages?limit=x", {}, 400, "limit must be a whole number"],
    [
      "/api/topics/t/messages?from=yesterday",
      {},
      400,
      'invalid start "yesterday": use beginning, end, an offset, an ISO time or -DUR',
    ],
    [
      "/api/topics/t/groups/none/reset",
      { method: "POST", body: { to: "end" } },
      404,
      'topic "t" has no group "none"',
    ],
    [
      "/api/topics/t/dlq/replay",
      { method: "POST", body: { only: [{}] } },
      400,
      "only must be a list of {partition, offset}",
    ],
  ];
  for (const [path, init, status, error] of cases) {
    const [got, body] = await answer(call(ui, path, init));
    assertEquals([path, got, (body as { error: string }).error.startsWith(error)], [
      path,
      status,
      true,
    ]);
  }
  assertEquals((await mq.topics.info("t")).messages, 1);
  ui.close();
  await mq.close();
});

Deno.test("ui api: --read-only refuses every writing call", async () => {
  const { mq, ui } = setup(true);
  await mq.publish("t", "x");
  for (
    const [method, path] of [
      ["POST", "/api/topics/t/messages"],
      ["POST", "/api/topics/t/dlq/replay"],
      ["POST", "/api/topics/t/dlq/purge"],
      ["POST", "/api/topics/t/groups/g/reset"],
      ["DELETE", "/api/topics/t/groups/g"],
    ]
  ) {
    assertEquals(await answer(call(ui, path, { method, body: { payload: "y", to: "end" } })), [
      403,
      { error: "mq ui runs with --read-only: nothing can be changed" },
    ]);
  }
  const page = await call(ui, "/", { auth: "cookie" });
  assertEquals((await page.text()).includes('<meta name="mq-read-only" content="true">'), true);
  assertEquals((await mq.topics.info("t")).messages, 1);
  ui.close();
  await mq.close();
});

Deno.test("ui api: live events about once an interval while a page listens, none without", async () => {
  const { mq, ui, calls } = setup(false, 100);
  await mq.publish("t", "x");
  const idle = calls();
  await new Promise((r) => setTimeout(r, 350));
  assertEquals(calls(), idle); // nothing open: no work at all
  const res = await call(ui, "/api/events", { auth: "cookie" });
  assertEquals(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while ((text.match(/event: overview/g) ?? []).length < 3) text += (await reader.read()).value;
  assertEquals(ui.clients, 1);
  const frame = text.split("\n\n").find((f) => f.startsWith("event: overview"))!;
  const data = JSON.parse(frame.split("\ndata: ")[1]);
  assertEquals(data.topics.map((t: { name: string; messages: number }) => [t.name, t.messages]), [[
    "t",
    1,
  ]]);
  assertEquals("publishHistory" in data.topics[0], false);
  await reader.cancel();
  await new Promise((r) => setTimeout(r, 50));
  assertEquals(ui.clients, 0);
  const after = calls();
  await new Promise((r) => setTimeout(r, 350));
  assertEquals(calls(), after); // the last page closed: the sampler stopped
  ui.close();
  await mq.close();
});

Deno.test("ui api: the live sampler's pace holds its CPU share, between one and ten intervals", () => {
  const pace = new Pacer(1000, 0.04);
  assertEquals(pace.next(5000), 1000); // the first, cold pass is not counted
  assertEquals(pace.next(10), 1000);
  assertEquals(pace.next(230), 3000); // smoothed: (10 + 230) / 2 = 120 ms, 4% of 3 s
  assertEquals(pace.next(2000), 10_000); // never more than ten intervals
});

Deno.test("ui api: /metrics asks the backend for the bytes only of topics that moved since the last snapshot, a scrape included", async () => {
  const adapter = new MemoryAdapter();
  const asked: string[] = [];
  const storedBytes = adapter.storedBytes.bind(adapter);
  adapter.storedBytes = (t: string, p: number) => (asked.push(t), storedBytes(t, p));
  const mq = new Mq(adapter);
  const ui = createUiHandler(mq, { token: TOKEN, readOnly: false, backend: "memory:" });
  try {
    await mq.publish("still", "a");
    await mq.publish("moving", "a");
    assertEquals((await call(ui, "/api/overview")).status, 200);
    assertEquals(asked.sort(), ["moving", "still"]);
    asked.length = 0;
    await mq.publish("moving", "b");
    const text = await (await call(ui, "/metrics")).text();
    assertEquals(asked, ["moving"]);
    assertEquals(text.includes('mq_topic_messages{topic="moving"} 2'), true);
    assertEquals(text.includes('mq_topic_bytes{topic="still"} '), true);
    // No page open, nothing moved since the last scrape: it asks for nothing again.
    asked.length = 0;
    const again = await (await call(ui, "/metrics")).text();
    assertEquals([asked, again.includes('mq_topic_bytes{topic="moving"} 2')], [[], true]);
  } finally {
    await mq.close();
  }
});
