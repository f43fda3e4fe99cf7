/** The same commands with MQ_URL=kv:...: swapping the backend is swapping the URL. */
import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { errorLine, mq, withHome } from "./_mq.ts";

const kv = (h: string) => ({ MQ_URL: `kv:${h}/mq.sqlite` });

Deno.test("cli on kv: pub, sub, groups, work, take/ack, dlq, oversize lines", () =>
  withHome(async (h) => {
    const env = kv(h);
    eq((await mq(h, ["pub", "t", "-q"], { stdin: "a\r\n\nb\nlast", env })).code, 0);
    eq((await mq(h, ["sub", "t", "-e"], { env })).out, "a\n\nb\nlast\n");
    eq((await mq(h, ["sub", "t", "--group", "g", "-n", "2"], { env })).out, "a\n\n");
    eq((await mq(h, ["sub", "t", "--group", "g", "-e"], { env })).out, "b\nlast\n");
    await mq(h, ["topics", "create", "jobs", "--max-attempts", "2"], { env });
    await mq(h, ["pub", "jobs", "-q"], { stdin: "1\n2\n3\n", env });
    const w = await mq(h, [
      "work",
      "jobs",
      "-e",
      "--backoff",
      "10ms",
      "--",
      "sh",
      "-c",
      'read x; [ "$x" != 2 ]',
    ], { env });
    eq(w.code, 0, w.err);
    ok(w.err.includes("2 acked, 2 failed attempts, 1 dead-lettered"), w.err);
    ok((await mq(h, ["dlq", "ls", "jobs"], { env })).out.includes("exit code 1"));
    await mq(h, ["pub", "q", "x", "-q"], { env });
    const taken = await mq(h, ["take", "q"], { env });
    eq(taken.out, "x\n");
    eq((await mq(h, ["ack", "q", taken.err.trim().replace("receipt: ", "")], { env })).code, 0);
    const big = await mq(h, ["pub", "big"], { stdin: `ok\n${"z".repeat(70_000)}\n`, env });
    eq(big.code, 2);
    ok(
      errorLine(big).startsWith(
        "mq: error: line 2: message is 70000 bytes; this backend stores at most",
      ),
      big.err,
    );
    eq((await mq(h, ["sub", "big", "-e"], { env })).out, "ok\n");
    ok((await mq(h, ["info"], { env })).out.includes(`backend: kv:${h}/mq.sqlite`));
  }));

Deno.test("cli on kv: a file that is not a KV store gives exit 1 and one clear line", () =>
  withHome(async (h) => {
    await Deno.writeTextFile(`${h}/not-kv.sqlite`, "this is not a database\n".repeat(100));
    const r = await mq(h, ["topics"], { env: { MQ_URL: `kv:${h}/not-kv.sqlite` } });
    eq(r.code, 1);
    ok(errorLine(r).startsWith(`mq: error: cannot open Deno KV file ${h}/not-kv.sqlite`), r.err);
  }));
