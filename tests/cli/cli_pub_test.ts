/** `mq pub` and `mq sub` details: bad input mid-stream, size limits, arguments, copying. */
import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { cliTest, errorLine, mq, spawnMq } from "./_mq.ts";

const enc = new TextEncoder(), dec = new TextDecoder();

/** Waits for a child with a deadline; kills it and fails when it is not done in time. */
async function exitWithin(child: Deno.ChildProcess, ms: number, what: string) {
  const timer = setTimeout(() => child.kill("SIGKILL"), ms);
  const out = await child.output();
  clearTimeout(timer);
  ok(out.signal === null, `${what}: still running after ${ms}ms`);
  return {
    code: out.code,
    stdout: out.stdout,
    out: dec.decode(out.stdout),
    err: dec.decode(out.stderr),
  };
}

cliTest("a bad line stops pub at once, while stdin stays open (tail -f | mq pub)", async (h) => {
  const child = spawnMq(h, ["pub", "j", "--json-lines"], "piped");
  const w = child.stdin.getWriter();
  await w.write(enc.encode('{"payload":"a"}\nnot json\n'));
  // stdin is left open: the error must not wait for more input
  const r = await exitWithin(child, 15_000, "pub with a bad line");
  await w.close().catch(() => {});
  eq(r.code, 2, r.err);
  ok(/^mq: error: line 2: not valid JSON: .*; published 1 before it$/.test(r.err.trim()), r.err);
  eq((await mq(h, ["sub", "j", "-e"])).out, "a\n");
});

cliTest(
  "an oversize line is refused as soon as it passes the limit, never buffered whole",
  async (h) => {
    eq((await mq(h, ["topics", "create", "small", "--max-message-bytes", "1000"])).code, 0);
    const child = spawnMq(h, ["pub", "small"], "piped");
    const w = child.stdin.getWriter();
    await w.write(enc.encode("fine\n" + "x".repeat(5000)));
    // no newline and stdin open: the line is already too long
    const r = await exitWithin(child, 15_000, "pub of an oversize line");
    await w.close().catch(() => {});
    eq(r.code, 2, r.err);
    eq(
      errorLine(r),
      'mq: error: line 2: message is over 1000 bytes; topic "small" allows at most 1000 (--max-message-bytes); published 1 before it',
    );
    // --skip-invalid drops it (and the rest of that line) and goes on
    const s = await mq(h, ["pub", "small", "--skip-invalid", "--json"], {
      stdin: `a\n${"y".repeat(3000)}\nb\n`,
    });
    eq(s.code, 0, s.err);
    eq([JSON.parse(s.out).published, JSON.parse(s.out).skipped], [2, 1]);
    ok(
      s.err.includes(
        'mq: warning: line 2: message is 3000 bytes; topic "small" allows at most 1000 (--max-message-bytes) (skipped)',
      ),
      s.err,
    );
    eq((await mq(h, ["sub", "small", "-e"])).out, "fine\na\nb\n");
  },
);

cliTest(
  "the default limit is 1 MiB: exactly 1 MiB is a message, one byte more is refused",
  async (h) => {
    const mib = 1024 * 1024;
    const r = await mq(h, ["pub", "big", "--raw"], { stdin: new Uint8Array(mib).fill(65) });
    eq(r.code, 0, r.err);
    const over = await mq(h, ["pub", "big", "--raw"], { stdin: new Uint8Array(mib + 1).fill(66) });
    eq(over.code, 2);
    eq(
      errorLine(over),
      `mq: error: stdin is over ${mib} bytes; topic "big" allows at most ${mib} (--max-message-bytes)`,
    );
    const lines = await mq(h, ["pub", "big"], { stdin: "a".repeat(mib + 1) + "\n" });
    eq(
      [lines.code, /line 1: message is (over )?1048577 bytes; /.test(lines.err)],
      [2, true],
      lines.err,
    );
    const got = await mq(h, ["sub", "big", "-e", "--format", "json"]);
    const sizes = got.out.trim().split("\n").map((l) => JSON.parse(l).payload.length);
    eq(sizes, [mib]);
  },
  { backends: ["file"] }, // kv and nats store less: their own limits, tested with them
); // kv stores at most ~59 KiB (tests/cli/cli_kv_backend_test.ts)

cliTest("--raw keeps every byte: NUL, CR, LF, invalid UTF-8", async (h) => {
  const bytes = Uint8Array.from([0, 10, 13, 10, 0xff, 0xfe, 65, 0, 10]);
  eq((await mq(h, ["pub", "blob", "--raw", "-q"], { stdin: bytes })).code, 0);
  const got = await mq(h, ["sub", "blob", "-e", "-0"]);
  eq([...got.stdout], [...bytes, 0]);
});

cliTest("payload arguments go through -K, --json-lines and --skip-empty as lines do", async (h) => {
  eq((await mq(h, ["pub", "k", "-K", ":", "-q", "k1:hello", "k2:a:b"])).code, 0);
  eq((await mq(h, ["sub", "k", "-e", "--format", "{key}={payload}"])).out, "k1=hello\nk2=a:b\n");
  const bad = await mq(h, ["pub", "k", "-K", ":", "nokey"]);
  eq([bad.code, errorLine(bad)], [
    2,
    'mq: error: argument 1: no key delimiter ":" in the line; published 0 before it',
  ]);
  eq(
    (await mq(h, ["pub", "j", "--json-lines", "-q", '{"payload":"p","key":"kk","id":"i1"}']))
      .code,
    0,
  );
  const env = JSON.parse((await mq(h, ["sub", "j", "-e", "--format", "json"])).out);
  eq([env.payload, env.key, env.id], ["p", "kk", "i1"]);
  eq(
    (await mq(h, ["pub", "e", "--skip-empty", "--json", "", "x", ""])).out.includes(
      '"published":1',
    ),
    true,
  );
  for (const flag of ["-0", "--raw"]) {
    const r = await mq(h, ["pub", "k", flag, "x"]);
    eq([r.code, errorLine(r)], [
      2,
      `mq: error: ${flag} reads stdin; give no payload arguments with it`,
    ]);
  }
});

cliTest(
  "copying topics through --json-lines keeps every message; only real ids dedup",
  async (h) => {
    await mq(h, ["pub", "a", "-q", "a1", "a2"]);
    await mq(h, ["pub", "b", "-q", "b1", "b2", "b3"]);
    await mq(h, ["pub", "b", "-q", "--id", "order-7", "b4"]);
    const dump = (await mq(h, ["sub", "a", "--format", "json", "-e"])).out +
      (await mq(h, ["sub", "b", "--format", "json", "-e"])).out;
    const envs = dump.trim().split("\n").map((l) => JSON.parse(l));
    eq(envs.map((e) => e.id), [null, null, null, null, null, "order-7"]);
    const copy = await mq(h, ["pub", "c", "--json-lines", "--json"], { stdin: dump });
    eq(JSON.parse(copy.out).published, 6, copy.err);
    eq((await mq(h, ["sub", "c", "-e"])).out, "a1\na2\nb1\nb2\nb3\nb4\n");
    // copying again: the message with an id is a duplicate within the window
    const again = await mq(h, ["pub", "c", "--json-lines", "--json"], { stdin: dump });
    eq([JSON.parse(again.out).published, JSON.parse(again.out).duplicates], [5, 1]);
  },
);

cliTest("--id on several lines keeps the first and says how many were dropped", async (h) => {
  const r = await mq(h, ["pub", "u", "--id", "X"], { stdin: "a\nb\nc\n" });
  eq(r.code, 0, r.err);
  ok(/^mq: published 1 message to "u" in .*; 2 dropped as duplicates$/.test(r.err.trim()), r.err);
  const j = await mq(h, ["pub", "u", "--id", "X", "--json"], { stdin: "d\n" });
  eq([JSON.parse(j.out).published, JSON.parse(j.out).duplicates], [0, 1]);
  eq((await mq(h, ["sub", "u", "-e"])).out, "a\n");
});

cliTest("--partition, --from an ISO time, and topics info --json after the name", async (h) => {
  eq((await mq(h, ["topics", "create", "p", "--partitions", "3"])).code, 0);
  eq((await mq(h, ["pub", "p", "--partition", "2", "-q", "x", "y"])).code, 0);
  const bad = await mq(h, ["pub", "p", "--partition", "3", "z"]);
  eq([bad.code, errorLine(bad)], [
    2,
    'mq: error: partition 3 does not exist: topic "p" has 3 (0 to 2)',
  ]);
  const info = JSON.parse((await mq(h, ["topics", "info", "p", "--json"])).out);
  eq(info.partitions.map((x: { end: number }) => x.end), [0, 0, 2]);
  eq(JSON.parse((await mq(h, ["topics", "info", "--json", "p"])).out).name, "p");
  const line = (await mq(h, ["sub", "p", "-e", "--format", "{partition} {payload}"])).out;
  eq(line, "2 x\n2 y\n");
  await new Promise((r) => setTimeout(r, 30));
  const mark = new Date().toISOString();
  await new Promise((r) => setTimeout(r, 30));
  await mq(h, ["pub", "p", "--partition", "2", "-q", "later"]);
  eq((await mq(h, ["sub", "p", "-e", "--from", mark])).out, "later\n");
  const future = await mq(h, ["sub", "p", "-e", "--from", "2999-01-01T00:00:00Z"]);
  eq([future.code, future.out], [0, ""]);
});

cliTest("reading commands leave no data folder behind", async (h) => {
  eq((await mq(h, ["info"])).code, 0);
  eq((await mq(h, ["topics"])).code, 0);
  const relative = await mq(h, ["--url", "file:./rel-data", "topics"]);
  eq(relative.code, 0, relative.err);
  for (const p of [`${h}/data`, "./rel-data"]) {
    ok(!(await Deno.stat(p).then(() => true, () => false)), `${p} was created`);
  }
}, { backends: ["file"] });
