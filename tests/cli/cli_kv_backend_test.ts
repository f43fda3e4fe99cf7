/**
 * The same commands with MQ_URL=kv:...: swapping the backend is swapping the
 * URL. And what only kv has: several processes on one SQLite file, messages
 * that must fit one KV value, a file locked by another program, remote URLs.
 */
import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { errorLine, mq, spawnMq, withHome } from "./_mq.ts";

const kv = (h: string) => ({ MQ_URL: `kv:${h}/mq.sqlite` });
const enc = new TextEncoder();

async function waitUntil(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The end of a kv topic's partition 0, read from the file directly. */
async function endOf(path: string, topic: string): Promise<number> {
  const db = await Deno.openKv(path);
  try {
    const head = (await db.get(["head", topic, 0])).value;
    return typeof head === "bigint" ? Number(head) : 0;
  } catch {
    return 0; // busy: ask again
  } finally {
    db.close();
  }
}

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
    eq(w.code, 1, "a message went to the dead-letter topic");
    eq(w.err.trimEnd().split("\n").slice(-2), [
      'mq: work on "jobs": 2 done, 1 retried, 1 dead-lettered',
      'mq: error: 1 message of "jobs" went to the dead-letter topic "jobs.dlq" (see mq dlq ls jobs)',
    ]);
    const dead = await mq(h, ["dlq", "ls", "jobs"], { env });
    ok(dead.out.includes("exit code 1"), dead.out);
    eq((await mq(h, ["sub", "jobs.dlq", "-e"], { env })).out, "2\n");
    const [g] = JSON.parse((await mq(h, ["groups", "jobs", "--json"], { env })).out);
    eq([g.lag, g.inFlight, g.deadLettered], [0, 0, 1]);
    await mq(h, ["pub", "q", "x", "-q"], { env });
    const taken = await mq(h, ["take", "q"], { env });
    eq(taken.out, "x\n");
    eq((await mq(h, ["ack", "q", taken.err.trim().replace("receipt: ", "")], { env })).code, 0);
    const big = await mq(h, ["pub", "big"], { stdin: `ok\n${"z".repeat(70_000)}\n`, env });
    eq(big.code, 2);
    const line = errorLine(big);
    ok(/^mq: error: line 2: .*at most 65503\b.*; published 1 before it$/.test(line), line);
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

Deno.test("cli on kv: four mq pub processes on one file lose nothing and keep each one's order", () =>
  withHome(async (h) => {
    const env = kv(h);
    const runs = [0, 1, 2, 3].map((p) =>
      mq(h, ["pub", "shared", "-q"], {
        stdin: Array.from({ length: 20_000 }, (_, i) => `P${p}-${i}`).join("\n") + "\n",
        env,
      })
    );
    for (const r of await Promise.all(runs)) eq([r.code, r.err], [0, ""]);
    const out = (await mq(h, ["sub", "shared", "-e", "--format", "{offset} {payload}"], { env }))
      .out.trim().split("\n");
    eq(out.length, 80_000);
    eq(out.map((l) => Number(l.split(" ")[0])), Array.from({ length: 80_000 }, (_, i) => i));
    for (let p = 0; p < 4; p++) {
      const mine = out.map((l) => l.split(" ")[1]).filter((l) => l.startsWith(`P${p}-`));
      eq(mine, Array.from({ length: 20_000 }, (_, i) => `P${p}-${i}`));
    }
  }));

Deno.test("cli on kv: a message that cannot fit one KV value with its headers is refused with exit 2; those before it are stored", () =>
  withHome(async (h) => {
    const env = kv(h);
    const header = `h=${"y".repeat(8_000)}`;
    const r = await mq(h, ["pub", "t", "-H", header], {
      stdin: `first\n${"z".repeat(60_000)}\nthird\n`,
      env,
    });
    eq(r.code, 2, r.err);
    eq(
      errorLine(r),
      "mq: error: line 2: message is 68008 bytes with its key, id and headers (payload 60000); " +
        "the kv backend stores at most 65499 in one Deno KV value; published 1 before it",
    );
    eq((await mq(h, ["sub", "t", "-e"], { env })).out, "first\n");
    // Three of 20 KB with a 20 KB header each: within the limit, stored as one batch.
    const ok3 = await mq(h, ["pub", "u", "-q", "-H", `h=${"x".repeat(20_000)}`], {
      stdin: ["a", "b", "c"].map((c) => c.repeat(20_000)).join("\n") + "\n",
      env,
    });
    eq([ok3.code, ok3.err], [0, ""]);
    const got = (await mq(h, ["sub", "u", "-e", "--format", "json"], { env })).out.trim().split(
      "\n",
    ).map((l) => JSON.parse(l));
    eq(got.map((m) => [m.offset, m.payload.length, m.payload[0], m.headers.h.length]), [
      [0, 20_000, "a", 20_000],
      [1, 20_000, "b", 20_000],
      [2, 20_000, "c", 20_000],
    ]);
  }));

Deno.test({
  name:
    "cli on kv: a KV file locked by another program gives exit 1 and one clear line within seconds",
  ignore: new Deno.Command("python3", { args: ["--version"] }).outputSync().code !== 0,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withHome(async (h) => {
      const env = kv(h);
      await mq(h, ["pub", "t", "a", "-q"], { env });
      const holder = new Deno.Command("python3", {
        args: [
          "-c",
          "import sqlite3, sys, time\n" +
          "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n" +
          "c.execute('BEGIN EXCLUSIVE')\n" +
          "print('locked', flush=True)\n" +
          "time.sleep(120)\n",
          `${h}/mq.sqlite`,
        ],
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      try {
        const lines = holder.stdout.pipeThrough(new TextDecoderStream()).getReader();
        eq((await lines.read()).value?.trim(), "locked");
        lines.releaseLock();
        const t = Date.now();
        const r = await mq(h, ["topics"], { env });
        const took = Date.now() - t;
        eq(r.code, 1, r.err);
        eq(
          errorLine(r),
          `mq: error: cannot open Deno KV file ${h}/mq.sqlite: it is locked by another process (no answer within 3s)`,
        );
        ok(took < 10_000, `took ${took} ms`);
      } finally {
        try {
          holder.kill("SIGKILL");
        } catch { /* gone */ }
        await holder.status;
        await holder.stdout.cancel().catch(() => {});
      }
      // Released: it works again.
      eq((await mq(h, ["sub", "t", "-e"], { env })).out, "a\n");
    }),
});

Deno.test({
  name:
    "cli on kv: kill -9 of mq pub mid-stream leaves an in-order, byte-exact prefix; publishing goes on",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withHome(async (h) => {
      const env = kv(h);
      const line = (i: number) => `line-${String(i).padStart(7, "0")}`;
      const child = spawnMq(h, ["pub", "big"], "piped", env);
      const w = child.stdin.getWriter();
      let sent = 0;
      const feeding = (async () => {
        try {
          while (sent < 2_000_000) {
            const chunk = Array.from({ length: 10_000 }, (_, i) => line(sent + i)).join("\n") +
              "\n";
            await w.write(enc.encode(chunk));
            sent += 10_000;
          }
        } catch { /* killed */ }
      })();
      await waitUntil(
        async () => (await endOf(`${h}/mq.sqlite`, "big")) > 100_000,
        30_000,
        "the publisher to write",
      );
      child.kill("SIGKILL");
      await child.status;
      await feeding;
      await child.stdout.cancel().catch(() => {});
      await child.stderr.cancel().catch(() => {});
      const r = await mq(h, ["sub", "big", "-e"], { env });
      eq(r.code, 0, r.err);
      const lines = r.out.split("\n");
      eq(lines.pop(), "");
      ok(lines.length > 100_000 && lines.length < sent, `${lines.length} of ${sent}`);
      for (let i = 0; i < lines.length; i++) {
        if (lines[i] !== line(i)) throw new Error(`line ${i} is ${lines[i]}`);
      }
      eq((await mq(h, ["pub", "big", "after", "-q"], { env })).code, 0);
      eq(
        (await mq(h, [
          "sub",
          "big",
          "-e",
          "--from",
          String(lines.length),
          "--format",
          "{offset} {payload}",
        ], { env })).out,
        `${lines.length} after\n`,
      );
    }),
});

Deno.test("cli on kv: --max-bytes keeps a topic near its bytes, the newest kept", () =>
  withHome(async (h) => {
    const env = kv(h);
    await mq(h, ["topics", "create", "t", "--max-bytes", "100000"], { env });
    const input = Array.from({ length: 20_000 }, (_, i) => `m-${String(i).padStart(6, "0")}`);
    eq((await mq(h, ["pub", "t", "-q"], { stdin: input.join("\n") + "\n", env })).code, 0);
    const [p] = JSON.parse((await mq(h, ["topics", "info", "t", "--json"], { env })).out)
      .partitions;
    ok(p.bytes > 90_000 && p.bytes <= 100_000, JSON.stringify(p));
    eq(p.end, 20_000);
    const kept = (await mq(h, ["sub", "t", "-e"], { env })).out.trim().split("\n");
    eq(kept, input.slice(p.start));
    ok(kept.length > 3_000 && kept.length < 5_000, `${kept.length} kept`);
  }));

Deno.test("cli on kv: kv:https without DENO_KV_ACCESS_TOKEN, and a refused remote, exit 1 with one clear line", () =>
  withHome(async (h) => {
    const noToken = await mq(h, ["topics"], {
      env: { MQ_URL: "kv:https://127.0.0.1:1/kv", DENO_KV_ACCESS_TOKEN: "" },
    });
    eq(noToken.code, 1);
    eq(
      errorLine(noToken),
      "mq: error: cannot open Deno KV at https://127.0.0.1:1/kv: set DENO_KV_ACCESS_TOKEN to an access token of that database",
    );
    const refused = await mq(h, ["topics"], {
      env: { MQ_URL: "kv:https://127.0.0.1:1/kv", DENO_KV_ACCESS_TOKEN: "secret-token" },
    });
    eq(refused.code, 1);
    const line = errorLine(refused);
    ok(
      line.startsWith("mq: error: cannot open Deno KV at https://127.0.0.1:1/kv: ") &&
        line.includes("Connection refused"),
      line,
    );
    ok(!refused.err.includes("secret-token"));
  }));

Deno.test("cli on kv: a record refused by the backend deep in a split batch is named by its line", () =>
  withHome(async (h) => {
    const env = kv(h);
    // ~600 KiB of lines: more than one append; line 550 is too large only with its header.
    const lines: string[] = [];
    for (let i = 1; i <= 600; i++) {
      const headers = i === 550 ? { big: "h".repeat(8000) } : undefined;
      const payload = i === 550 ? "p".repeat(60_000) : `${i}`.padEnd(1000, ".");
      lines.push(JSON.stringify({ payload, headers }));
    }
    const r = await mq(h, ["pub", "split", "--json-lines"], {
      stdin: lines.join("\n") + "\n",
      env,
    });
    eq(r.code, 2, r.err);
    ok(
      /^mq: error: line 550: message is 680\d\d bytes with its key, id and headers \(payload 60000\); .*; published 549 before it$/
        .test(errorLine(r)),
      r.err,
    );
    const got = (await mq(h, ["sub", "split", "-e"], { env })).out.trim().split("\n");
    eq(got.length, 549);
    eq(got.at(-1), "549".padEnd(1000, "."));
  }));

Deno.test("cli on kv: a store in a folder that does not exist yet is made there", () =>
  withHome(async (h) => {
    const env = { MQ_URL: `kv:${h}/new/folder/mq.sqlite` };
    eq((await mq(h, ["pub", "t", "-q", "x"], { env })).code, 0);
    eq((await mq(h, ["sub", "t", "-e"], { env })).out, "x\n");
  }));
