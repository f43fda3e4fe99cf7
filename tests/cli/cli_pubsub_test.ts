import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { cliTest, mq } from "./_mq.ts";

const enc = new TextEncoder();

cliTest("stdin lines in, the same lines out; edge cases of lines", async (h) => {
  // empty lines are messages, CRLF endings are removed, a last line without newline is a message
  const r = await mq(h, ["pub", "t"], { stdin: "a\r\n\nb c\nlast" });
  eq(r.code, 0, r.err);
  ok(/^mq: published 4 messages to "t" in /.test(r.err), r.err);
  eq((await mq(h, ["sub", "t", "-e"])).out, "a\n\nb c\nlast\n");
  eq((await mq(h, ["pub", "t", "--skip-empty", "-q"], { stdin: "\n\nx\n" })).code, 0);
  eq((await mq(h, ["sub", "t", "-e", "--from", "4"])).out, "x\n");
});

cliTest("empty stdin publishes nothing and exits at once", async (h) => {
  const t = performance.now();
  const r = await mq(h, ["pub", "t", "--json"], { stdin: "" });
  eq(r.code, 0, r.err);
  eq(JSON.parse(r.out).published, 0);
  ok(performance.now() - t < 5000);
});

cliTest(
  "NUL-delimited payloads with newlines and invalid UTF-8 round-trip byte-exact",
  async (h) => {
    const a = Uint8Array.from([104, 10, 105, 13, 10]), b = Uint8Array.from([0xff, 0xfe, 0x80]);
    const input = Uint8Array.from([...a, 0, ...b, 0]);
    eq((await mq(h, ["pub", "bin", "-0", "-q"], { stdin: input })).code, 0);
    const raw = await mq(h, ["sub", "bin", "-e", "-0"]);
    eq(raw.stdout, input);
    const json = (await mq(h, ["sub", "bin", "-e", "--format", "json"])).out.trim().split("\n").map(
      (l) => JSON.parse(l),
    );
    eq(json[0].payload, "h\ni\r\n");
    eq(json[1].payload_base64, btoa(String.fromCharCode(0xff, 0xfe, 0x80)));
    eq(json[1].payload, undefined);
    // a faithful copy through --json-lines
    const copy = await mq(h, ["pub", "copy", "--json-lines", "-q"], {
      stdin: (await mq(h, ["sub", "bin", "-e", "--format", "json"])).out,
    });
    eq(copy.code, 0, copy.err);
    eq((await mq(h, ["sub", "copy", "-e", "-0"])).stdout, input);
  },
);

cliTest("--raw, keys, -K, headers, --id, templates and the JSON envelope", async (h) => {
  eq((await mq(h, ["pub", "raw", "--raw", "-q"], { stdin: "one\ntwo\n" })).code, 0);
  eq((await mq(h, ["sub", "raw", "-e", "--format", "json"])).out.trim().split("\n").length, 1);
  eq(
    (await mq(h, ["pub", "k", "-K", " ", "-H", "trace=t1", "-q"], {
      stdin: "user1 hello world\nuser2 bye\n",
    })).code,
    0,
  );
  eq(
    (await mq(h, ["sub", "k", "-e", "--format", "{offset} {key} {payload} {header.trace}"])).out,
    "0 user1 hello world t1\n1 user2 bye t1\n",
  );
  eq((await mq(h, ["pub", "k", "--id", "m-1", "-k", "kk", "again"])).code, 0);
  const env = JSON.parse(
    (await mq(h, ["sub", "k", "-e", "--from", "2", "--format", "json"])).out,
  );
  eq([env.topic, env.partition, env.offset, env.id, env.key, env.attempt, env.payload], [
    "k",
    0,
    2,
    "m-1",
    "kk",
    1,
    "again",
  ]);
  ok(!Number.isNaN(Date.parse(env.timestamp)));
  eq((await mq(h, ["pub", "k", "--id", "m-1", "dup", "--json"])).code, 0);
  eq((await mq(h, ["sub", "k", "-e", "--from", "3"])).out, "", "a duplicate id is dropped");
});

cliTest("sub --from, -n, --timeout, groups share and fan out", async (h) => {
  await mq(h, ["pub", "t", "-q"], { stdin: "1\n2\n3\n4\n" });
  eq((await mq(h, ["sub", "t", "--from", "2", "-e"])).out, "3\n4\n");
  eq((await mq(h, ["sub", "t", "--from", "-1h", "-n", "2"])).out, "1\n2\n");
  eq((await mq(h, ["sub", "t", "--from", "end", "-e"])).out, "");
  eq((await mq(h, ["sub", "t", "--group", "g", "-n", "2"])).out, "1\n2\n");
  eq((await mq(h, ["sub", "t", "--group", "g", "-n", "2"])).out, "3\n4\n");
  eq((await mq(h, ["sub", "t", "--group", "other", "-e"])).out, "1\n2\n3\n4\n");
  const timed = await mq(h, ["sub", "t", "--group", "g", "-n", "1", "--timeout", "300ms"]);
  eq(timed.code, 3);
  eq(timed.err.trim(), "mq: error: 0 of 1 messages arrived within 300ms");
  const missing = await mq(h, ["sub", "nosuch", "-e"]);
  eq([missing.code, missing.err.trim()], [1, 'mq: error: topic "nosuch" does not exist']);
});

cliTest("topics create, list, info, purge, rm; groups; info hides secrets", async (h) => {
  eq((await mq(h, ["topics", "create", "t", "--partitions", "2"])).code, 0);
  const again = await mq(h, ["topics", "create", "t"]);
  eq([again.code, again.err.trim()], [1, 'mq: error: topic "t" exists already']);
  await mq(h, ["pub", "t", "-q"], { stdin: "a\nb\nc\n" });
  eq((await mq(h, ["topics"])).out.split("\n")[1].split(/\s+/), ["t", "2", "3"]);
  await mq(h, ["sub", "t", "--group", "g", "-n", "1"]);
  const info = await mq(h, ["topics", "info", "t"]);
  ok(info.out.includes("partitions: 2") && /\ng\s+2\s+0\s/.test(info.out), info.out);
  eq(JSON.parse((await mq(h, ["groups", "t", "--json"])).out)[0].lag, 2);
  eq((await mq(h, ["topics", "purge", "t"])).err.trim(), 'mq: purged 3 messages from "t"');
  eq((await mq(h, ["topics", "rm", "t"])).code, 0);
  eq((await mq(h, ["topics", "--json"])).out.trim(), "[]");
  const i = await mq(h, ["--url", "file:./x?fsync=never", "info", "--json"]);
  eq(JSON.parse(i.out).source, "--url");
  const n = await mq(h, ["--url", "nats://u:sekrit@127.0.0.1:1", "info"]);
  ok(!n.out.includes("sekrit") && !n.err.includes("sekrit"), n.err);
  eq(
    (await mq(h, ["--version"])).out.trim(),
    JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url))).version,
  );
  ok((await mq(h, ["pub", "--help"])).out.includes("mq pub events < events.log"));
  ok((await mq(h, ["help", "work"])).out.includes("Examples:"));
});

export { enc };
