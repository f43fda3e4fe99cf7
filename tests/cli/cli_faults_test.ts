import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { cliTest, envFor, MQ, mq, spawnMq, withHome } from "./_mq.ts";

const enc = new TextEncoder(), dec = new TextDecoder();
const line = (i: number) => `line-${String(i).padStart(7, "0")}`;

async function waitUntil(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function segmentBytes(home: string, topic: string): Promise<number> {
  let n = 0;
  try {
    for await (const e of Deno.readDir(`${home}/data/log/${topic}/0`)) {
      if (e.name.endsWith(".log")) {
        n += (await Deno.stat(`${home}/data/log/${topic}/0/${e.name}`)).size;
      }
    }
  } catch { /* not yet */ }
  return n;
}

Deno.test({
  name:
    "faults: kill -9 of a publisher in the middle of a million lines leaves an in-order, byte-exact prefix",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withHome(async (h) => {
      const child = spawnMq(h, ["pub", "big"], "piped");
      const w = child.stdin.getWriter();
      let sent = 0;
      const feeding = (async () => {
        try {
          while (sent < 1_000_000) {
            const chunk = Array.from({ length: 10_000 }, (_, i) => line(sent + i)).join("\n") +
              "\n";
            await w.write(enc.encode(chunk));
            sent += 10_000;
          }
        } catch { /* killed */ }
      })();
      await waitUntil(
        async () => (await segmentBytes(h, "big")) > 2_000_000,
        30_000,
        "the publisher to write",
      );
      child.kill("SIGKILL");
      await child.status;
      await feeding;
      await child.stdout.cancel().catch(() => {});
      await child.stderr.cancel().catch(() => {});
      const r = await mq(h, ["sub", "big", "-e"]);
      eq(r.code, 0, r.err);
      const lines = r.out.split("\n");
      eq(lines.pop(), "");
      ok(lines.length > 10_000 && lines.length <= sent, `${lines.length} of ${sent}`);
      for (let i = 0; i < lines.length; i++) {
        if (lines[i] !== line(i)) throw new Error(`line ${i} is ${lines[i]}`);
      }
      // Publishing goes on at the next offset.
      eq((await mq(h, ["pub", "big", "after", "--json"])).code, 0);
      eq(
        (await mq(h, [
          "sub",
          "big",
          "-e",
          "--from",
          String(lines.length),
          "--format",
          "{offset} {payload}",
        ])).out,
        `${lines.length} after\n`,
      );
    }),
});

Deno.test("faults: four publishers at once on one folder lose nothing and keep each one's order", () =>
  withHome(async (h) => {
    const runs = [0, 1, 2, 3].map(async (p) => {
      const input = Array.from({ length: 20_000 }, (_, i) => `P${p}-${i}`).join("\n") + "\n";
      return await mq(h, ["pub", "shared", "-q"], { stdin: input });
    });
    for (const r of await Promise.all(runs)) eq(r.code, 0, r.err);
    const out = (await mq(h, ["sub", "shared", "-e"])).out.trim().split("\n");
    eq(out.length, 80_000);
    for (let p = 0; p < 4; p++) {
      const mine = out.filter((l) => l.startsWith(`P${p}-`));
      eq(mine.length, 20_000);
      mine.forEach((l, i) => {
        if (l !== `P${p}-${i}`) throw new Error(`publisher ${p}: ${l} at ${i}`);
      });
    }
    const offsets = (await mq(h, ["sub", "shared", "-e", "--format", "{offset}"])).out.trim().split(
      "\n",
    ).map(Number);
    eq(offsets, Array.from({ length: 80_000 }, (_, i) => i));
  }));

cliTest(
  "faults: four mq work processes over 20,000 messages, 1 in 10 failing: every one acked once or dead-lettered",
  async (h) => {
    const N = 20_000;
    await mq(h, ["pub", "jobs", "-q"], {
      stdin: Array.from({ length: N }, (_, i) => `${i + 1}`).join("\n") + "\n",
    });
    // Fails (exit 1) for multiples of 10; otherwise appends the payload to this worker's file.
    const script = `read x; case "$x" in *0) exit 1;; esac; echo "$x" >> "${h}/out.$W"`;
    const workers = [0, 1, 2, 3].map((k) =>
      new Deno.Command(MQ[0], {
        args: [
          ...MQ.slice(1),
          ...[
            "work",
            "jobs",
            "-e",
            "-c",
            "2",
            "-q",
            "--max-attempts",
            "2",
            "--backoff",
            "10ms",
            "--",
            "sh",
            "-c",
            script,
          ],
        ],
        env: envFor(h, { W: String(k) }),
        clearEnv: true,
        stdout: "null",
        stderr: "piped",
      }).output()
    );
    // A worker that dead-lettered exits 1 (as xargs does), saying how many; together, every tenth.
    let deadSaid = 0;
    for (const r of await Promise.all(workers)) {
      const err = dec.decode(r.stderr);
      const said = /^mq: error: (\d+) messages? of "jobs" went to the dead-letter topic "jobs\.dlq"/
        .exec(err);
      eq([r.code, err === "" || said !== null], [said ? 1 : 0, true], err);
      deadSaid += said ? Number(said[1]) : 0;
    }
    eq(deadSaid, N / 10);
    const acked: string[] = [];
    for (let k = 0; k < 4; k++) {
      try {
        acked.push(
          ...(await Deno.readTextFile(`${h}/out.${k}`)).trim().split("\n").filter(Boolean),
        );
      } catch { /* a worker may have done nothing */ }
    }
    const dead = (await mq(h, ["sub", "jobs.dlq", "-e"])).out.trim().split("\n");
    eq(acked.length, N - N / 10, "none twice");
    eq(new Set(acked).size, N - N / 10);
    eq(dead.length, N / 10);
    eq(new Set(dead).size, N / 10);
    ok(dead.every((d) => d.endsWith("0")) && acked.every((a) => !a.endsWith("0")));
    const [g] = JSON.parse((await mq(h, ["groups", "jobs", "--json"])).out);
    eq([g.lag, g.inFlight, g.deadLettered], [0, 0, N / 10]);
  },
);

cliTest(
  "faults: a consumer killed with kill -9 while holding leases: its messages go to another after the visibility timeout",
  async (h) => {
    await mq(h, ["pub", "t", "-q"], { stdin: "1\n2\n3\n4\n5\n6\n7\n8\n" });
    const marker = `mq-test-sleep-${Date.now()}`;
    const first = spawnMq(h, [
      "work",
      "t",
      "--visibility",
      "2s",
      "-c",
      "4",
      "--",
      "sh",
      "-c",
      `sleep 30; : ${marker}`,
    ]);
    await waitUntil(
      async () => {
        const r = await mq(h, ["groups", "t", "--json"]);
        return r.code === 0 && JSON.parse(r.out)[0]?.inFlight > 0;
      },
      20_000,
      "leases",
    );
    first.kill("SIGKILL");
    await first.status;
    await first.stdout.cancel().catch(() => {});
    await first.stderr.cancel().catch(() => {});
    await new Deno.Command("pkill", { args: ["-f", marker] }).output().catch(() => {});
    const second = await mq(h, [
      "work",
      "t",
      "-e",
      "-q",
      "--visibility",
      "10s",
      "--",
      "sh",
      "-c",
      `cat >> ${h}/got; echo >> ${h}/got`,
    ]);
    eq(second.code, 0, second.err);
    const got = (await Deno.readTextFile(`${h}/got`)).trim().split("\n").sort();
    eq(got, ["1", "2", "3", "4", "5", "6", "7", "8"]);
    const [g] = JSON.parse((await mq(h, ["groups", "t", "--json"])).out);
    eq([g.lag, g.inFlight], [0, 0]);
  },
);

cliTest(
  "faults: SIGTERM to mq work lets the running command finish, acks it, and exits 0",
  async (h) => {
    await mq(h, ["pub", "t", "-q"], { stdin: "a\nb\n" });
    const w = spawnMq(h, [
      "work",
      "t",
      "-q",
      "--",
      "sh",
      "-c",
      `cat > /dev/null; sleep 1; echo done >> ${h}/done`,
    ]);
    await waitUntil(
      async () => JSON.parse((await mq(h, ["groups", "t", "--json"])).out)[0]?.inFlight > 0,
      20_000,
      "a lease",
    );
    await new Promise((r) => setTimeout(r, 200));
    w.kill("SIGTERM");
    const st = await w.output();
    eq(st.code, 0, dec.decode(st.stderr));
    eq((await Deno.readTextFile(`${h}/done`)).trim(), "done");
    const [g] = JSON.parse((await mq(h, ["groups", "t", "--json"])).out);
    eq([g.lag, g.inFlight], [1, 0], "one acked, the other released unharmed");
    eq((await mq(h, ["take", "t", "--format", "json"])).out.includes('"attempt":1'), true);
  },
);
