/** End to end: reading the way kcat and nats users expect (`mq sub` options, the envelope). */
import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { cliTest, errorLine, mq, spawnMq } from "./_mq.ts";

const dec = new TextDecoder();

cliTest("sub --last, --until, --partition, several topics and patterns", async (h) => {
  eq((await mq(h, ["topics", "create", "p", "--partitions", "3", "-q"])).code, 0);
  // One message at a time, so that timestamps rise; keys spread them over the partitions.
  for (let i = 0; i < 6; i++) eq((await mq(h, ["pub", "p", "-q", "-k", `k${i}`, `m${i}`])).code, 0);
  const last = await mq(h, ["sub", "p", "--last", "3", "-e", "--format", "{payload}"]);
  eq([last.code, last.out], [0, "m3\nm4\nm5\n"]);
  eq((await mq(h, ["sub", "p", "--last", "0", "-e"])).out, "");
  const byPartition = await mq(h, ["sub", "p", "-e", "--format", "{partition}\\t{offset}\\t{key}"]);
  const rows = byPartition.out.trimEnd().split("\n").map((l) => l.split("\t"));
  eq(rows.length, 6);
  const p0 = rows.filter((r) => r[0] === "0").map((r) => r[2]);
  eq(
    (await mq(h, ["sub", "p", "--partition", "0", "-e", "--format", "{key}"])).out,
    p0.map((k) => k + "\n").join(""),
  );
  const two = await mq(h, [
    "sub",
    "p",
    "--partition",
    "0",
    "--partition",
    "2",
    "-e",
    "--format",
    "{partition}",
  ]);
  eq(
    two.out.trimEnd().split("\n").sort(),
    rows.filter((r) => r[0] !== "1").map((r) => r[0]).sort(),
  );
  // --until: before an offset of each partition, before a time; a window with --from.
  const first = await mq(h, ["sub", "p", "--until", "1", "-e", "--format", "{offset}"]);
  eq(first.out.trimEnd().split("\n"), rows.filter((r) => r[1] === "0").map(() => "0"));
  const envs = (await mq(h, ["sub", "p", "-e", "--format", "json"])).out.trimEnd().split("\n")
    .map((l) => JSON.parse(l)).sort((a, b) => Date.parse(a.timestamp) - Date.parse(b.timestamp));
  const cut = envs[3].timestamp;
  const before = await mq(h, ["sub", "p", "--until", cut, "-e", "--format", "{payload}"]);
  eq(before.out.trimEnd().split("\n").sort(), envs.slice(0, 3).map((e) => e.payload).sort());
  const window = await mq(h, ["sub", "p", "--from", envs[1].timestamp, "--until", cut, "-e"]);
  eq(window.out.trimEnd().split("\n").sort(), envs.slice(1, 3).map((e) => e.payload).sort());
  // Following with --until: it ends by itself (exit 0) at the point, here an hour ago.
  const past = await mq(h, ["sub", "p", "--until", "-1h"]);
  eq([past.code, past.out], [0, ""]);
  // Several topics and patterns; each message says its topic.
  for (const t of ["orders.eu", "orders.us", "orders.eu.late", "logs", "logs.app.err"]) {
    eq((await mq(h, ["pub", t, "-q", `from ${t}`])).code, 0);
  }
  const many = await mq(h, ["sub", "orders.*", "logs.#", "p", "-e", "--format", "{topic}"]);
  eq(many.out.trimEnd().split("\n").filter((t) => t !== "p").sort(), [
    "logs",
    "logs.app.err",
    "orders.eu",
    "orders.us",
  ]);
  eq(many.out.split("\n").filter((t) => t === "p").length, 6);
  const json = await mq(h, ["sub", "orders.*", "-e", "--format", "json"]);
  eq(json.out.trimEnd().split("\n").map((l) => JSON.parse(l).topic).sort(), [
    "orders.eu",
    "orders.us",
  ]);
  const badPattern = await mq(h, ["sub", "orders/*", "-e"]);
  eq(badPattern.code, 2);
  ok(errorLine(badPattern).startsWith('mq: error: topic pattern "orders/*" is not valid'));
});

cliTest("sub follows a pattern and picks up a topic made later; --idle; --all", async (h) => {
  eq((await mq(h, ["pub", "jobs.a", "-q", "a1"])).code, 0);
  const follower = spawnMq(h, ["sub", "jobs.*", "--idle", "3s", "--format", "{topic} {payload}"]);
  // The follower lists topics again every second: a new one is picked up from its beginning.
  await new Promise((r) => setTimeout(r, 1500));
  eq((await mq(h, ["pub", "jobs.b", "-q", "b1"])).code, 0);
  const started = performance.now();
  const out = await follower.output();
  eq([out.code, dec.decode(out.stdout)], [0, "jobs.a a1\njobs.b b1\n"]);
  ok(performance.now() - started >= 2000, "--idle waited for quiet, not a total deadline");
  // A plain read skips cancelled and expired messages; --all shows them; delays keep their place.
  eq((await mq(h, ["pub", "d", "-q", "--delay", "1h", "--id", "c1", "cancelled"])).code, 0);
  eq((await mq(h, ["pub", "d", "-q", "--delay", "1h", "--id", "d1", "later"])).code, 0);
  eq((await mq(h, ["pub", "d", "-q", "--ttl", "1ms", "gone"])).code, 0);
  eq((await mq(h, ["pub", "d", "-q", "now"])).code, 0);
  eq((await mq(h, ["cancel", "d", "c1"])).code, 0);
  eq((await mq(h, ["sub", "d", "-e"])).out, "later\nnow\n");
  eq((await mq(h, ["sub", "d", "-e", "--all"])).out, "cancelled\nlater\ngone\nnow\n");
  const env = JSON.parse((await mq(h, ["sub", "d", "-e", "--format", "json", "-n", "1"])).out);
  eq(env.payload, "later");
  const due = Date.parse(env.deliver_at) - Date.parse(env.timestamp);
  ok(due > 3_590_000 && due <= 3_600_000, `deliver_at is an hour after the timestamp: ${due}`);
});

cliTest(
  "sub filters: --key, --header, --grep, --invert; refused with --group; bad input",
  async (h) => {
    const input = "a info boot ok\nb error disk error\na error net error\nc debug tick\n";
    const lines = input.trimEnd().split("\n").map((l) => l.split(" "));
    for (const [key, level, ...text] of lines) {
      eq(
        (await mq(h, [
          "pub",
          "f",
          "-q",
          "-k",
          key,
          "-H",
          `level=${level}`,
          "-H",
          "app=x",
          text.join(" "),
        ])).code,
        0,
      );
    }
    const sub = (...args: string[]) => mq(h, ["sub", "f", "-e", ...args]);
    eq((await sub("--key", "a")).out, "boot ok\nnet error\n");
    eq((await sub("-H", "level=error")).out, "disk error\nnet error\n");
    eq((await sub("-H", "level=error", "-H", "app=x", "-k", "b")).out, "disk error\n");
    eq((await sub("-H", "level=error", "-H", "app=y")).out, "");
    eq((await sub("--grep", "^(disk|boot)")).out, "boot ok\ndisk error\n");
    eq((await sub("--grep", "error", "--invert")).out, "boot ok\ntick\n");
    eq((await sub("--header", "level=debug", "--invert", "--format", "{key}")).out, "a\nb\na\n");
    eq((await sub("--grep", "error", "--last", "3")).out, "disk error\nnet error\n");
    // Refused with --group (exit 2), nothing read or moved.
    for (
      const flag of [["--key", "a"], ["--grep", "x"], ["--last", "1"], ["--partition", "0"], [
        "--idle",
        "1s",
      ]]
    ) {
      const r = await mq(h, ["sub", "f", "--group", "g", "-e", ...flag]);
      eq([r.code, errorLine(r)], [
        2,
        `mq: error: ${flag[0]} cannot be used with --group (they are for reads without a group)`,
      ]);
    }
    const several = await mq(h, ["sub", "f", "f2", "--group", "g", "-e"]);
    eq(several.code, 2);
    const groups = await mq(h, ["groups", "f", "--json"]);
    eq(JSON.parse(groups.out), [], "no group was made");
    const bad: [string[], string][] = [
      [
        ["--grep", "("],
        'mq: error: --grep "(" is not a valid regular expression: /(/: Unterminated group',
      ],
      [
        ["--format", "RAW"],
        `mq: error: unknown --format "RAW": use raw, json, or a template with at least one {field}, e.g. '{offset} {payload}'`,
      ],
      [
        ["--format", "{nosuch}"],
        "mq: error: unknown field {nosuch} in --format: use raw, json, or a template of {topic} {partition} {offset} {id} {key} {timestamp} {attempt} {payload} {payload_base64} {payload_hex} {headers} {receipt} {header.NAME}",
      ],
      [
        ["--until", "soon"],
        'mq: error: invalid --until "soon": use an offset, an ISO time, -DUR or end',
      ],
      [["--last", "2", "--from", "end"], "mq: error: --last and --from cannot be used together"],
      [["--partition", "1"], 'mq: error: partition 1 does not exist: topic "f" has 1 (0 to 0)'],
      [
        ["--last", "-10"],
        "mq: error: option '--last <n>' argument '-10' is invalid. --last must be a whole number",
      ],
      [["-H", "novalue"], 'mq: error: header "novalue" must be NAME=VALUE'],
      [
        ["--from", "-10"],
        "mq: error: --from -10 is not a time span (use e.g. -10s or -10m); for the last 10 messages use --last 10",
      ],
    ];
    for (const [args, line] of bad) {
      const r = await sub(...args);
      eq([r.code, r.out, errorLine(r)], [2, "", line], args.join(" "));
    }
  },
);

cliTest(
  "the envelope: payload, payload_json, payload_base64; delays survive a copy; templates",
  async (h) => {
    const json = '{"level":"warn","n":[1,2]}';
    const loose = '{ "level": "warn" }'; // JSON, but not as JSON.stringify prints it: kept as text
    const bin = Uint8Array.of(0xff, 0x00, 0x41);
    eq((await mq(h, ["pub", "e", "-q"], { stdin: `${json}\n${loose}\nplain\n[1,"x"]\n` })).code, 0);
    eq((await mq(h, ["pub", "e", "-q", "--raw"], { stdin: bin })).code, 0);
    eq(
      (await mq(h, [
        "pub",
        "e",
        "-q",
        "--delay",
        "1h",
        "--ttl",
        "2h",
        "-H",
        "h=1",
        "--id",
        "late",
        "x",
      ])).code,
      0,
    );
    const out = await mq(h, ["sub", "e", "-e", "--all", "--format", "json"]);
    const envs = out.out.trimEnd().split("\n").map((l) => JSON.parse(l));
    const payloads = envs.map((e) =>
      Object.keys(e).filter((k) => k.startsWith("payload")).map((k) => [k, e[k]])
    );
    eq(payloads, [
      [["payload_json", { level: "warn", n: [1, 2] }]],
      [["payload", loose]],
      [["payload", "plain"]],
      [["payload_json", [1, "x"]]],
      [["payload_base64", "/wBB"]],
      [["payload", "x"]],
    ]);
    ok(out.out.split("\n")[0].endsWith(`"payload_json":${json}}`), "printed as it is stored");
    eq(Date.parse(envs[5].expires_at) - Date.parse(envs[5].deliver_at), 3_600_000);
    eq([envs[0].deliver_at, envs[0].expires_at], [undefined, undefined]);
    // A faithful copy: the same bytes, and the delay and TTL kept (not made immediate).
    const copy = await mq(h, ["pub", "c", "--json-lines", "-q"], { stdin: out.out });
    eq(copy.code, 0, copy.err);
    const raw = async (t: string) => (await mq(h, ["sub", t, "-e", "--all", "-0"])).stdout;
    eq(await raw("c"), await raw("e"));
    const copied = (await mq(h, ["sub", "c", "-e", "--all", "--format", "json"])).out.trimEnd()
      .split("\n").map((l) => JSON.parse(l));
    eq([copied[5].deliver_at, copied[5].expires_at, copied[5].id, copied[5].headers], [
      envs[5].deliver_at,
      envs[5].expires_at,
      "late",
      { h: "1" },
    ]);
    const peeked = (await mq(h, ["peek", "c", "-n", "10", "--format", "{offset}"])).out;
    eq(peeked, "0\n1\n2\n3\n4\n", "the copy of the delayed one is still delayed");
    // --json-lines: exactly one payload field, of the right type; bad times refused.
    const bad: [string, string][] = [
      [
        '{"payload":"a","payload_base64":"YQ=="}',
        "expected one of payload, payload_json or payload_base64, not payload and payload_base64",
      ],
      ['{"payload_json":"text"}', "payload_json must be a JSON object or array"],
      ['{"payload":"a","deliver_at":"tomorrow"}', "deliver_at must be an ISO 8601 time"],
    ];
    for (const [line, message] of bad) {
      const r = await mq(h, ["pub", "c2", "--json-lines"], { stdin: line + "\n" });
      eq([r.code, errorLine(r)], [2, `mq: error: line 1: ${message}; published 0 before it`]);
    }
    // Templates: {headers}, {payload_base64}, {payload_hex}, \t and \n, {id} empty without an id.
    const t = await mq(h, [
      "sub",
      "e",
      "-e",
      "--all",
      "--from",
      "4",
      "--format",
      "[{id}]\\t{payload_hex}\\t{payload_base64}\\n{headers}",
    ]);
    eq(t.out, '[]\tff0041\t/wBB\n{}\n[late]\t78\teA==\n{"h":"1"}\n');
    // peek --json and context show --json.
    const peek = await mq(h, ["peek", "e", "-n", "2", "--json"]);
    eq(JSON.parse(peek.out).map((e: { offset: number }) => e.offset), [0, 1]);
    const show = JSON.parse((await mq(h, ["context", "show", "--json"])).out);
    eq(Object.keys(show), ["url", "source", "context"]);
    eq(show.context, null);
  },
);
