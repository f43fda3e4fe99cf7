/**
 * The HTTP side of `mq ui`: pages, static files, the JSON API under `/api/`,
 * live updates by server-sent events and `GET /metrics`; all over the
 * library's public API, so it serves every backend alike. One handler
 * (`Request -> Response`), so tests and `Deno.serve` use the same code.
 *
 * Access: every request needs the token, by `?token=` once (answered with
 * an `HttpOnly; SameSite=Strict` cookie and a redirect without it), then by
 * the cookie, or by `Authorization: Bearer T`. A writing call needs the
 * bearer header (a cross-site form cannot set one); the page gets the token
 * in a `<meta>` of the HTML it is served only with the cookie.
 *
 * @module
 */
import process from "node:process";
import {
  type BrowseFilter,
  browseMessages,
  DLQ_HEADERS,
  formatMetrics,
  listDeadLetters,
  METRICS_CONTENT_TYPE,
  type Mq,
  nameProblem,
  type Overview,
  overview,
  parseStartFrom,
  purgeDeadLetters,
  type RatedOverview,
  RateTracker,
  type ReceivedMessage,
  replayDeadLetters,
} from "../mod.ts";
import { MqError } from "../core/errors.ts";
import { toEnvelope } from "./envelope.ts";
import { redactSecrets } from "./exit_codes.ts";

/** Options of {@link createUiHandler}. */
export interface UiOptions {
  /** The access token. */
  token: string;
  /** Refuse every writing call and hide the actions. */
  readOnly: boolean;
  /** The backend URL as shown to the page (secrets already `***`). */
  backend: string;
  /** Time between live updates, ms. @default 1000 */
  intervalMs?: number;
  /**
   * The most of one core the live sampler may use: when a pass over the store
   * costs more CPU than this share of `intervalMs`, the next pass waits longer.
   * @default 0.04
   */
  cpuShare?: number;
}

/** A running handler: serve requests with `handle`; `close` stops its timers. */
export interface UiHandler {
  /** Answers one request. */
  handle(req: Request): Promise<Response>;
  /** Live clients connected right now. */
  readonly clients: number;
  /** Stops the live updates and closes every event stream. */
  close(): void;
}

const COOKIE = "mq_ui_token";

/**
 * The time to the next pass of a sampler whose passes should use at most
 * `share` of one core: the pass's CPU (smoothed, the first, cold one left
 * out) over `share`, at least `interval` and at most ten of them.
 *
 * @example
 * ```ts ignore
 * const pace = new Pacer(1000, 0.04);
 * pace.next(120); // 1000: the first pass warms caches and is not counted
 * pace.next(120); // 3000: 120 ms of CPU is 4% of 3 s
 * ```
 */
export class Pacer {
  #interval: number;
  #share: number;
  #cost: number | undefined;
  #passes = 0;

  /** A pacer of passes `interval` ms apart using at most `share` of a core. */
  constructor(interval: number, share: number) {
    this.#interval = interval;
    this.#share = share;
  }

  /** The delay before the next pass, given the CPU ms the last one used. */
  next(cpuMs: number): number {
    if (this.#passes++ === 0) return this.#interval;
    this.#cost = this.#cost === undefined ? cpuMs : (this.#cost + cpuMs) / 2;
    return Math.round(
      Math.min(10 * this.#interval, Math.max(this.#interval, this.#cost / this.#share)),
    );
  }
}

/** CPU time (user + system) this process used so far, ms. */
export function cpuUsage(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}
const STATIC: Record<string, string> = {
  "app.js": "text/javascript; charset=utf-8",
  "style.css": "text/css; charset=utf-8",
};
const PAGE = /^\/(?:topics\/[^/]+(?:\/dlq|\/groups\/[^/]+)?|exchanges)?\/?$/;
const enc = new TextEncoder();

/** Equal strings, compared in time independent of where they differ. */
function sameToken(a: string, b: string): boolean {
  const x = enc.encode(a), y = enc.encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

function cookieToken(req: Request): string | undefined {
  for (const part of (req.headers.get("cookie") ?? "").split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === COOKIE) return decodeURIComponent(v.join("="));
  }
  return undefined;
}

function bearer(req: Request): string | undefined {
  const m = (req.headers.get("authorization") ?? "").match(/^Bearer\s+(\S+)$/i);
  return m?.[1];
}

const SECURITY_HEADERS = {
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cache-control": "no-store",
};

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...SECURITY_HEADERS },
  });
}

function problem(status: number, message: string): Response {
  return json({ error: message }, status);
}

/** The HTTP status of a library error. */
function statusOf(e: unknown): number {
  if (!MqError.is(e)) return 500;
  switch (e.code) {
    case "TOPIC_NOT_FOUND":
      return 404;
    case "INVALID_NAME":
    case "INVALID_ARGUMENT":
    case "MESSAGE_TOO_LARGE":
    case "MALFORMED_MESSAGE":
      return 400;
    case "TOPIC_FULL":
    case "CONFLICT":
      return 409;
    default:
      return 500;
  }
}

/** A message as the API shows it: the envelope of `mq sub --format json`. */
function envelope(m: ReceivedMessage): Record<string, unknown> {
  const e = JSON.parse(toEnvelope(m)) as Record<string, unknown>;
  const r = m.record;
  if (r.deliverAt !== undefined) e.deliver_at = new Date(r.deliverAt).toISOString();
  if (r.expiresAt !== undefined) e.expires_at = new Date(r.expiresAt).toISOString();
  return e;
}

function name(kind: string, raw: string): string {
  let s: string;
  try {
    s = decodeURIComponent(raw);
  } catch {
    throw new MqError("INVALID_NAME", `${kind} name is not valid URL encoding`);
  }
  const why = nameProblem(s);
  if (why) throw new MqError("INVALID_NAME", `${kind} name ${JSON.stringify(s)} ${why}`);
  return s;
}

async function body(req: Request): Promise<Record<string, unknown>> {
  const text = await req.text();
  if (text === "") return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new MqError("MALFORMED_MESSAGE", "the request body is not JSON");
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) {
    throw new MqError("MALFORMED_MESSAGE", "the request body must be a JSON object");
  }
  return v as Record<string, unknown>;
}

function stringRecord(v: unknown, what: string): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "object" || Array.isArray(v)) {
    throw new MqError("INVALID_ARGUMENT", `${what} must be an object of strings`);
  }
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== "string") {
      throw new MqError("INVALID_ARGUMENT", `${what}.${k} must be a string`);
    }
    out[k] = x;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

function wholeParam(u: URL, key: string): number | undefined {
  const v = u.searchParams.get(key);
  if (v === null || v === "") return undefined;
  if (!/^\d+$/.test(v)) throw new MqError("INVALID_ARGUMENT", `${key} must be a whole number`);
  return Number(v);
}

/** Overview rows as the live stream sends them: no histories (the page keeps its own). */
function compact(o: RatedOverview) {
  return o.topics.map(({ publishHistory: _p, consumeHistory: _c, ...t }) => t);
}

/**
 * The handler of `mq ui` over a client. The live sampler runs only while an
 * event stream is open: with no page open the server does nothing.
 *
 * @example
 * ```ts ignore
 * const ui = createUiHandler(mq, { token: "t", readOnly: false, backend: "memory:" });
 * Deno.serve({ port: 8977 }, ui.handle);
 * ```
 */
export function createUiHandler(mq: Mq, options: UiOptions): UiHandler {
  const interval = options.intervalMs ?? 1000;
  const cpuShare = options.cpuShare ?? 0.04;
  const tracker = new RateTracker({ samples: 120 });
  let latest: RatedOverview | undefined;
  const streams = new Set<ReadableStreamDefaultController<Uint8Array>>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let sampling: Promise<RatedOverview> | undefined;
  // Groups are listed every fifth pass (a new group shows within five); the
  // state of the groups known is read on every pass.
  let passes = 0;

  // The newest snapshot, of the sampler or of a /metrics scrape: the next
  // one asks for the bytes only of topics that moved since (a scrape with
  // no page open does not ask again for what the last scrape read).
  let newest: Overview | undefined;
  const snapshot = async (listGroups = true): Promise<Overview> => {
    const o = await overview(mq, { previous: newest, listGroups });
    if (!newest || o.at >= newest.at) newest = o;
    return o;
  };

  const sample = (): Promise<RatedOverview> =>
    sampling ??= snapshot(passes++ % 5 === 0).then((o) => (latest = tracker.add(o))).finally(
      () => {
        sampling = undefined;
      },
    );

  // The sampler's own CPU is held under `cpuShare` of one core: on a store so
  // large that one pass costs more, the next comes later than `interval`.
  const pace = new Pacer(interval, cpuShare);
  let delay = interval;
  const tick = async () => {
    timer = undefined;
    if (streams.size === 0) return;
    const cpu0 = cpuUsage();
    let frame: Uint8Array;
    try {
      const o = await sample();
      frame = enc.encode(
        `event: overview\ndata: ${
          JSON.stringify({ at: o.at, intervalMs: delay, topics: compact(o) })
        }\n\n`,
      );
    } catch (e) {
      frame = enc.encode(
        `event: failure\ndata: ${
          JSON.stringify({ error: redactSecrets(String((e as Error)?.message ?? e)) })
        }\n\n`,
      );
    }
    for (const s of streams) {
      try {
        s.enqueue(frame);
      } catch {
        streams.delete(s);
      }
    }
    delay = pace.next(cpuUsage() - cpu0);
    if (streams.size > 0) timer = setTimeout(tick, delay);
  };

  const events = (): Response => {
    let me: ReadableStreamDefaultController<Uint8Array>;
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        me = c;
        streams.add(c);
        c.enqueue(enc.encode(`retry: 2000\n\n`));
        if (timer === undefined) timer = setTimeout(tick, 0);
      },
      cancel() {
        streams.delete(me);
        if (streams.size === 0 && timer !== undefined) {
          clearTimeout(timer);
          timer = undefined;
        }
      },
    });
    return new Response(stream, {
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
      },
    });
  };

  const page = async (): Promise<Response> => {
    const html = await Deno.readTextFile(new URL("./ui/index.html", import.meta.url));
    const meta = `<meta name="mq-token" content="${options.token}">\n` +
      `<meta name="mq-read-only" content="${options.readOnly}">`;
    return new Response(html.replace("<!--mq-meta-->", meta), {
      headers: {
        "content-type": "text/html; charset=utf-8",
        "content-security-policy":
          "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ...SECURITY_HEADERS,
      },
    });
  };

  const api = async (req: Request, u: URL, parts: string[]): Promise<Response> => {
    const write = req.method !== "GET" && req.method !== "HEAD";
    if (write) {
      const b = bearer(req);
      if (!b || !sameToken(b, options.token)) {
        return problem(
          403,
          "a writing call needs the token in an Authorization: Bearer header",
        );
      }
      if (options.readOnly) {
        return problem(403, "mq ui runs with --read-only: nothing can be changed");
      }
    }
    const [first, topicRaw, sub, groupRaw, action] = parts;
    if (first === "overview" && parts.length === 1 && !write) {
      const o = latest && mq.now() - latest.at < interval ? latest : await sample();
      return json({
        at: o.at,
        backend: options.backend,
        readOnly: options.readOnly,
        intervalMs: interval,
        topics: o.topics,
      });
    }
    if (first === "events" && parts.length === 1 && !write) return events();
    if (first === "exchanges" && parts.length === 1 && !write) {
      return json(await mq.exchanges.list());
    }
    if (first !== "topics" || topicRaw === undefined) {
      return problem(404, `no API at ${u.pathname}`);
    }
    const topic = name("topic", topicRaw);
    if (sub === undefined && !write) {
      const info = await mq.topics.info(topic);
      const bindings = await mq.exchanges.bindingsTo(topic);
      const rated = latest?.topics.find((t) => t.name === topic);
      return json({
        ...info,
        bindings,
        publishRate: rated?.publishRate ?? 0,
        consumeRate: rated?.consumeRate ?? 0,
        published: info.partitions.reduce((n, p) => n + p.end, 0),
      });
    }
    if (sub === "messages" && parts.length === 3) {
      if (req.method === "POST") {
        const b = await body(req);
        if (typeof b.payload !== "string") {
          throw new MqError("MALFORMED_MESSAGE", "payload must be a string");
        }
        if (b.key !== undefined && b.key !== null && typeof b.key !== "string") {
          throw new MqError("INVALID_ARGUMENT", "key must be a string");
        }
        const key = typeof b.key === "string" && b.key !== "" ? b.key : undefined;
        const r = await mq.publish(topic, b.payload, {
          key,
          headers: stringRecord(b.headers, "headers"),
        });
        return json(
          { topic, partition: r.partition, offset: r.offset, duplicate: r.duplicate },
          201,
        );
      }
      if (write) return problem(405, "messages take GET or POST");
      const filter: BrowseFilter = {};
      const key = u.searchParams.get("key");
      if (key) filter.key = key;
      const headers: Record<string, string> = {};
      for (const h of u.searchParams.getAll("header")) {
        const eq = h.indexOf("=");
        if (eq <= 0) {
          throw new MqError("INVALID_ARGUMENT", `header ${JSON.stringify(h)} must be NAME=VALUE`);
        }
        headers[h.slice(0, eq)] = h.slice(eq + 1);
      }
      if (Object.keys(headers).length > 0) filter.headers = headers;
      const text = u.searchParams.get("text");
      if (text) filter.text = text;
      const from = u.searchParams.get("from");
      const before = wholeParam(u, "before");
      const page = await browseMessages(mq, topic, {
        partition: wholeParam(u, "partition") ?? 0,
        from: from ? parseStartFrom(from) : "end",
        before,
        limit: Math.min(wholeParam(u, "limit") ?? 50, 500),
        filter,
        scanLimit: 100_000,
      });
      return json({ ...page, messages: page.messages.map(envelope) });
    }
    if (sub === "dlq") {
      if (parts.length === 3 && !write) {
        const letters = await listDeadLetters(mq, topic, { count: 1000 });
        // The fields of `mq dlq ls --json`: the envelope, and why it failed.
        return json(letters.map((l) => ({
          ...envelope(l.message),
          reason: l.reason ?? null,
          attempts: l.attempts ?? null,
          origin: {
            topic: l.message.headers[DLQ_HEADERS.topic] ?? null,
            partition: l.originPartition ?? null,
            offset: l.originOffset ?? null,
          },
          first_failure: l.firstFailure === undefined
            ? null
            : new Date(l.firstFailure).toISOString(),
          last_failure: l.lastFailure === undefined ? null : new Date(l.lastFailure).toISOString(),
          stderr: l.message.headers["mq-dlq-stderr"] ?? null,
        })));
      }
      if (parts.length === 4 && groupRaw === "replay" && req.method === "POST") {
        const b = await body(req);
        let only: { partition: number; offset: number }[] | undefined;
        if (b.only !== undefined) {
          if (
            !Array.isArray(b.only) ||
            !b.only.every((r) => r && Number.isInteger(r.partition) && Number.isInteger(r.offset))
          ) throw new MqError("INVALID_ARGUMENT", "only must be a list of {partition, offset}");
          only = b.only;
        }
        const replayed = await replayDeadLetters(mq, topic, { only });
        return json({ replayed });
      }
      if (parts.length === 4 && groupRaw === "purge" && req.method === "POST") {
        return json({ purged: await purgeDeadLetters(mq, topic) });
      }
    }
    if (sub === "groups" && groupRaw !== undefined) {
      const group = name("group", groupRaw);
      if (parts.length === 4 && !write) {
        const g = (await mq.topics.groups(topic)).find((x) => x.name === group);
        if (!g) return problem(404, `topic "${topic}" has no group "${group}"`);
        return json(g);
      }
      if (parts.length === 4 && req.method === "DELETE") {
        await mq.topics.removeGroup(topic, group);
        return json({ removed: group });
      }
      if (parts.length === 5 && action === "reset" && req.method === "POST") {
        const b = await body(req);
        if (typeof b.to !== "string") throw new MqError("INVALID_ARGUMENT", "to must be a string");
        if (!(await mq.topics.groups(topic)).some((x) => x.name === group)) {
          return problem(404, `topic "${topic}" has no group "${group}"`);
        }
        await mq.topics.resetGroup(topic, group, parseStartFrom(b.to));
        return json({ reset: group, to: b.to });
      }
    }
    return problem(404, `no API at ${req.method} ${u.pathname}`);
  };

  const handle = async (req: Request): Promise<Response> => {
    const u = new URL(req.url);
    const query = u.searchParams.get("token");
    const given = bearer(req) ?? cookieToken(req) ?? query ?? undefined;
    if (given === undefined || !sameToken(given, options.token)) {
      if (u.pathname.startsWith("/api/") || u.pathname === "/metrics") {
        return problem(401, "this needs the token of mq ui (Authorization: Bearer T)");
      }
      return new Response(
        "401 unauthorized: open the address mq ui printed (it carries ?token=...)\n",
        {
          status: 401,
          headers: { "content-type": "text/plain; charset=utf-8", ...SECURITY_HEADERS },
        },
      );
    }
    if (query !== null && req.method === "GET") {
      // Set the cookie, and take the token out of the address bar and history.
      u.searchParams.delete("token");
      return new Response(null, {
        status: 303,
        headers: {
          location: u.pathname + u.search,
          "set-cookie": `${COOKIE}=${
            encodeURIComponent(options.token)
          }; HttpOnly; SameSite=Strict; Path=/`,
          ...SECURITY_HEADERS,
        },
      });
    }
    try {
      if (u.pathname === "/metrics" && req.method === "GET") {
        return new Response(formatMetrics(await snapshot()), {
          headers: { "content-type": METRICS_CONTENT_TYPE, ...SECURITY_HEADERS },
        });
      }
      if (u.pathname.startsWith("/api/")) {
        return await api(req, u, u.pathname.slice(5).split("/").filter((s) => s !== ""));
      }
      if (u.pathname.startsWith("/static/") && req.method === "GET") {
        const file = u.pathname.slice(8);
        const type = STATIC[file];
        if (!type) return problem(404, `no file ${u.pathname}`);
        return new Response(await Deno.readFile(new URL(`./ui/${file}`, import.meta.url)), {
          headers: { "content-type": type, ...SECURITY_HEADERS },
        });
      }
      if (PAGE.test(u.pathname) && req.method === "GET") return await page();
      return problem(404, `no page at ${u.pathname}`);
    } catch (e) {
      const status = statusOf(e);
      return problem(status, redactSecrets((e as Error)?.message ?? String(e)));
    }
  };

  return {
    handle,
    get clients() {
      return streams.size;
    },
    close() {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      for (const s of streams) {
        try {
          s.close();
        } catch { /* closed already */ }
      }
      streams.clear();
    },
  };
}
