/** A wrong URL, a refused connection, bad credentials: exit 1 with one clear line, quickly, no secret shown. */
import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { available, findBinary, freePort } from "../../scripts/brokers.ts";

const nats = available("nats-server");
const main = new URL("../../cli/main.ts", import.meta.url).pathname;

async function mq(...args: string[]): Promise<{ code: number; stderr: string; ms: number }> {
  const t = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", main, ...args],
    env: { MQ_HOME: "/nonexistent-mq-home" },
    stdout: "null",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stderr: new TextDecoder().decode(out.stderr),
    ms: performance.now() - t,
  };
}

Deno.test("nats: a refused connection exits 1 with one line, within the connect timeout", async () => {
  const r = await mq("--url", `nats://127.0.0.1:${freePort()}`, "topics");
  assertEquals(r.code, 1);
  assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
  ok(/^mq: error: cannot connect to NATS at 127\.0\.0\.1:\d+: /.test(r.stderr), r.stderr);
  ok(r.ms < 8000, `took ${r.ms}ms`);
});

Deno.test("nats: a malformed URL exits 2", async () => {
  const r = await mq("--url", "nats://", "topics");
  assertEquals(r.code, 2);
  ok(r.stderr.startsWith("mq: error: invalid NATS URL"), r.stderr);
});

Deno.test("nats: a bad host or port exits 2 with one INVALID_URL line, secrets hidden", async () => {
  const cases: [string, string][] = [
    [
      "nats://127.0.0.1:80x",
      'mq: error: invalid NATS URL "nats://127.0.0.1:80x": "127.0.0.1:80x" is not host:port (port 1 to 65535)',
    ],
    [
      "nats://u:pw-123@127.0.0.1:99999",
      'mq: error: invalid NATS URL "nats://u:***@127.0.0.1:99999": "127.0.0.1:99999" is not host:port (port 1 to 65535)',
    ],
    [
      "nats://127.0.0.1:4222,bad host:1",
      'mq: error: invalid NATS URL "nats://127.0.0.1:4222,bad host:1": "bad host:1" is not host:port (port 1 to 65535)',
    ],
    [
      "nats://127.0.0.1:4222?tls=maybe",
      'mq: error: nats: tls must be 1, true, 0 or false, not "maybe"',
    ],
    [
      "nats://127.0.0.1:4222?creds=/nonexistent/user.creds",
      "mq: error: nats: cannot read the creds file \"/nonexistent/user.creds\": No such file or directory (os error 2): readfile '/nonexistent/user.creds'",
    ],
  ];
  for (const [url, line] of cases) {
    const r = await mq("--url", url, "topics");
    assertEquals([r.code, r.stderr], [2, line + "\n"], url);
  }
  // The same check on the bridge's side.
  const b = await mq("bridge", "--to", "nats://127.0.0.1:80x", "-e");
  assertEquals([b.code, b.stderr.trim().split("\n").at(-1)], [
    2,
    'mq: error: invalid NATS URL "nats://127.0.0.1:80x": "127.0.0.1:80x" is not host:port (port 1 to 65535)',
  ]);
});

Deno.test({
  name: "nats: bad credentials exit 1 naming authorization, and the password is never printed",
  ignore: !nats.ok,
  fn: async () => {
    const port = freePort();
    const server = new Deno.Command(findBinary("nats-server")!, {
      args: ["-a", "127.0.0.1", "-p", String(port), "--user", "alice", "--pass", "right-pw"],
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      for (let i = 0; i < 200; i++) {
        try {
          (await Deno.connect({ hostname: "127.0.0.1", port })).close();
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 25));
        }
      }
      const r = await mq("--url", `nats://alice:wrong-pw-123@127.0.0.1:${port}`, "topics");
      assertEquals(r.code, 1);
      assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
      ok(/authori[sz]ation/i.test(r.stderr), r.stderr);
      ok(!r.stderr.includes("wrong-pw-123"), r.stderr);
      const info = await mq("--url", `nats://alice:wrong-pw-123@127.0.0.1:${port}`, "info");
      ok(!info.stderr.includes("wrong-pw-123"), info.stderr);
    } finally {
      server.kill("SIGTERM");
      await server.status;
    }
  },
});
