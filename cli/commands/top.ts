/** `mq top`: a live terminal view of topics and groups, like `nats top` or `htop`. */
import type { Call } from "../definition.ts";
import {
  assertPattern,
  type Mq,
  overview,
  parseDuration,
  type RatedOverview,
  type RatedTopic,
  RateTracker,
} from "../../mod.ts";
import { MqError } from "../../core/errors.ts";
import { redactUrl } from "../../core/backend_url.ts";
import { globals, openBackend, print } from "../runtime.ts";
import { cpuUsage, Pacer } from "../ui_server.ts";

/** Sort orders of `mq top`, by the key that picks them. */
export const TOP_SORTS = {
  r: "publish rate",
  c: "consume rate",
  m: "messages",
  l: "lag",
  d: "dead letters",
  n: "name",
} as const;

/** A sort key of {@link TOP_SORTS}. */
export type TopSort = keyof typeof TOP_SORTS;

/** Options of {@link runTop}. */
export interface TopOptions {
  /** Only topics matching these names or patterns (`*`, `#`). */
  topics: string[];
  /** Time between refreshes, ms. */
  intervalMs: number;
  /** One snapshot (rates over one interval), then exit. */
  once: boolean;
  /** With `once`: print JSON instead of the table. */
  json: boolean;
  /** Colours (off with NO_COLOR or --no-color). */
  color: boolean;
  /** The backend URL to show (secrets are hidden here). */
  url: string;
}

const SORTERS: Record<TopSort, (a: RatedTopic, b: RatedTopic) => number> = {
  r: (a, b) => b.publishRate - a.publishRate || a.name.localeCompare(b.name),
  c: (a, b) => b.consumeRate - a.consumeRate || a.name.localeCompare(b.name),
  m: (a, b) => b.messages - a.messages || a.name.localeCompare(b.name),
  l: (a, b) => b.maxLag - a.maxLag || a.name.localeCompare(b.name),
  d: (a, b) => b.deadLetters - a.deadLetters || a.name.localeCompare(b.name),
  n: (a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
};

function rate(x: number): string {
  return x >= 100 ? String(Math.round(x)) : x === 0 ? "0" : x.toFixed(1);
}

function cut(s: string, n: number): string {
  return s.length <= n ? s : s.slice(0, Math.max(0, n - 1)) + "~";
}

/** Terminal-safe text: control characters of a name shown as `?`. */
function safe(s: string): string {
  return [...s].map((c) => (c < " " || c === "\x7f" ? "?" : c)).join("");
}

/**
 * The screen of `mq top`: a header, then topics with their groups below
 * them, sorted, cut to `height` lines of `width` columns.
 *
 * @example
 * ```ts ignore
 * const lines = renderTop(rated, { sort: "r", width: 100, height: 30, color: false, url: "file:./data" });
 * ```
 */
export function renderTop(
  o: RatedOverview,
  view: { sort: TopSort; width: number; height: number; color: boolean; url: string },
): string[] {
  const paint = (sgr: string, s: string) => (view.color ? `\x1b[${sgr}m${s}\x1b[0m` : s);
  const topics = [...o.topics].sort(SORTERS[view.sort]);
  const groups = topics.reduce((n, t) => n + t.groups.length, 0);
  const pub = topics.reduce((n, t) => n + t.publishRate, 0);
  const con = topics.reduce((n, t) => n + t.consumeRate, 0);
  const name = Math.max(16, Math.min(48, view.width - 62));
  const row = (cells: string[]) =>
    cut(
      cells[0].padEnd(name) + " " +
        cells.slice(1).map((c, i) => c.padStart([5, 10, 9, 9, 9, 7, 7][i])).join(" "),
      view.width,
    );
  const lines = [
    cut(
      `mq top  ${safe(view.url)}  ${
        new Date(o.at).toISOString()
      }  topics ${topics.length}  groups ${groups}  pub/s ${rate(pub)}  con/s ${rate(con)}`,
      view.width,
    ),
    cut(
      `sort: ${TOP_SORTS[view.sort]}  (keys: ${
        Object.entries(TOP_SORTS).map(([k, v]) => `${k} ${v}`).join(", ")
      }, q quit)`,
      view.width,
    ),
    paint(
      "1;7",
      row(["TOPIC / GROUP", "PARTS", "MESSAGES", "PUB/S", "CON/S", "LAG", "DLQ", "DELAYED"]),
    ),
  ];
  for (const t of topics) {
    if (lines.length >= view.height) break;
    const dlq = String(t.deadLetters);
    lines.push(
      row([
        cut(safe(t.name), name),
        String(t.partitions),
        String(t.messages),
        rate(t.publishRate),
        rate(t.consumeRate),
        String(t.maxLag),
        dlq,
        String(t.delayed),
      ]).replace(
        / (\d+)( +\d+)$/,
        (all, d: string, rest: string) => d === "0" ? all : ` ${paint("31", d)}${rest}`,
      ),
    );
    for (const g of t.groups) {
      if (lines.length >= view.height) break;
      lines.push(
        paint(
          "2",
          row([
            cut("  " + safe(g.name), name),
            "",
            g.inFlight ? `${g.inFlight} fly` : "",
            "",
            "",
            String(g.lag),
            String(g.deadLettered),
            String(g.delayed),
          ]),
        ),
      );
    }
  }
  return lines;
}

/** The JSON of `mq top --once --json`: the snapshot with rates, without histories. */
export function topJson(o: RatedOverview): string {
  return JSON.stringify({
    at: new Date(o.at).toISOString(),
    topics: o.topics.map(({ publishHistory: _p, consumeHistory: _c, ...t }) => t),
  }) + "\n";
}

const enc = new TextEncoder();

async function rated(
  mq: Mq,
  tracker: RateTracker,
  topics: string[],
  bytes = false,
  more: { previous?: RatedOverview; listGroups?: boolean } = {},
): Promise<RatedOverview> {
  return tracker.add(await overview(mq, { topics, bytes, ...more }));
}

/**
 * Runs `mq top`: with `once`, one snapshot (rates over one interval) as a
 * table or JSON; else a live view redrawn in place every interval until `q`,
 * Ctrl-C or SIGTERM.
 *
 * @throws {MqError} `INVALID_ARGUMENT` for a bad pattern or interval
 */
export async function runTop(mq: Mq, options: TopOptions): Promise<void> {
  for (const p of options.topics) assertPattern(p);
  if (!(options.intervalMs >= 50)) {
    throw new MqError("INVALID_ARGUMENT", "--interval must be at least 50ms");
  }
  const tracker = new RateTracker({ samples: 2 });
  const size = () => {
    try {
      return Deno.consoleSize();
    } catch {
      return { columns: 120, rows: 40 };
    }
  };
  if (options.once) {
    await rated(mq, tracker, options.topics);
    await new Promise((r) => setTimeout(r, options.intervalMs));
    const o = await rated(mq, tracker, options.topics, true);
    if (options.json) return await print(topJson(o));
    const lines = renderTop(o, {
      sort: "r",
      width: size().columns,
      height: Infinity,
      color: options.color && Deno.stdout.isTerminal(),
      url: options.url,
    });
    return await print(lines.join("\n") + "\n");
  }
  let sort: TopSort = "r";
  let last: RatedOverview | undefined;
  let stop!: () => void;
  const stopped = new Promise<void>((r) => (stop = r));
  const draw = async () => {
    if (!last) return;
    const { columns, rows } = size();
    const lines = renderTop(last, {
      sort,
      width: columns,
      height: rows - 1,
      color: options.color,
      url: options.url,
    });
    // Home, each line then clear to its end, clear below: no flicker.
    await Deno.stdout.write(
      enc.encode("\x1b[H" + lines.map((l) => l + "\x1b[K").join("\r\n") + "\x1b[J"),
    );
  };
  const raw = Deno.stdin.isTerminal();
  if (raw) Deno.stdin.setRaw(true);
  await Deno.stdout.write(enc.encode("\x1b[?1049h\x1b[?25l"));
  const onSignal = () => stop();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const keys = (async () => {
    const buf = new Uint8Array(64);
    while (true) {
      const n = await Deno.stdin.read(buf).catch(() => null);
      if (n === null) return;
      for (const b of buf.subarray(0, n)) {
        const k = String.fromCharCode(b).toLowerCase();
        if (k === "q" || b === 3) return stop();
        if (k in TOP_SORTS) {
          sort = k as TopSort;
          await draw();
        }
      }
    }
  })();
  try {
    // Its own CPU stays under 4% of one core: on a store so large that one
    // refresh costs more, the next comes later than --interval.
    const pace = new Pacer(options.intervalMs, 0.04);
    let passes = 0;
    const tick = async () => {
      const cpu0 = cpuUsage();
      // Groups listed every fifth refresh (a new one shows within five).
      last = await rated(mq, tracker, options.topics, false, {
        previous: last,
        listGroups: passes++ % 5 === 0,
      });
      await draw();
      const delay = pace.next(cpuUsage() - cpu0);
      timer = setTimeout(() => tick().catch(() => stop()), delay);
    };
    await tick();
    await stopped;
  } finally {
    clearTimeout(timer);
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    await Deno.stdout.write(enc.encode("\x1b[?25h\x1b[?1049l"));
    if (raw) Deno.stdin.setRaw(false);
    void keys;
  }
}

/** `mq top`, with its options as parsed (see `cli/definitions/top.ts`). */
export async function topCommand(
  opts: { topics: string[]; interval: string; once?: boolean; json?: boolean },
  cmd: Call,
): Promise<void> {
  const intervalMs = parseDuration(opts.interval);
  if (opts.json && !opts.once) {
    throw new MqError("INVALID_ARGUMENT", "--json needs --once (the live view is a screen)");
  }
  const no = Deno.env.get("NO_COLOR");
  const color = globals(cmd).color !== false && (no === undefined || no === "");
  const { mq, backend } = await openBackend(cmd);
  try {
    await runTop(mq, {
      topics: opts.topics,
      intervalMs,
      once: opts.once ?? false,
      json: opts.json ?? false,
      color,
      url: redactUrl(backend.url),
    });
  } finally {
    await mq.close();
  }
}
