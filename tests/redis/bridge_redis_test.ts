/**
 * `mq bridge --to redis://...` and `--from redis://...` against a private
 * redis-server, checked with redis-cli: 100,000 messages each way (binary
 * and invalid UTF-8 payloads byte-exact), keys and headers both ways, a
 * round trip, kill -9 of the bridge and a rerun, a broker restart, and the
 * bad inputs (template, URL, an unreachable or refusing server).
 */
import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { toBase64 } from "../../cli/envelope.ts";
import { errorLine, mq, spawnMq } from "../cli/_mq.ts";
import {
  concat,
  groupsOf,
  redisCase,
  redisCli,
  resp,
  waitForDistinct,
  waitForDrained,
  waitForLength,
  waitForRead,
  xrange,
} from "./_redis.ts";

const enc = new TextEncoder(), dec = new TextDecoder();
const N = 100_000;

/** Message i's payload: mostly text, every 997th binary (NUL, CR, LF, invalid UTF-8). */
function payloadOf(i: number): Uint8Array {
  if (i % 997 === 3) return new Uint8Array([0xff, 0x00, 0x0a, 0x0d, i & 255, 0x80, 0xc3]);
  return enc.encode(`m-${i}`);
}

/** `--json-lines` input of messages `from` .. `to - 1` (keys on every 10th, headers on every 100th). */
function jsonLines(from: number, to: number): string {
  const lines: string[] = [];
  for (let i = from; i < to; i++) {
    const p = payloadOf(i);
    const e: Record<string, unknown> = i % 997 === 3
      ? { payload_base64: toBase64(p) }
      : { payload: dec.decode(p) };
    if (i % 10 === 0) e.key = `k-${i % 7}`;
    if (i % 100 === 0) e.headers = { trace: `t-${i}`, "two words": "a b", payload: "taken" };
    lines.push(JSON.stringify(e));
  }
  return lines.join("\n") + "\n";
}

const same = (a: Uint8Array, b: Uint8Array) =>
  a.length === b.length && a.every((x, i) => x === b[i]);

/** The entry fields as an object of text values, but the payload. */
function textFields(fields: [string, Uint8Array][]): Record<string, string> {
  const o: Record<string, string> = {};
  for (const [k, v] of fields) if (k !== "payload") o[k] = dec.decode(v);
  return o;
}

redisCase(
  "bridge --to redis: 100,000 messages as XADDs, payloads byte-exact, keys, ids and headers as fields",
  async (h, broker) => {
    eq((await mq(h, ["pub", "big", "--json-lines", "-q"], { stdin: jsonLines(0, N) })).code, 0);
    const r = await mq(h, ["bridge", "--to", broker.url, "-e"]);
    eq(r.code, 0, r.err);
    eq(r.err.split("\n").at(-2), `mq: bridge: forwarded ${N} messages from 1 topic(s)`);
    eq((await redisCli(broker.port, ["XLEN", "big"])).trim(), String(N));
    const entries = await xrange(broker.port, "big");
    eq(entries.length, N);
    const wrong: number[] = [];
    for (let i = 0; i < N; i++) {
      const f = entries[i].fields;
      if (f[0][0] !== "payload" || !same(f[0][1], payloadOf(i))) wrong.push(i);
      if (wrong.length > 5) break;
    }
    eq(wrong, []);
    // Key and id as fields; headers by name, a name taken by mq's fields in mq-headers.
    eq(textFields(entries[0].fields), {
      "mq-key": "k-0",
      "mq-id": "big:0-0",
      trace: "t-0",
      "two words": "a b",
      "mq-headers": '{"payload":"taken"}',
    });
    eq(textFields(entries[1].fields), { "mq-id": "big:0-1" });
    eq(textFields(entries[3].fields), { "mq-id": "big:0-3" });
    // Run again: the position held, nothing is added.
    const again = await mq(h, ["bridge", "--to", broker.url, "-e", "-q"]);
    eq([again.code, (await redisCli(broker.port, ["XLEN", "big"])).trim()], [0, String(N)]);
  },
);

redisCase(
  "bridge --to redis --target and ?maxlen: streams from the template, trimmed about as asked",
  async (h, broker) => {
    const lines = Array.from(
      { length: 3000 },
      (_, i) => JSON.stringify({ payload: `p-${i}`, key: i % 2 ? "odd" : "even" }),
    ).join("\n") + "\n";
    eq((await mq(h, ["pub", "orders", "--json-lines", "-q"], { stdin: lines })).code, 0);
    const r = await mq(h, [
      "bridge",
      "--to",
      `${broker.url}?maxlen=1000`,
      "--target",
      "mq:{topic}:{key}",
      "-e",
      "-q",
    ]);
    eq(r.code, 0, r.err);
    for (const key of ["odd", "even"]) {
      const len = Number((await redisCli(broker.port, ["XLEN", `mq:orders:${key}`])).trim());
      // MAXLEN ~ trims whole macro nodes: at least 1000 are kept, far fewer than 1500.
      ok(len >= 1000 && len < 1500, `mq:orders:${key} holds ${len}`);
      const last = await redisCli(broker.port, [
        "--raw",
        "XREVRANGE",
        `mq:orders:${key}`,
        "+",
        "-",
        "COUNT",
        "1",
      ]);
      eq(last.split("\n")[2], key === "odd" ? "p-2999" : "p-2998");
    }
  },
);

redisCase(
  "bridge --from redis: 100,000 entries written by redis-cli, byte-exact; fields as headers; XACK'd once",
  async (h, broker) => {
    // Entries as other programs write them: a payload field and others, or one field of any name.
    const cmds: Uint8Array[] = [];
    for (let i = 0; i < N; i++) {
      const fields: (string | Uint8Array)[] = i % 3 === 0
        ? ["payload", payloadOf(i), "level", `l-${i % 5}`]
        : i % 3 === 1
        ? ["body", payloadOf(i)]
        : ["payload", payloadOf(i), "mq-key", `k-${i % 4}`];
      cmds.push(resp(["XADD", "ext", "*", ...fields]));
    }
    await redisCli(broker.port, ["--pipe"], concat(cmds));
    eq((await redisCli(broker.port, ["XLEN", "ext"])).trim(), String(N));
    const r = await mq(h, [
      "bridge",
      "--from",
      broker.url,
      "--subjects",
      "ext",
      "--into",
      "ext-copy",
      "-g",
      "copier",
      "-e",
    ]);
    eq(r.code, 0, r.err);
    eq(r.err.split("\n").at(-2), `mq: bridge: stored ${N} messages in "ext-copy"`);
    const out = await mq(h, ["sub", "ext-copy", "-e", "--format", "json"]);
    const got = out.out.trim().split("\n").map((l) => JSON.parse(l));
    eq(got.length, N);
    const ids = (await xrange(broker.port, "ext")).map((e) => e.id);
    const wrong: number[] = [];
    for (let i = 0; i < N; i++) {
      const m = got[i];
      const bytes = m.payload_base64 !== undefined
        ? Uint8Array.from(atob(m.payload_base64), (c) => c.charCodeAt(0))
        : enc.encode(m.payload);
      const headers = i % 3 === 0
        ? { level: `l-${i % 5}`, "redis-stream": "ext" }
        : { "redis-stream": "ext" };
      const key = i % 3 === 2 ? `k-${i % 4}` : null;
      if (
        !same(bytes, payloadOf(i)) || JSON.stringify(m.headers) !== JSON.stringify(headers) ||
        (m.key ?? null) !== key || m.id !== `redis:ext:${ids[i]}`
      ) wrong.push(i);
      if (wrong.length > 5) break;
    }
    eq(wrong, []);
    const [g] = await groupsOf(broker.port, "ext");
    eq([g.name, g.pending, g["entries-read"], g.lag], ["copier", 0, N, 0]);
    // Run again: nothing new, nothing stored twice.
    const again = await mq(h, [
      "bridge",
      "--from",
      broker.url,
      "--subjects",
      "ext",
      "--into",
      "ext-copy",
      "-g",
      "copier",
      "-e",
      "-q",
    ]);
    eq(again.code, 0, again.err);
    eq(
      (await mq(h, ["sub", "ext-copy", "-e", "--format", "{offset}"])).out.trim().split("\n")
        .length,
      N,
    );
  },
);

redisCase(
  "bridge redis round trip: payload, key and headers come back byte-exact (origin added)",
  async (h, broker) => {
    const lines = [
      {
        payload_base64: toBase64(new Uint8Array([0, 255, 10, 13, 128])),
        key: "k 1",
        headers: { a: "1", "b c": "x\ny" },
      },
      { payload: "two", headers: { payload: "p", "mq-key": "q", "mq-id": "r", "mq-headers": "s" } },
      { payload: "", key: "ünï" },
    ].map((e) => JSON.stringify(e)).join("\n") + "\n";
    eq((await mq(h, ["pub", "rt", "--json-lines", "-q"], { stdin: lines })).code, 0);
    eq((await mq(h, ["bridge", "--to", broker.url, "-e", "-q"])).code, 0);
    const back = await mq(h, [
      "bridge",
      "--from",
      broker.url,
      "--subjects",
      "rt",
      "--into",
      "rt-back",
      "-e",
      "-q",
    ]);
    eq(back.code, 0, back.err);
    const strip = (l: string) => {
      const m = JSON.parse(l);
      return {
        payload: m.payload,
        payload_base64: m.payload_base64,
        key: m.key,
        headers: m.headers,
      };
    };
    const a = (await mq(h, ["sub", "rt", "-e", "--format", "json"])).out.trim().split("\n").map(
      strip,
    );
    const b = (await mq(h, ["sub", "rt-back", "-e", "--format", "json"])).out.trim().split("\n")
      .map(strip);
    eq(
      b,
      a.map((m) => ({ ...m, headers: { ...(m.headers ?? {}), "redis-stream": "rt" } })),
    );
  },
);

redisCase(
  "bridge --to redis: kill -9 mid-stream, then a rerun: every message is there (at least once)",
  async (h, broker) => {
    const n = 30_000;
    const lines = Array.from({ length: n }, (_, i) => `m-${i}`).join("\n") + "\n";
    eq((await mq(h, ["pub", "k9", "-q"], { stdin: lines })).code, 0);
    // Leases of 5 s, not 30: the rerun first waits for the killed run's to expire.
    const child = spawnMq(h, ["bridge", "--to", broker.url, "-e", "-q", "--visibility", "5s"]);
    await waitForLength(broker.port, "k9", 5000);
    child.kill("SIGKILL");
    await child.output();
    const before = Number((await redisCli(broker.port, ["XLEN", "k9"])).trim());
    ok(before < n, `the bridge had finished (${before}) before it was killed`);
    const r = await mq(h, ["bridge", "--to", broker.url, "-e", "-q"]);
    eq(r.code, 0, r.err);
    const entries = await xrange(broker.port, "k9");
    const seen = new Set(entries.map((e) => dec.decode(e.fields[0][1])));
    eq(seen.size, n);
    // Resent after the kill: the tail of the last unconfirmed batch, no more than a batch.
    const resent = entries.length - n;
    ok(resent >= 0 && resent <= 8192, `resent ${resent}`);
    const ids = new Set(entries.map((e) => dec.decode(e.fields[1][1])));
    eq(ids.size, n); // mq-id tells the copies apart
  },
);

redisCase(
  "bridge --from redis: kill -9 mid-stream, then a rerun: every entry stored exactly once",
  async (h, broker) => {
    // Enough that the bridge (about 200,000 entries a second) is still reading
    // when the poll sees its first 5,000.
    const n = 100_000;
    const cmds = Array.from(
      { length: n },
      (_, i) => resp(["XADD", "src", "*", "payload", `m-${i}`]),
    );
    await redisCli(broker.port, ["--pipe"], concat(cmds));
    const args = ["bridge", "--from", broker.url, "--subjects", "src", "--into", "dst", "-e", "-q"];
    const child = spawnMq(h, args);
    // Kill it once some entries were read by the group (and some of those stored).
    await waitForRead(broker.port, "src", 5000);
    child.kill("SIGKILL");
    await child.output();
    const [mid] = await groupsOf(broker.port, "src");
    ok(Number(mid["entries-read"]) < n, `it had read everything (${mid["entries-read"]})`);
    const r = await mq(h, args);
    eq(r.code, 0, r.err);
    const got = (await mq(h, ["sub", "dst", "-e"])).out.trim().split("\n");
    eq(got.length, n);
    eq(new Set(got).size, n);
    const [g] = await groupsOf(broker.port, "src");
    eq([g.pending, g["entries-read"]], [0, n]);
  },
);

redisCase(
  "bridge redis: a redis-server restart mid-stream, both ways: one line per change, nothing lost",
  async (h, broker) => {
    const n = 30_000;
    const lines = Array.from({ length: n }, (_, i) => `m-${i}`).join("\n") + "\n";
    eq((await mq(h, ["pub", "rs", "-q"], { stdin: lines })).code, 0);
    // Out: the bridge follows; the server goes away mid-stream and comes back.
    const out = spawnMq(h, ["bridge", "--to", broker.url]);
    await waitForLength(broker.port, "rs", 2000);
    await broker.stop({ keepStore: true });
    await new Promise((r) => setTimeout(r, 1000));
    await broker.restart();
    await waitForDistinct(broker.port, "rs", n);
    // In, from the same stream, with a restart too.
    const inArgs = ["bridge", "--from", broker.url, "--subjects", "rs", "--into", "rs-in"];
    const into = spawnMq(h, inArgs);
    await waitForRead(broker.port, "rs", 2000);
    await broker.stop({ keepStore: true });
    await new Promise((r) => setTimeout(r, 1000));
    await broker.restart();
    await waitForDrained(broker.port, "rs");
    out.kill("SIGTERM");
    into.kill("SIGTERM");
    const [o, i] = [await out.output(), await into.output()];
    const outLines = dec.decode(o.stderr).trim().split("\n");
    const inLines = dec.decode(i.stderr).trim().split("\n");
    const where = `127.0.0.1:${broker.port}`;
    const states = (lines: string[]) =>
      lines.filter((l) => /disconnected|reconnected|failed|again/.test(l)).map((l) =>
        l.replace(/ \(.*\)/, " (...)")
      );
    eq(states(outLines).slice(0, 1), [
      `mq: bridge: disconnected from Redis at ${where} (...); reconnecting`,
    ]);
    ok(
      states(outLines).includes(`mq: bridge: reconnected to Redis at ${where}`),
      o.stderr.length ? outLines.join("\n") : "",
    );
    eq(states(inLines).slice(0, 1), [
      `mq: bridge: disconnected from Redis at ${where} (...); reconnecting`,
    ]);
    ok(
      states(inLines).includes(`mq: bridge: reconnected to Redis at ${where}`),
      inLines.join("\n"),
    );
    // Out: every message there (a resent batch at most twice); in: each exactly once.
    const entries = await xrange(broker.port, "rs");
    eq(new Set(entries.map((e) => dec.decode(e.fields[0][1]))).size, n);
    const got = (await mq(h, ["sub", "rs-in", "-e", "--format", "{id}"])).out.trim().split("\n");
    eq([got.length, new Set(got).size], [entries.length, entries.length]);
  },
);

redisCase(
  "bridge redis: bad template, bad URL, unknown option, unreachable, a wrong password, a key of another type",
  async (h, broker) => {
    eq((await mq(h, ["pub", "nokey", "-q"], { stdin: "x\n" })).code, 0);
    const cases: [string[], number, string][] = [
      [
        ["bridge", "--to", broker.url, "--target", "{key}", "-e"],
        2,
        'mq: error: --target "{key}": message nokey/0/0 has no key',
      ],
      [
        ["bridge", "--to", broker.url, "--target", "a}", "-e"],
        2,
        'mq: error: --target "a}": unbalanced "}" at character 2',
      ],
      [
        ["bridge", "--to", `${broker.url}?maxlen=0`, "-e"],
        2,
        'mq: error: redis: maxlen must be a whole number of at least 1, not "0"',
      ],
      [
        ["bridge", "--to", `${broker.url}?nope=1`, "-e"],
        2,
        'mq: error: unknown redis: URL option "nope" (known: maxlen, consumer, claim_idle, timeout)',
      ],
      [
        ["bridge", "--to", "redis://127.0.0.1:99999", "-e"],
        2,
        'mq: error: invalid Redis URL "redis://127.0.0.1:99999": expected redis://host:port[/db]',
      ],
      [
        ["bridge", "--to", "redis://127.0.0.1:1", "-e"],
        1,
        "mq: error: cannot connect to Redis at 127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1",
      ],
      [
        [
          "bridge",
          "--from",
          `redis://127.0.0.1:${broker.port}?maxlen=5`,
          "--subjects",
          "s",
          "--into",
          "t",
          "-e",
        ],
        2,
        "mq: error: redis: maxlen applies to bridge --to",
      ],
    ];
    for (const [args, code, line] of cases) {
      const r = await mq(h, [...args, "-q"]);
      eq([r.code, errorLine(r)], [code, line], args.join(" "));
    }
    // Nothing went out for the message the template could not name.
    eq((await redisCli(broker.port, ["EXISTS", "nokey"])).trim(), "0");
    // Coming in: unreachable, and a key that is not a stream (one line, exit 1 each).
    const into = (url: string, key: string) =>
      mq(h, ["bridge", "--from", url, "--subjects", key, "--into", "t", "-e", "-q"]);
    const refused = await into("redis://127.0.0.1:1", "s");
    eq([refused.code, errorLine(refused)], [
      1,
      "mq: error: cannot connect to Redis at 127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1",
    ]);
    await redisCli(broker.port, ["SET", "plain", "x"]);
    const notStream = await into(broker.url, "plain");
    eq(notStream.code, 1, notStream.err);
    ok(
      /^mq: error: creating group "bridge" of plain: the key holds another type than a stream$/
        .test(errorLine(notStream)),
      notStream.err,
    );
    // A key that holds a list, not a stream: one line, exit 1 (no retry mends it).
    await redisCli(broker.port, ["RPUSH", "nokey", "x"]);
    const wrongType = await mq(h, ["bridge", "--to", broker.url, "-e", "-q"]);
    eq([wrongType.code, errorLine(wrongType)], [
      1,
      'mq: error: XADD to stream "nokey": the key holds another type than a stream',
    ]);
  },
);

redisCase(
  "bridge redis: a wrong password is one line, exit 1; the right one works",
  async (h, broker) => {
    eq((await mq(h, ["pub", "sec", "-q"], { stdin: "x\n" })).code, 0);
    const wrong = await mq(h, [
      "bridge",
      "--to",
      `redis://:nope@127.0.0.1:${broker.port}`,
      "-e",
      "-q",
    ]);
    eq(wrong.code, 1);
    eq(
      errorLine(wrong),
      `mq: error: cannot connect to Redis at 127.0.0.1:${broker.port}: authentication failed (WRONGPASS invalid username-password pair or user is disabled.)`,
    );
    // Coming in, too (mq's own connection, not the --to side's).
    const wrongIn = await mq(h, [
      "bridge",
      "--from",
      `redis://:nope@127.0.0.1:${broker.port}`,
      "--subjects",
      "s",
      "--into",
      "t",
      "-e",
      "-q",
    ]);
    eq([wrongIn.code, errorLine(wrongIn)], [
      1,
      `mq: error: cannot connect to Redis at 127.0.0.1:${broker.port}: authentication failed (WRONGPASS invalid username-password pair or user is disabled.)`,
    ]);
    const right = await mq(h, ["bridge", "--to", `redis://:s3cret@127.0.0.1:${broker.port}`, "-e"]);
    eq(right.code, 0, right.err);
    ok(right.err.includes("to redis://:***@127.0.0.1:"), right.err);
    eq(
      (await redisCli(broker.port, ["-a", "s3cret", "--no-auth-warning", "XLEN", "sec"])).trim(),
      "1",
    );
  },
  ["--requirepass", "s3cret"],
);

redisCase(
  "bridge --from redis: entries delivered again (to a second group) are dropped by the topic's dedup window",
  async (h, broker) => {
    const n = 5000;
    const cmds = Array.from(
      { length: n },
      (_, i) => resp(["XADD", "again", "*", "payload", `m-${i}`]),
    );
    await redisCli(broker.port, ["--pipe"], concat(cmds));
    const args = ["bridge", "--from", broker.url, "--subjects", "again", "--into", "ag", "-e"];
    const first = await mq(h, [...args, "--group", "one", "-q"]);
    eq(first.code, 0, first.err);
    // A second group gets every entry again, with the same ids: all duplicates.
    const second = await mq(h, [...args, "--group", "two"]);
    eq(second.code, 0, second.err);
    ok(/5000 entries delivered again were stored already/.test(second.err), second.err);
    const got = (await mq(h, ["sub", "ag", "-e"])).out.trim().split("\n");
    eq(got, Array.from({ length: n }, (_, i) => `m-${i}`));
  },
);

redisCase(
  "bridge --to redis: multi-byte keys and headers, a payload bigger than one write, a database by number",
  async (h, broker) => {
    const big = new Uint8Array(1_000_003).map((_, i) => (i * 31) & 255);
    const lines = [
      { payload: "é", key: "κλειδί-🔑", headers: { "ünï": "värde ✓", e: "" } },
      { payload_base64: toBase64(big), key: "k" },
      { payload: "", headers: { x: "y".repeat(5000) } },
    ].map((e) => JSON.stringify(e)).join("\n") + "\n";
    eq((await mq(h, ["pub", "mb", "--json-lines", "-q"], { stdin: lines })).code, 0);
    const r = await mq(h, ["bridge", "--to", `${broker.url}/3`, "-e", "-q"]);
    eq(r.code, 0, r.err);
    eq((await redisCli(broker.port, ["XLEN", "mb"])).trim(), "0");
    const entries = await xrange(broker.port, "mb", 3);
    eq(entries.length, 3);
    eq(dec.decode(entries[0].fields[0][1]), "é");
    eq(textFields(entries[0].fields), {
      "mq-key": "κλειδί-🔑",
      "mq-id": "mb:0-0",
      "ünï": "värde ✓",
      e: "",
    });
    ok(same(entries[1].fields[0][1], big), "the 1 MB payload is byte-exact");
    eq(textFields(entries[1].fields), { "mq-key": "k", "mq-id": "mb:0-1" });
    eq(entries[2].fields[0][1].length, 0);
    eq(textFields(entries[2].fields), { "mq-id": "mb:0-2", x: "y".repeat(5000) });
  },
);
