import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { assertNoTopics, cliTest, errorLine, mq } from "./_mq.ts";

async function filesOutside(home: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(home)) {
    if (e.name !== "data" && e.name !== "config") out.push(e.name);
  }
  return out;
}

cliTest(
  "bad topic names exit 2 with one line naming the name; nothing is written outside the data folder",
  async (h, backend) => {
    for (
      const [name, why] of [
        ["../x", "may contain only A-Z a-z 0-9 . _ -"],
        ["a/b", "may contain only A-Z a-z 0-9 . _ -"],
        ["", "must not be empty"],
        ["x".repeat(201), "is 201 characters long; at most 200 are allowed"],
        ["-", "must not start with . or -"],
        ["a..b", 'must not contain ".."'],
      ]
    ) {
      const r = await mq(h, ["pub", name, "payload"]);
      eq(r.code, 2, `${name}: ${r.err}`);
      ok(errorLine(r).includes(why), r.err);
    }
    eq(await filesOutside(h), []);
    await assertNoTopics(h, backend);
  },
);

cliTest("unknown flags, commands, schemes and starts exit 2 with one clear line", async (h) => {
  const flag = await mq(h, ["pub", "t", "--bogus", "x"]);
  eq([flag.code, errorLine(flag)], [2, "mq: error: unknown option '--bogus'"]);
  const cmd = await mq(h, ["pubb"]);
  eq([cmd.code, errorLine(cmd)], [2, "mq: error: unknown command 'pubb' (Did you mean pub?)"]);
  const scheme = await mq(h, ["--url", "zz:foo", "topics"]);
  eq(scheme.code, 2);
  ok(errorLine(scheme).startsWith('mq: error: unknown backend "zz:" in "zz:foo"'));
  const from = await mq(h, ["sub", "t", "--from", "yesterday"]);
  eq(from.code, 2);
  ok(errorLine(from).startsWith('mq: error: invalid start "yesterday"'));
  const dur = await mq(h, ["work", "t", "--visibility", "5 minutes", "--", "true"]);
  eq(dur.code, 2);
});

cliTest(
  "an oversize line stops at that line: exit 2, its number, the count before it, nothing after",
  async (h) => {
    eq((await mq(h, ["topics", "create", "t", "--max-message-bytes", "10"])).code, 0);
    const r = await mq(h, ["pub", "t"], { stdin: `aaaaa\nbbbbb\n${"c".repeat(50)}\nddddd\n` });
    eq(r.code, 2);
    eq(
      errorLine(r),
      'mq: error: line 3: message is 50 bytes; topic "t" allows at most 10 (--max-message-bytes); published 2 before it',
    );
    eq((await mq(h, ["sub", "t", "-e"])).out, "aaaaa\nbbbbb\n");
    const skip = await mq(h, ["pub", "t", "--skip-invalid", "-q"], {
      stdin: `eeeee\n${"f".repeat(50)}\nggggg\n`,
    });
    eq(skip.code, 0);
    ok(
      skip.err.includes("line 2: message is 50 bytes") && skip.err.includes("(skipped)"),
      skip.err,
    );
    eq((await mq(h, ["sub", "t", "-e", "--from", "2"])).out, "eeeee\nggggg\n");
  },
);

cliTest(
  "a malformed --json-lines line and a -K line without its delimiter stop with exit 2",
  async (h) => {
    const r = await mq(h, ["pub", "j", "--json-lines"], {
      stdin: '{"payload":"a"}\n{"payload": oops}\n{"payload":"c"}\n',
    });
    eq(r.code, 2);
    ok(/^mq: error: line 2: not valid JSON: .*; published 1 before it$/.test(errorLine(r)), r.err);
    eq((await mq(h, ["sub", "j", "-e"])).out, "a\n");
    const k = await mq(h, ["pub", "k", "-K", "="], { stdin: "a=1\nno-delimiter\nc=3\n" });
    eq(k.code, 2);
    eq(errorLine(k), 'mq: error: line 2: no key delimiter "=" in the line; published 1 before it');
    const missing = await mq(h, ["pub", "j", "--json-lines"], { stdin: '{"key":"x"}\n' });
    eq(missing.code, 2);
    ok(
      errorLine(missing).includes(
        "line 1: expected one of payload, payload_json or payload_base64",
      ),
      missing.err,
    );
  },
);

cliTest("receipts and commands that are not there", async (h) => {
  await mq(h, ["pub", "t", "-q"], { stdin: "1\n2\n" });
  const garbage = await mq(h, ["ack", "t", "nonsense"]);
  eq(garbage.code, 2);
  ok(errorLine(garbage).startsWith('mq: error: receipt "nonsense" is not a receipt'));
  const taken = await mq(h, ["take", "t"]);
  eq(taken.out, "1\n");
  const receipt = taken.err.trim().replace(/^receipt: /, "");
  eq((await mq(h, ["ack", "t", receipt])).code, 0);
  const before = (await mq(h, ["groups", "t", "--json"])).out;
  const twice = await mq(h, ["ack", "t", receipt]);
  eq(twice.code, 2);
  ok(errorLine(twice).includes("is unknown, already settled, or its lease expired"));
  eq((await mq(h, ["groups", "t", "--json"])).out, before);
  const nowork = await mq(h, ["work", "t", "-e", "--", "no-such-command-xyz"]);
  eq(nowork.code, 2);
  eq(errorLine(nowork), 'mq: error: command "no-such-command-xyz" not found (looked in PATH)');
  eq(JSON.parse((await mq(h, ["groups", "t", "--json"])).out)[0].inFlight, 0);
  eq((await mq(h, ["take", "t"])).out, "2\n", "nothing was taken by the failed work");
  const empty = await mq(h, ["take", "t", "--wait", "300ms"]);
  eq([empty.code, errorLine(empty)], [3, "mq: error: no message arrived within 300ms"]);
});

cliTest(
  "a header given twice is refused on pub and on bind without --match any (exit 2, nothing written)",
  async (h, backend) => {
    const pub = await mq(h, ["pub", "t", "-H", "a=1", "-H", "a=2", "x"]);
    eq([pub.code, errorLine(pub)], [
      2,
      'mq: error: header "a" is given twice: one value per header',
    ]);
    await assertNoTopics(h, backend);
    eq((await mq(h, ["exchange", "create", "ex", "--type", "headers"])).code, 0);
    const bind = await mq(h, [
      "bind",
      "ex",
      "img",
      "--match",
      "all",
      "-H",
      "type=png",
      "-H",
      "type=jpg",
    ]);
    eq([bind.code, errorLine(bind)], [
      2,
      'mq: error: header "type" is given twice: one value per header; several values need --match any',
    ]);
    eq(JSON.parse((await mq(h, ["exchange", "ls", "--json"])).out)[0].bindings, []);
    // With --match any, one name with several values: a message with any of them is routed.
    const any = await mq(h, [
      "bind",
      "ex",
      "img",
      "--match",
      "any",
      "-H",
      "type=png",
      "-H",
      "type=jpg",
    ]);
    eq([any.code, any.err], [0, 'mq: bound topic "img" to "ex" (any of type=png,type=jpg)\n']);
    for (const type of ["png", "gif", "jpg"]) {
      const r = await mq(h, [
        "pub",
        "--exchange",
        "ex",
        "-H",
        `type=${type}`,
        type,
        "-q",
        "--allow-unroutable",
      ]);
      eq(r.code, 0, r.err);
    }
    eq((await mq(h, ["sub", "img", "-e"])).out, "png\njpg\n");
  },
);
