/**
 * Helpers of the Redis bridge tests: a private redis-server per case, and
 * what it holds as `redis-cli` (not mq) reads it.
 */
import { available, type Broker, findBinary, startRedis } from "../../scripts/brokers.ts";
import { withHome } from "../cli/_mq.ts";

/** Whether redis-server and redis-cli are here (under CI=true their absence throws). */
export const redis = (() => {
  const server = available("redis-server");
  if (!server.ok) return server;
  return available("redis-cli");
})();

const enc = new TextEncoder(), dec = new TextDecoder();

/** A case with a home folder and a private redis-server of its own. */
export function redisCase(
  name: string,
  fn: (home: string, broker: Broker) => Promise<void>,
  args: string[] = [],
): void {
  Deno.test({
    name,
    ignore: !redis.ok,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: () =>
      withHome(async (home) => {
        const broker = await startRedis({ args });
        try {
          await fn(home, broker);
        } finally {
          await broker.stop();
        }
      }),
  });
}

/** Runs `redis-cli -p PORT args...` (stdin: bytes for `-x` or `--pipe`); its stdout, or throws. */
export async function redisCli(
  port: number,
  args: string[],
  stdin?: Uint8Array,
): Promise<string> {
  const child = new Deno.Command(findBinary("redis-cli")!, {
    args: ["-p", String(port), ...args],
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin) {
    const w = child.stdin.getWriter();
    await w.write(stdin);
    await w.close();
  }
  const out = await child.output();
  if (out.code !== 0) {
    throw new Error(`redis-cli ${args.join(" ")}: exit ${out.code}: ${dec.decode(out.stderr)}`);
  }
  return dec.decode(out.stdout);
}

/** The bytes of one string as `redis-cli --quoted-json` shows it (`\xff`, `\n`, `\"`, ...). */
export function unquote(s: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c !== "\\") {
      for (const b of enc.encode(c)) out.push(b);
      continue;
    }
    const n = s[++i];
    if (n === "x") {
      out.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      const map: Record<string, number> = { n: 10, r: 13, t: 9, a: 7, b: 8, "\\": 92, '"': 34 };
      if (!(n in map)) throw new Error(`unexpected escape \\${n} in ${s}`);
      out.push(map[n]);
    }
  }
  return new Uint8Array(out);
}

/** An entry as redis-cli read it: its id and its fields, each as bytes. */
export interface CliEntry {
  id: string;
  fields: [string, Uint8Array][];
}

/**
 * Parses what `redis-cli --quoted-json` prints: nested lists of strings in
 * redis-cli's quoted form. (Its JSON doubles each backslash of that form but
 * leaves a quoted `\"` unescaped, so `JSON.parse` cannot read it.)
 */
export function parseQuotedJson(text: string): unknown {
  let i = 0;
  const value = (): unknown => {
    while (/\s|,/.test(text[i])) i++;
    if (text[i] === "[") {
      i++;
      const list: unknown[] = [];
      for (;;) {
        while (/\s|,/.test(text[i])) i++;
        if (text[i] === "]") {
          i++;
          return list;
        }
        list.push(value());
      }
    }
    if (text[i] === "n" && text.startsWith("null", i)) {
      i += 4;
      return null;
    }
    if (/[-0-9]/.test(text[i])) {
      const m = /^-?\d+/.exec(text.slice(i))!;
      i += m[0].length;
      return Number(m[0]);
    }
    if (text[i] !== '"') throw new Error(`unexpected ${text.slice(i, i + 20)}`);
    i++;
    let quoted = "";
    for (;;) {
      const c = text[i];
      if (c === undefined) throw new Error("unterminated string");
      if (c === "\\") {
        let k = 0;
        while (text[i] === "\\") {
          k++;
          i++;
        }
        quoted += "\\".repeat(k / 2);
        if ((k / 2) % 2 === 1 && text[i] === '"') {
          quoted += '"';
          i++;
        }
        continue;
      }
      i++;
      if (c === '"') return quoted;
      quoted += c;
    }
  };
  return value();
}

/** Every entry of `stream` (in database `db`), read with `redis-cli --quoted-json XRANGE`, in pages. */
export async function xrange(port: number, stream: string, db = 0): Promise<CliEntry[]> {
  const all: CliEntry[] = [];
  let from = "-";
  for (;;) {
    const page = parseQuotedJson(
      await redisCli(port, [
        ...(db ? ["-n", String(db)] : []),
        "--quoted-json",
        "XRANGE",
        stream,
        from,
        "+",
        "COUNT",
        "20000",
      ]),
    ) as [string, string[]][];
    for (const [id, flat] of page) {
      const fields: [string, Uint8Array][] = [];
      for (let i = 0; i < flat.length; i += 2) {
        fields.push([dec.decode(unquote(flat[i])), unquote(flat[i + 1])]);
      }
      all.push({ id: dec.decode(unquote(id)), fields });
    }
    if (page.length < 20000) return all;
    from = `(${all[all.length - 1].id}`;
  }
}

/**
 * `XINFO GROUPS stream` as objects (name, pending, entries-read, ...);
 * asked again while the server is loading or not up.
 */
export async function groupsOf(port: number, stream: string): Promise<Record<string, unknown>[]> {
  for (let attempt = 0;; attempt++) {
    const text = await redisCli(port, ["--json", "XINFO", "GROUPS", stream]).catch((e) =>
      `error: ${e.message}`
    );
    if (text.startsWith("error") || text.startsWith("(error)") || text.includes("LOADING")) {
      if (/no such key/i.test(text)) return [];
      if (attempt > 500) throw new Error(text);
      await new Promise((r) => setTimeout(r, 20));
      continue;
    }
    const raw = JSON.parse(text) as unknown[];
    return raw.map((g) => {
      if (!Array.isArray(g)) return g as Record<string, unknown>;
      const o: Record<string, unknown> = {};
      for (let i = 0; i < g.length; i += 2) o[g[i]] = g[i + 1];
      return o;
    });
  }
}

/** Resolves once the group of `stream` read at least `n` entries (and has none pending, with `settled`). */
export async function waitForRead(
  port: number,
  stream: string,
  n: number,
  settled = false,
  ms = 60_000,
): Promise<Record<string, unknown>> {
  const until = Date.now() + ms;
  for (;;) {
    const [g] = await groupsOf(port, stream);
    if (g && Number(g["entries-read"]) >= n && (!settled || g.pending === 0)) return g;
    if (Date.now() > until) throw new Error(`the group of ${stream} is at ${JSON.stringify(g)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The RESP encoding of one command (for `redis-cli --pipe`). */
export function resp(args: (string | Uint8Array)[]): Uint8Array {
  const parts: Uint8Array[] = [enc.encode(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === "string" ? enc.encode(a) : a;
    parts.push(enc.encode(`$${b.length}\r\n`), b, enc.encode("\r\n"));
  }
  return concat(parts);
}

/** The bytes of `parts`, one after the other. */
export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Resolves once `stream` has at least `n` entries (as XLEN says; asked again while the server is down). */
export async function waitForLength(port: number, stream: string, n: number, ms = 60_000) {
  const until = Date.now() + ms;
  for (;;) {
    const text = await redisCli(port, ["XLEN", stream]).catch(() => "-1");
    const len = Number(text.trim());
    if (len >= n) return len;
    if (Date.now() > until) throw new Error(`${stream} has ${len} < ${n} entries in time`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Resolves once `stream` holds `n` distinct payloads (the first field's
 * value): a batch sent twice across a restart makes XLEN reach `n` before
 * the last messages are out.
 */
export async function waitForDistinct(port: number, stream: string, n: number, ms = 60_000) {
  const until = Date.now() + ms;
  await waitForLength(port, stream, n, ms);
  for (;;) {
    const entries = await xrange(port, stream).catch(() => []);
    const distinct = new Set(entries.map((e) => dec.decode(e.fields[0][1]))).size;
    if (distinct >= n) return distinct;
    if (Date.now() > until) {
      throw new Error(`${stream} has ${distinct} < ${n} distinct entries in time`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Resolves once the group of `stream` was handed its last entry and has
 * none pending (the stream's writer must have stopped).
 */
export async function waitForDrained(port: number, stream: string, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const [g] = await groupsOf(port, stream);
    const last = (await redisCli(port, ["--raw", "XREVRANGE", stream, "+", "-", "COUNT", "1"])
      .catch(() => "")).split("\n")[0];
    if (g && last !== "" && g["last-delivered-id"] === last && g.pending === 0) return;
    if (Date.now() > until) throw new Error(`the group of ${stream} is at ${JSON.stringify(g)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
