/**
 * `mq ui` in a real browser (headless Chromium over the DevTools protocol):
 * the token, the pages at their own addresses, browsing and filtering,
 * publishing and seeing it live, replaying a dead letter, resetting a group,
 * read-only mode, and payloads that stay text. Screenshots of each page go to
 * the test's folder (and to `MQ_UI_SCREENSHOTS`, when set, as the README's).
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { mq, withHome } from "../cli/_mq.ts";
import { Browser, browserAvailable } from "./_browser.ts";
import { startUi } from "./_ui.ts";

const browser = browserAvailable();
const mustRun = Deno.env.get("CI") === "true";
const XSS = [
  `<img src=x onerror="window.__xss=1;alert('img')">`,
  `<script>window.__xss=2;alert('script')</script>`,
  `"><svg onload=alert(3)>`,
];

async function ok(home: string, args: string[], stdin?: string): Promise<string> {
  const r = await mq(home, args, stdin === undefined ? {} : { stdin });
  if (r.code !== 0) throw new Error(`mq ${args.join(" ")} exited ${r.code}: ${r.err}`);
  return r.out;
}

/** Clicks "Show" and waits for the browser's next page to be drawn. */
async function browse(b: Browser): Promise<void> {
  const before = await b.eval<string>(`document.getElementById("messages").dataset.loads`);
  await b.click("#browse");
  await b.waitFor(
    `document.getElementById("messages").dataset.loads !== ${JSON.stringify(before)}`,
  );
}

async function seed(home: string): Promise<void> {
  await ok(home, ["topics", "create", "jobs", "--max-attempts", "1"]);
  await ok(home, ["pub", "jobs", "job-1", "job-2", "job-3"]);
  await ok(home, ["work", "jobs", "-g", "workers", "-e", "--", "false"]).catch(() => {});
  await ok(home, ["pub", "orders", "-k", "k1", ...XSS]);
  await ok(home, [
    "pub",
    "orders",
    "-k",
    "k2",
    "-H",
    "region=eu",
    "-H",
    `note=${XSS[0]}`,
    '{"id":7,"total":12.5}',
  ]);
  await ok(home, ["sub", "orders", "-g", "billing", "-n", "2"]);
  await ok(home, ["exchange", "create", "events", "--type", "topic"]);
  await ok(home, ["bind", "events", "orders", "--key", "orders.#"]);
}

Deno.test({
  name:
    "ui: in Chromium, token, pages, browse, publish live, replay, reset, read-only, XSS as text",
  ignore: !browser.ok && !mustRun,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withHome(async (home) => {
      if (!browser.ok) throw new Error(browser.reason);
      const shots = `${home}/screenshots`;
      await Deno.mkdir(shots);
      const keep = Deno.env.get("MQ_UI_SCREENSHOTS");
      const shot = async (b: Browser, name: string) => {
        await b.screenshot(`${shots}/${name}.png`);
        if (keep) await Deno.copyFile(`${shots}/${name}.png`, `${keep}/ui-${name}.png`);
      };
      await seed(home);
      const ui = await startUi(home, []);
      const b = await Browser.launch();
      try {
        // The token is random (32 hex digits) and every request needs it.
        assertEquals(/^[0-9a-f]{32}$/.test(ui.token), true);
        const page401 = await fetch(`${ui.origin}/`);
        assertEquals([page401.status, (await page401.text()).startsWith("401 unauthorized")], [
          401,
          true,
        ]);
        const api401 = await fetch(`${ui.origin}/api/overview`);
        assertEquals([api401.status, (await api401.json()).error], [
          401,
          "this needs the token of mq ui (Authorization: Bearer T)",
        ]);
        const wrong = await fetch(`${ui.origin}/metrics`, {
          headers: { authorization: "Bearer not-the-token" },
        });
        assertEquals(wrong.status, 401);
        await wrong.body?.cancel();
        const metrics = await fetch(`${ui.origin}/metrics`, {
          headers: { authorization: `Bearer ${ui.token}` },
        });
        const text = await metrics.text();
        assertEquals(
          metrics.headers.get("content-type"),
          "text/plain; version=0.0.4; charset=utf-8",
        );
        assertEquals(text.includes('mq_topic_messages{topic="orders"} 4\n'), true);
        assertEquals(text.includes('mq_group_lag{topic="orders",group="billing"} 2\n'), true);

        // Open with the token: a cookie, and the token leaves the address bar.
        await b.goto(ui.url);
        await b.waitFor(`document.body.dataset.page === "overview"`);
        assertEquals(await b.eval("location.pathname + location.search"), "/");
        assertEquals(await b.eval("document.cookie"), ""); // HttpOnly: not readable by scripts
        assertEquals(await b.texts("#topics tbody tr td:first-child a"), [
          "jobs",
          "jobs.dlq",
          "orders",
        ]);
        assertEquals(await b.texts('#topics tr[data-topic="jobs"] td[data-col="deadLetters"]'), [
          "3",
        ]);
        await b.waitFor(`document.getElementById("live").textContent.includes("live")`);
        await shot(b, "overview");
        await b.fill("#filter", "ord");
        assertEquals(await b.texts("#topics tbody tr td:first-child a"), ["orders"]);

        // A topic: its own address; payloads are text, nothing of them runs.
        await b.click('#topics a[href="/topics/orders"]');
        await b.waitFor(`document.body.dataset.page === "topic"`);
        assertEquals(await b.eval("location.pathname"), "/topics/orders");
        await b.waitFor(`document.querySelectorAll("#messages tr").length === 4`);
        assertEquals(await b.texts("#messages pre.payload"), [...XSS, '{"id":7,"total":12.5}']);
        assertEquals(
          await b.eval(
            `document.querySelectorAll("main img, main script, main svg:not(.spark) [onload], main iframe").length`,
          ),
          0,
        );
        assertEquals(await b.texts('#groups tr[data-group="billing"] td'), [
          "billing",
          "2",
          "0",
          "0",
          "0",
          "0",
          "0",
        ]);
        // Filters: by key, by header, by payload text; a pretty-JSON view.
        await b.fill("#f-key", "k2");
        await browse(b);
        await b.waitFor(`document.querySelectorAll("#messages tr").length === 1`);
        await b.fill("#f-mode", "json");
        assertEquals(await b.texts("#messages pre.payload"), ['{\n  "id": 7,\n  "total": 12.5\n}']);
        await b.fill("#f-mode", "text");
        await b.fill("#f-key", "");
        await b.fill("#f-header", "region=eu");
        await browse(b);
        await b.waitFor(`document.querySelectorAll("#messages tr").length === 1`);
        await b.fill("#f-header", "");
        await b.fill("#f-text", "script");
        await browse(b);
        await b.waitFor(`document.querySelectorAll("#messages tr").length === 1`);
        assertEquals(await b.texts("#messages pre.payload"), [XSS[1]]);
        await b.fill("#f-text", "");
        await b.fill("#f-from", "beginning");
        await browse(b);
        await b.waitFor(`document.querySelectorAll("#messages tr").length === 4`);
        await b.fill("#f-from", "end");
        await browse(b);
        await b.waitFor(`document.querySelectorAll("#messages tr").length === 4`);

        // Publish from the page, and from the shell: both appear without a reload.
        await b.eval(`window.__stay = 1`);
        await b.fill("#p-payload", "<b>from the page</b>");
        await b.fill("#p-key", "k9");
        await b.fill("#p-headers", "via=ui");
        await b.click("#p-send");
        await b.waitFor(
          `[...document.querySelectorAll("#messages pre.payload")].some((e) => e.textContent === "<b>from the page</b>")`,
        );
        const stored = JSON.parse(
          (await ok(home, ["sub", "orders", "--from", "4", "-e", "--format", "json"])).trim(),
        );
        assertEquals([stored.payload, stored.key, stored.headers], [
          "<b>from the page</b>",
          "k9",
          { via: "ui" },
        ]);
        await ok(home, ["pub", "orders", "from the shell"]);
        await b.waitFor(
          `[...document.querySelectorAll("#messages pre.payload")].some((e) => e.textContent === "from the shell")`,
        );
        assertEquals(await b.eval("window.__stay"), 1); // the same page, not reloaded
        await b.waitFor(`document.querySelector('[data-stat="messages"] b').textContent === "6"`);
        await shot(b, "topic");

        // A group, opened at its address: reset to the beginning.
        await b.goto(`${ui.origin}/topics/orders/groups/billing`);
        await b.waitFor(`document.body.dataset.page === "group"`);
        await b.waitFor(`document.querySelector('[data-stat="lag"] b').textContent === "4"`);
        await b.fill("#r-where", "beginning");
        await b.click("#r-go");
        await b.waitFor(`document.querySelector('[data-stat="lag"] b').textContent === "6"`);
        const groups = JSON.parse(await ok(home, ["groups", "orders", "--json"]));
        assertEquals(groups.map((g: { name: string; lag: number }) => [g.name, g.lag]), [[
          "billing",
          6,
        ]]);
        await shot(b, "group");

        // Dead letters: replay one, the counts change, the message is back in jobs.
        await b.goto(`${ui.origin}/topics/jobs/dlq`);
        await b.waitFor(`document.body.dataset.page === "dlq"`);
        assertEquals(await b.texts("#dlq-count"), ["3 dead letters waiting"]);
        assertEquals(await b.texts("#letters tr td:nth-child(3)"), [
          "exit code 1",
          "exit code 1",
          "exit code 1",
        ]);
        await shot(b, "dlq");
        await b.click("#letters tr:first-child .replay-one");
        await b.waitFor(
          `document.getElementById("dlq-count").textContent === "2 dead letters waiting"`,
        );
        const jobs = JSON.parse(await ok(home, ["topics", "info", "jobs", "--json"]));
        assertEquals(jobs.messages, 4);
        assertEquals((await ok(home, ["sub", "jobs", "--from", "3", "-e"])).trim(), "job-1");
        await b.goto(`${ui.origin}/`);
        await b.waitFor(
          `document.querySelector('#topics tr[data-topic="jobs"] td[data-col="deadLetters"]')?.textContent === "2"`,
        );

        // Exchanges, drawn.
        await b.goto(`${ui.origin}/exchanges`);
        await b.waitFor(`document.body.dataset.page === "exchanges"`);
        assertEquals(await b.texts("#graph text"), ["orders.#", "orders", "events (topic)"]);
        await shot(b, "exchanges");

        // A writing call without the bearer header (the cookie alone) is refused.
        const noBearer = await b.eval<[number, string]>(`fetch("/api/topics/orders/messages", {
          method: "POST", headers: { "content-type": "application/json" }, body: '{"payload":"x"}',
        }).then(async (r) => [r.status, (await r.json()).error])`);
        assertEquals(noBearer, [
          403,
          "a writing call needs the token in an Authorization: Bearer header",
        ]);
        assertEquals(b.dialogs, []);
        assertEquals(await b.eval("window.__xss ?? null"), null);
        assertEquals(b.errors, []);
      } finally {
        await b.close();
        const { code } = await ui.stop();
        assertEquals(code, 0);
      }

      // Read-only: the actions are gone, and the API refuses them.
      const ro = await startUi(home, ["--read-only", "--token", "read-only-token"]);
      const b2 = await Browser.launch();
      try {
        assertEquals(ro.url, `${ro.origin}/?token=read-only-token`);
        await b2.goto(`${ro.url.replace("/?", "/topics/jobs/dlq?")}`);
        await b2.waitFor(`document.body.dataset.page === "dlq"`);
        assertEquals(await b2.eval("location.pathname + location.search"), "/topics/jobs/dlq");
        assertEquals(await b2.eval(`document.getElementById("mode").hidden`), false);
        assertEquals(
          await b2.eval(`document.querySelectorAll(".replay-one, #replay-all").length`),
          0,
        );
        await b2.goto(`${ro.origin}/topics/orders`);
        await b2.waitFor(`document.body.dataset.page === "topic"`);
        assertEquals(await b2.eval(`document.getElementById("p-send")`), null);
        for (
          const [method, path, body] of [
            ["POST", "topics/orders/messages", { payload: "x" }],
            ["POST", "topics/jobs/dlq/replay", {}],
            ["POST", "topics/jobs/dlq/purge", {}],
            ["POST", "topics/orders/groups/billing/reset", { to: "end" }],
            ["DELETE", "topics/orders/groups/billing", undefined],
          ] as const
        ) {
          const r = await fetch(`${ro.origin}/api/${path}`, {
            method,
            headers: { authorization: "Bearer read-only-token" },
            body: body === undefined ? undefined : JSON.stringify(body),
          });
          assertEquals([path, r.status, (await r.json()).error], [
            path,
            403,
            "mq ui runs with --read-only: nothing can be changed",
          ]);
        }
        assertEquals(
          JSON.parse(await ok(home, ["topics", "info", "orders", "--json"])).messages,
          6,
        );
        assertEquals(b2.dialogs, []);
      } finally {
        await b2.close();
        await ro.stop();
      }
    }),
});
