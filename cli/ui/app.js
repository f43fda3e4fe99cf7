// The mq dashboard: plain DOM code, no build step, no framework. Every value
// from the store (topic names, keys, headers, payloads) goes into the page as
// text (textContent, attribute values), never as HTML.
"use strict";

const TOKEN = document.querySelector('meta[name="mq-token"]')?.content ?? "";
const READ_ONLY = document.querySelector('meta[name="mq-read-only"]')?.content === "true";
const main = document.getElementById("main");
const SVG = "http://www.w3.org/2000/svg";
const HISTORY = 120;

/** An element with attributes and children (strings become text nodes). */
function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(e.dataset, v);
    else if (k === "style") e.style.cssText = v; // CSSOM, which the page's CSP allows
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function s(tag, attrs = {}, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

const enc = encodeURIComponent;
const topicPath = (t) => `/topics/${enc(t)}`;

async function api(path, options = {}) {
  const init = { ...options, headers: { Authorization: `Bearer ${TOKEN}` } };
  if (options.body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.body);
  }
  const res = await fetch(`/api/${path}`, init);
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error ?? `${res.status} ${res.statusText}`);
  return body;
}

function toast(text, error = false) {
  const t = document.getElementById("toast");
  t.textContent = text;
  t.className = error ? "error" : "";
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (t.hidden = true), error ? 8000 : 3000);
}

/** Runs an action, reporting failure as a toast. */
async function act(fn) {
  try {
    await fn();
  } catch (e) {
    toast(e.message, true);
  }
}

/** A button that asks for a second click before it acts. */
function confirmButton(label, really, fn, cls = "danger") {
  let armed = false;
  const b = h("button", {
    class: cls,
    onclick: () => {
      if (!armed) {
        armed = true;
        b.textContent = really;
        setTimeout(() => {
          armed = false;
          b.textContent = label;
        }, 4000);
        return;
      }
      armed = false;
      b.textContent = label;
      act(fn);
    },
  }, label);
  return b;
}

function num(n) {
  return n === null || n === undefined ? "-" : Number(n).toLocaleString("en");
}

function rate(x) {
  return x >= 100 ? String(Math.round(x)) : x === 0 ? "0" : x.toFixed(1);
}

function bytes(n) {
  if (n === null || n === undefined) return "-";
  const u = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) (n /= 1024), i++;
  return `${i === 0 ? n : n.toFixed(1)} ${u[i]}`;
}

function spark(values, color) {
  const w = 80, hgt = 18;
  const max = Math.max(1, ...values);
  const pts = values.map((v, i) =>
    `${(i / Math.max(1, HISTORY - 1)) * w + (w - (values.length / HISTORY) * w)},${
      hgt - 1 - (v / max) * (hgt - 2)
    }`
  ).join(" ");
  return s(
    "svg",
    { class: "spark", width: w, height: hgt, viewBox: `0 0 ${w} ${hgt}` },
    s("polyline", { points: pts, stroke: color }),
  );
}

/** Payload text as the chosen view shows it: text, pretty JSON or hex. */
function renderPayload(m, mode) {
  // The envelope carries exactly one of payload (text), payload_json (a JSON
  // object or array that prints back as the same bytes) and payload_base64.
  const text = m.payload_json !== undefined ? JSON.stringify(m.payload_json) : m.payload;
  const bytesOf = () =>
    m.payload_base64 !== undefined
      ? Uint8Array.from(atob(m.payload_base64), (c) => c.charCodeAt(0))
      : new TextEncoder().encode(text ?? "");
  if (mode === "hex" || m.payload_base64 !== undefined) {
    const b = bytesOf();
    const lines = [];
    for (let i = 0; i < b.length && i < 4096; i += 16) {
      const row = [...b.subarray(i, i + 16)];
      lines.push(
        i.toString(16).padStart(6, "0") + "  " +
          row.map((x) => x.toString(16).padStart(2, "0")).join(" ").padEnd(48) + " " +
          row.map((x) => (x >= 32 && x < 127 ? String.fromCharCode(x) : ".")).join(""),
      );
    }
    return lines.join("\n");
  }
  if (mode === "json") {
    try {
      return JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      return text;
    }
  }
  return text;
}

// ---- live updates ---------------------------------------------------------

let latest = null;
const rateHistory = new Map(); // topic -> {pub: number[], con: number[]}
let onLive = null;

function remember(topics, withHistory) {
  for (const t of topics) {
    let x = rateHistory.get(t.name);
    if (!x) rateHistory.set(t.name, x = { pub: [], con: [] });
    if (withHistory && t.publishHistory) {
      x.pub = t.publishHistory.slice(-HISTORY);
      x.con = t.consumeHistory.slice(-HISTORY);
    } else {
      x.pub.push(t.publishRate);
      x.con.push(t.consumeRate);
      if (x.pub.length > HISTORY) x.pub.shift(), x.con.shift();
    }
  }
}

function connectLive() {
  const live = document.getElementById("live");
  const es = new EventSource("/api/events");
  es.addEventListener("open", () => {
    live.textContent = "\u25CF live";
    live.className = "live on";
  });
  es.addEventListener("error", () => {
    live.textContent = "\u25CF reconnecting";
    live.className = "live";
  });
  es.addEventListener("overview", (ev) => {
    latest = JSON.parse(ev.data);
    remember(latest.topics, false);
    document.body.dataset.liveAt = String(latest.at);
    // A store so large that a pass costs the server much is sampled less often.
    live.textContent = latest.intervalMs > 1500
      ? `\u25CF live, every ${Math.round(latest.intervalMs / 1000)} s`
      : "\u25CF live";
    if (onLive) act(() => onLive(latest));
  });
}

// ---- pages ----------------------------------------------------------------

async function overviewPage() {
  const o = await api("overview");
  latest = o;
  remember(o.topics, true);
  let sortKey = "name",
    desc = false,
    filter = new URLSearchParams(location.search).get("filter") ?? "";
  const LIMIT = 500;
  const cols = [
    ["name", "Topic"],
    ["partitions", "Partitions", true],
    ["messages", "Messages", true],
    ["bytes", "Bytes", true],
    ["publishRate", "Publish/s", true],
    ["consumeRate", "Consume/s", true],
    ["groups", "Groups", true],
    ["maxLag", "Worst lag", true],
    ["deadLetters", "Dead letters", true],
    ["delayed", "Delayed", true],
  ];
  const tbody = h("tbody");
  const count = h("span", { class: "muted", id: "count" });
  const head = h(
    "tr",
    {},
    cols.map(([k, label, n]) =>
      h("th", {
        class: `sortable ${n ? "num" : ""}`,
        dataset: { key: k },
        onclick: () => {
          if (sortKey === k) desc = !desc;
          else (sortKey = k), (desc = k !== "name");
          draw();
        },
      }, label)
    ),
  );
  const value = (t, k) => k === "groups" ? t.groups.length : t[k] ?? 0;
  function draw() {
    for (const th of head.children) th.classList.toggle("sorted", th.dataset.key === sortKey);
    const f = filter.toLowerCase();
    const rows = latest.topics.filter((t) => t.name.toLowerCase().includes(f));
    rows.sort((a, b) => {
      const x = value(a, sortKey), y = value(b, sortKey);
      const c = typeof x === "string" ? x.localeCompare(y) : x - y;
      return (desc ? -c : c) || a.name.localeCompare(b.name);
    });
    count.textContent = rows.length > LIMIT
      ? `showing ${LIMIT} of ${num(rows.length)} topics (filter to narrow)`
      : `${num(rows.length)} of ${num(latest.topics.length)} topics`;
    tbody.replaceChildren(
      ...rows.slice(0, LIMIT).map((t) => {
        const hist = rateHistory.get(t.name) ?? { pub: [], con: [] };
        return h(
          "tr",
          { dataset: { topic: t.name } },
          h(
            "td",
            {},
            h("a", { href: topicPath(t.name), "data-link": true }, t.name),
            t.deadLetterOf
              ? h("span", { class: "muted" }, ` (dead letters of ${t.deadLetterOf})`)
              : null,
          ),
          h("td", { class: "num" }, num(t.partitions)),
          h("td", { class: "num", "data-col": "messages" }, num(t.messages)),
          h("td", { class: "num" }, bytes(t.bytes)),
          h("td", { class: "num" }, spark(hist.pub, "#2f6fde"), " ", rate(t.publishRate)),
          h("td", { class: "num" }, spark(hist.con, "#1f8a4c"), " ", rate(t.consumeRate)),
          h("td", { class: "num" }, num(t.groups.length)),
          h("td", { class: "num" }, num(t.maxLag)),
          h(
            "td",
            { class: `num ${t.deadLetters > 0 ? "bad" : ""}`, "data-col": "deadLetters" },
            t.deadLetters > 0
              ? h("a", { href: `${topicPath(t.name)}/dlq`, "data-link": true }, num(t.deadLetters))
              : "0",
          ),
          h("td", { class: "num" }, num(t.delayed)),
        );
      }),
    );
  }
  const input = h("input", {
    type: "search",
    id: "filter",
    placeholder: "filter by name",
    value: filter,
    oninput: (e) => {
      filter = e.target.value;
      draw();
    },
  });
  main.replaceChildren(
    h("h1", {}, "Topics"),
    h("div", { class: "toolbar" }, input, count),
    h("table", { id: "topics" }, h("thead", {}, head), tbody),
  );
  draw();
  onLive = () => draw();
}

async function topicPage(topic) {
  let info = await api(`topics/${enc(topic)}`);
  const stats = h("div", { class: "stats card" });
  const parts = h("tbody");
  const groups = h("tbody");
  const bindings = h("div");
  function drawInfo() {
    const letters = latest?.topics.find((t) => t.name === topic);
    stats.replaceChildren(
      ...[
        ["messages", num(info.messages)],
        ["partitions", num(info.config.partitions)],
        ["published", num(info.published)],
        ["publish/s", rate(letters?.publishRate ?? 0)],
        ["consume/s", rate(letters?.consumeRate ?? 0)],
        ["dead letters", num(letters?.deadLetters ?? 0)],
      ].map(([k, v]) =>
        h("div", { class: "stat", dataset: { stat: k } }, h("b", {}, v), h("span", {}, k))
      ),
    );
    parts.replaceChildren(
      ...info.partitions.map((p) =>
        h(
          "tr",
          {},
          h("td", {}, p.partition),
          h("td", { class: "num" }, num(p.start)),
          h("td", { class: "num" }, num(p.end - 1)),
          h("td", { class: "num" }, num(p.end - p.start)),
          h("td", { class: "num" }, bytes(p.bytes)),
        )
      ),
    );
    groups.replaceChildren(
      ...(info.groups.length === 0
        ? [h("tr", {}, h("td", { colspan: 7, class: "muted" }, "no groups yet"))]
        : info.groups.map((g) =>
          h(
            "tr",
            { dataset: { group: g.name } },
            h(
              "td",
              {},
              h(
                "a",
                { href: `${topicPath(topic)}/groups/${enc(g.name)}`, "data-link": true },
                g.name,
              ),
            ),
            ...[g.lag, g.inFlight, g.retrying, g.delayed, g.deadLettered, g.expired].map((n) =>
              h("td", { class: "num" }, num(n))
            ),
          )
        )),
    );
    bindings.replaceChildren(
      info.bindings.length === 0 ? h("p", { class: "muted" }, "no exchange routes here") : h(
        "ul",
        {},
        info.bindings.map((b) =>
          h(
            "li",
            {},
            h("a", { href: "/exchanges", "data-link": true }, b.exchange),
            ` -> ${b.key ?? (b.headers ? JSON.stringify(b.headers) : "(all)")}`,
          )
        ),
      ),
    );
  }

  // The message browser.
  const q = new URLSearchParams(location.search);
  const st = {
    partition: Number(q.get("partition") ?? 0),
    from: q.get("from") ?? "end",
    before: null,
    key: q.get("key") ?? "",
    header: q.get("header") ?? "",
    text: q.get("text") ?? "",
    mode: "text",
  };
  const list = h("tbody", { id: "messages" });
  const pageInfo = h("span", { class: "muted", id: "page-info" });
  let page = null;
  let tail = st.from === "end";
  async function load(opts = {}) {
    const p = new URLSearchParams({ partition: String(st.partition), limit: "50" });
    if (opts.before !== undefined) p.set("before", String(opts.before));
    else if (opts.from !== undefined) p.set("from", String(opts.from));
    else if (st.from !== "end") p.set("from", st.from);
    if (st.key) p.set("key", st.key);
    if (st.header) p.set("header", st.header);
    if (st.text) p.set("text", st.text);
    page = await api(`topics/${enc(topic)}/messages?${p}`);
    tail = opts.before === undefined && opts.from === undefined && st.from === "end";
    drawMessages();
  }
  let loads = 0;
  function drawMessages() {
    list.dataset.loads = String(++loads);
    pageInfo.textContent = page.messages.length === 0
      ? `no messages here (offsets ${num(page.start)} to ${num(page.end - 1)})`
      : `offsets ${num(page.messages[0].offset)} to ${num(page.messages.at(-1).offset)} of ${
        num(page.start)
      } to ${num(page.end - 1)}${tail ? " (following the end)" : ""}`;
    older.disabled = page.prev === null;
    newer.disabled = page.next === null;
    list.replaceChildren(
      ...page.messages.map((m) =>
        h(
          "tr",
          { dataset: { offset: m.offset } },
          h("td", { class: "num" }, m.offset),
          h("td", { class: "mono" }, m.timestamp),
          h("td", { class: "mono" }, m.key ?? ""),
          h(
            "td",
            { class: "mono" },
            Object.entries(m.headers).map(([k, v]) => `${k}=${v}`).join("\n"),
          ),
          h("td", {}, h("pre", { class: "payload" }, renderPayload(m, st.mode))),
        )
      ),
    );
  }
  const field = (k, placeholder, width = 140) =>
    h("input", {
      placeholder,
      value: st[k],
      style: `width:${width}px`,
      id: `f-${k}`,
      onchange: (e) => (st[k] = e.target.value.trim()),
    });
  const partSel = h(
    "select",
    { id: "f-partition", onchange: (e) => (st.partition = Number(e.target.value)) },
    info.partitions.map((p) =>
      h(
        "option",
        { value: p.partition, selected: p.partition === st.partition },
        `partition ${p.partition}`,
      )
    ),
  );
  const older = h(
    "button",
    { id: "older", onclick: () => act(() => load({ before: page.prev })) },
    "\u2190 older",
  );
  const newer = h(
    "button",
    { id: "newer", onclick: () => act(() => load({ from: page.next })) },
    "newer \u2192",
  );
  const modeSel = h(
    "select",
    { id: "f-mode", onchange: (e) => ((st.mode = e.target.value), drawMessages()) },
    h("option", { value: "text" }, "text"),
    h("option", { value: "json" }, "pretty JSON"),
    h("option", { value: "hex" }, "hex"),
  );
  const browser = h(
    "div",
    { class: "card" },
    h(
      "div",
      { class: "toolbar" },
      partSel,
      field("from", "end, beginning, offset, time, -5m"),
      field("key", "key"),
      field("header", "header NAME=VALUE"),
      field("text", "payload contains"),
      h("button", { class: "primary", id: "browse", onclick: () => act(() => load()) }, "Show"),
      modeSel,
    ),
    h("div", { class: "toolbar" }, older, newer, pageInfo),
    h(
      "table",
      {},
      h(
        "thead",
        {},
        h("tr", {}, ["Offset", "Time", "Key", "Headers", "Payload"].map((c) => h("th", {}, c))),
      ),
      list,
    ),
  );

  const publish = READ_ONLY ? null : (() => {
    const payload = h("textarea", { id: "p-payload", placeholder: "payload (sent as text)" });
    const key = h("input", { id: "p-key", placeholder: "key (optional)" });
    const headers = h("input", {
      id: "p-headers",
      placeholder: "headers: a=1, b=2",
      style: "width:260px",
    });
    return h(
      "div",
      { class: "card" },
      h("h2", {}, "Publish"),
      payload,
      h(
        "div",
        { class: "toolbar" },
        key,
        headers,
        h("button", {
          class: "primary",
          id: "p-send",
          onclick: () =>
            act(async () => {
              const hs = {};
              for (const part of headers.value.split(",").map((x) => x.trim()).filter(Boolean)) {
                const eq = part.indexOf("=");
                if (eq <= 0) throw new Error(`header ${JSON.stringify(part)} must be NAME=VALUE`);
                hs[part.slice(0, eq)] = part.slice(eq + 1);
              }
              const r = await api(`topics/${enc(topic)}/messages`, {
                method: "POST",
                body: { payload: payload.value, key: key.value, headers: hs },
              });
              toast(`published at partition ${r.partition}, offset ${r.offset}`);
              payload.value = "";
            }),
        }, "Publish"),
      ),
    );
  })();

  main.replaceChildren(
    h("div", { class: "crumbs" }, h("a", { href: "/", "data-link": true }, "Topics"), " / "),
    h("h1", {}, topic),
    stats,
    h(
      "div",
      { class: "grid2" },
      h(
        "div",
        {},
        h("h2", {}, "Partitions"),
        h(
          "table",
          {},
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["Partition", "First", "Last", "Messages", "Bytes"].map((c) => h("th", {}, c)),
            ),
          ),
          parts,
        ),
      ),
      h(
        "div",
        {},
        h("h2", {}, "Groups"),
        h(
          "table",
          { id: "groups" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["Group", "Lag", "In flight", "Retrying", "Delayed", "Dead", "Expired"].map((c) =>
                h("th", {}, c)
              ),
            ),
          ),
          groups,
        ),
        h(
          "p",
          {},
          h(
            "a",
            { href: `${topicPath(topic)}/dlq`, "data-link": true, id: "dlq-link" },
            `Dead letters (${info.config.dlq ?? topic + ".dlq"})`,
          ),
        ),
        h("h2", {}, "Bindings"),
        bindings,
      ),
    ),
    h("h2", {}, "Messages"),
    browser,
    publish,
  );
  drawInfo();
  await load();
  let seen = info.partitions.reduce((n, p) => n + p.end, 0);
  onLive = async (o) => {
    const t = o.topics.find((x) => x.name === topic);
    if (!t) return;
    if (
      t.published !== seen || t.groups.length !== info.groups.length ||
      JSON.stringify(t.groups.map((g) => [g.lag, g.inFlight])) !==
        JSON.stringify(info.groups.map((g) => [g.lag, g.inFlight]))
    ) {
      info = await api(`topics/${enc(topic)}`);
      if (tail && t.published !== seen) await load();
      seen = t.published;
    }
    drawInfo();
  };
}

async function groupPage(topic, group) {
  const box = h("div", { class: "stats card" });
  async function refresh() {
    const g = await api(`topics/${enc(topic)}/groups/${enc(group)}`);
    box.replaceChildren(
      ...[
        ["lag", g.lag],
        ["in flight", g.inFlight],
        ["retrying", g.retrying],
        ["delayed", g.delayed],
        ["dead-lettered", g.deadLettered],
        ["expired", g.expired],
      ]
        .map(([k, v]) =>
          h("div", { class: "stat", dataset: { stat: k } }, h("b", {}, num(v)), h("span", {}, k))
        ),
    );
    parts.replaceChildren(
      ...g.partitions.map((p) =>
        h(
          "tr",
          {},
          h("td", {}, p.partition),
          h("td", { class: "num" }, num(p.floor)),
          h("td", { class: "num" }, num(p.next)),
        )
      ),
    );
  }
  const parts = h("tbody");
  const where = h(
    "select",
    { id: "r-where" },
    ["beginning", "end", "offset", "time"].map((w) => h("option", { value: w }, w)),
  );
  const arg = h("input", { id: "r-arg", placeholder: "offset, ISO time or -1h" });
  const actions = READ_ONLY ? null : h(
    "div",
    { class: "card" },
    h("h2", {}, "Move or delete"),
    h(
      "div",
      { class: "toolbar" },
      "reset to",
      where,
      arg,
      h("button", {
        class: "primary",
        id: "r-go",
        onclick: () =>
          act(async () => {
            const to = where.value === "beginning" || where.value === "end"
              ? where.value
              : arg.value.trim();
            await api(`topics/${enc(topic)}/groups/${enc(group)}/reset`, {
              method: "POST",
              body: { to },
            });
            toast(`group ${group} moved to ${to}`);
            await refresh();
          }),
      }, "Reset"),
      confirmButton("Delete group", "Click again to delete", async () => {
        await api(`topics/${enc(topic)}/groups/${enc(group)}`, { method: "DELETE" });
        navigate(topicPath(topic));
      }),
    ),
  );
  main.replaceChildren(
    h(
      "div",
      { class: "crumbs" },
      h("a", { href: "/", "data-link": true }, "Topics"),
      " / ",
      h("a", { href: topicPath(topic), "data-link": true }, topic),
      " / groups /",
    ),
    h("h1", {}, group),
    box,
    h(
      "table",
      {},
      h(
        "thead",
        {},
        h("tr", {}, ["Partition", "Settled below", "Next to deliver"].map((c) => h("th", {}, c))),
      ),
      parts,
    ),
    actions,
  );
  await refresh();
  onLive = () => refresh();
}

async function dlqPage(topic) {
  const tbody = h("tbody", { id: "letters" });
  const summary = h("p", { class: "muted", id: "dlq-count" });
  let letters = [];
  async function refresh() {
    letters = await api(`topics/${enc(topic)}/dlq`);
    summary.textContent = `${num(letters.length)} dead letter${
      letters.length === 1 ? "" : "s"
    } waiting`;
    tbody.replaceChildren(
      ...letters.map((l) =>
        h(
          "tr",
          { dataset: { offset: l.offset } },
          READ_ONLY ? null : h(
            "td",
            {},
            h("input", {
              type: "checkbox",
              dataset: { partition: l.partition, offset: l.offset },
            }),
          ),
          h("td", { class: "num" }, `${l.origin.partition ?? "-"}/${l.origin.offset ?? "-"}`),
          h("td", {}, l.reason ?? "-"),
          h("td", { class: "num" }, l.attempts ?? "-"),
          h("td", { class: "mono" }, l.first_failure ?? "-"),
          h("td", { class: "mono" }, l.last_failure ?? "-"),
          h("td", {}, h("pre", { class: "payload" }, renderPayload(l, "text"))),
          READ_ONLY ? null : h(
            "td",
            {},
            h("button", {
              class: "replay-one",
              onclick: () => act(() => replay([{ partition: l.partition, offset: l.offset }])),
            }, "Replay"),
          ),
        )
      ),
    );
  }
  async function replay(only) {
    const r = await api(`topics/${enc(topic)}/dlq/replay`, {
      method: "POST",
      body: only ? { only } : {},
    });
    toast(`replayed ${r.replayed} to ${topic}`);
    await refresh();
  }
  const actions = READ_ONLY ? null : h(
    "div",
    { class: "toolbar" },
    h("button", {
      id: "replay-selected",
      onclick: () =>
        act(() => {
          const only = [...tbody.querySelectorAll("input:checked")].map((c) => ({
            partition: Number(c.dataset.partition),
            offset: Number(c.dataset.offset),
          }));
          if (only.length === 0) throw new Error("select dead letters first");
          return replay(only);
        }),
    }, "Replay selected"),
    h("button", { id: "replay-all", onclick: () => act(() => replay(undefined)) }, "Replay all"),
    confirmButton("Purge", "Click again to purge", async () => {
      const r = await api(`topics/${enc(topic)}/dlq/purge`, { method: "POST" });
      toast(`purged ${r.purged}`);
      await refresh();
    }),
  );
  main.replaceChildren(
    h(
      "div",
      { class: "crumbs" },
      h("a", { href: "/", "data-link": true }, "Topics"),
      " / ",
      h("a", { href: topicPath(topic), "data-link": true }, topic),
      " /",
    ),
    h("h1", {}, "Dead letters"),
    summary,
    actions,
    h(
      "table",
      {},
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          [
            READ_ONLY ? null : "",
            "Origin p/offset",
            "Reason",
            "Attempts",
            "First failure",
            "Last failure",
            "Payload",
            READ_ONLY ? null : "",
          ].filter((c) => c !== null).map((c) => h("th", {}, c)),
        ),
      ),
      tbody,
    ),
  );
  await refresh();
  let seen = latest?.topics.find((t) => t.name === topic)?.deadLetters;
  onLive = async (o) => {
    const n = o.topics.find((t) => t.name === topic)?.deadLetters;
    if (n !== seen) {
      seen = n;
      await refresh();
    }
  };
}

async function exchangesPage() {
  const list = await api("exchanges");
  const rows = [];
  for (const x of list) for (const b of x.bindings) rows.push({ x, b });
  const label = (b) =>
    b.key ??
      (b.headers
        ? `${b.match ?? "all"}: ${
          Object.entries(b.headers).map(([k, v]) => `${k}=${v}`).join(", ")
        }`
        : "(all)");
  const ROW = 28, W = 900;
  const svg = s("svg", {
    class: "graph",
    width: W,
    height: Math.max(1, rows.length) * ROW + 20,
    id: "graph",
  });
  const exY = new Map();
  rows.forEach(({ x }, i) => exY.has(x.name) || exY.set(x.name, i));
  rows.forEach(({ x, b }, i) => {
    const y = 14 + i * ROW, ey = 14 + exY.get(x.name) * ROW;
    svg.append(
      s("path", {
        d: `M190 ${ey} C 260 ${ey}, 280 ${y}, 340 ${y}`,
        stroke: "#9aa3b5",
        fill: "none",
      }),
      s("line", { x1: 560, y1: y, x2: 640, y2: y, stroke: "#9aa3b5" }),
      s("text", { x: 350, y: y + 4 }, label(b)),
      s("text", {
        x: 650,
        y: y + 4,
        fill: b.destinationKind === "exchange" ? "#b5651d" : "#2f6fde",
      }, `${b.destinationKind === "exchange" ? "exchange " : ""}${b.destination}`),
    );
  });
  for (const [name, i] of exY) {
    const x = list.find((e) => e.name === name);
    svg.append(
      s("rect", {
        x: 4,
        y: 14 + i * ROW - 11,
        width: 186,
        height: 22,
        rx: 4,
        fill: "#eef2fa",
        stroke: "#c8cdd7",
      }),
      s("text", { x: 10, y: 14 + i * ROW + 4 }, `${name} (${x.type})`),
    );
  }
  main.replaceChildren(
    h("h1", {}, "Exchanges"),
    list.length === 0
      ? h("p", { class: "muted" }, "no exchanges (mq exchange create NAME --type topic)")
      : h("div", { class: "card" }, svg),
    h(
      "table",
      { id: "bindings" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Exchange", "Type", "Pattern / headers", "Destination"].map((c) => h("th", {}, c)),
        ),
      ),
      h(
        "tbody",
        {},
        list.flatMap((x) =>
          x.bindings.length === 0
            ? [
              h(
                "tr",
                {},
                h("td", {}, x.name),
                h("td", {}, x.type),
                h("td", { class: "muted" }, "no bindings"),
                h("td", {}),
              ),
            ]
            : x.bindings.map((b) =>
              h(
                "tr",
                {},
                h("td", {}, x.name),
                h("td", {}, x.type),
                h("td", { class: "mono" }, label(b)),
                h(
                  "td",
                  {},
                  b.destinationKind === "topic"
                    ? h("a", { href: topicPath(b.destination), "data-link": true }, b.destination)
                    : `exchange ${b.destination}`,
                ),
              )
            )
        ),
      ),
    ),
  );
  onLive = null;
}

// ---- routing --------------------------------------------------------------

async function route() {
  onLive = null;
  const parts = location.pathname.split("/").filter(Boolean).map(decodeURIComponent);
  document.body.dataset.page = "loading";
  try {
    let page = "not-found";
    if (parts.length === 0) {
      await overviewPage();
      page = "overview";
    } else if (parts[0] === "exchanges") {
      await exchangesPage();
      page = "exchanges";
    } else if (parts[0] === "topics" && parts.length === 2) {
      await topicPage(parts[1]);
      page = "topic";
    } else if (parts[0] === "topics" && parts[2] === "dlq") {
      await dlqPage(parts[1]);
      page = "dlq";
    } else if (parts[0] === "topics" && parts[2] === "groups" && parts.length === 4) {
      await groupPage(parts[1], parts[3]);
      page = "group";
    } else main.replaceChildren(h("h1", {}, "Not found"));
    document.body.dataset.page = page;
  } catch (e) {
    main.replaceChildren(
      h("h1", {}, "Something went wrong"),
      h("p", { class: "bad", id: "error" }, e.message),
    );
    document.body.dataset.page = "error";
  }
}

function navigate(path) {
  history.pushState(null, "", path);
  route();
}

document.addEventListener("click", (e) => {
  const a = e.target.closest?.("a[data-link]");
  if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  e.preventDefault();
  navigate(a.getAttribute("href"));
});
addEventListener("popstate", route);

(async () => {
  if (READ_ONLY) document.getElementById("mode").hidden = false;
  const o = await api("overview").catch(() => null);
  if (o) document.getElementById("backend").textContent = o.backend;
  connectLive();
  await route();
})();
