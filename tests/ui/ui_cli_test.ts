/**
 * `mq ui`, `mq top` and `mq metrics` end to end: refusals with exit codes,
 * the Prometheus text, `top --once --json`, and the live `top` in a real
 * terminal (tmux: send-keys, capture-pane).
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { envFor, errorLine, MQ, mq, withHome } from "../cli/_mq.ts";
import { freePort } from "../../scripts/brokers.ts";
import { startUi } from "./_ui.ts";

async function ok(home: string, args: string[]): Promise<string> {
  const r = await mq(home, args);
  if (r.code !== 0) throw new Error(`mq ${args.join(" ")} exited ${r.code}: ${r.err}`);
  return r.out;
}

Deno.test("ui cli: refusals (exit 2) and a taken port (exit 1), each one line", async () => {
  await withHome(async (home) => {
    const cases: [string[], Record<string, string>, number, string][] = [
      [
        ["ui", "--host", "0.0.0.0"],
        {},
        2,
        "mq: error: --host 0.0.0.0 is reachable from other machines: give a token (--token or MQ_UI_TOKEN)",
      ],
      [
        ["ui", "--token", "short"],
        {},
        2,
        "mq: error: the token must be 8 to 200 characters of A-Z a-z 0-9 . _ ~ -",
      ],
      [
        ["ui", "--host", "10.9.8.7"],
        { MQ_UI_TOKEN: "" },
        2,
        "mq: error: --host 10.9.8.7 is reachable from other machines: give a token (--token or MQ_UI_TOKEN)",
      ],
      [["ui", "--port", "70000"], {}, 2, "mq: error: --port must be 0 to 65535"],
      [["top", "--json"], {}, 2, "mq: error: --json needs --once (the live view is a screen)"],
      [
        ["top", "--once", "--interval", "10ms"],
        {},
        2,
        "mq: error: --interval must be at least 50ms",
      ],
      [
        ["metrics", "--topics", "a..b"],
        {},
        2,
        'mq: error: pattern "a..b" has an empty word',
      ],
    ];
    for (const [args, env, code, line] of cases) {
      const r = await mq(home, args, { env });
      assertEquals([args, r.code, errorLine(r), r.out], [args, code, line, ""]);
    }
    const port = freePort();
    const listener = Deno.listen({ hostname: "127.0.0.1", port });
    try {
      const r = await mq(home, ["ui", "--port", String(port)]);
      assertEquals([r.code, errorLine(r)], [
        1,
        `mq: error: port ${port} on 127.0.0.1 is in use (try --port)`,
      ]);
    } finally {
      listener.close();
    }
  });
});

Deno.test("ui cli: MQ_UI_TOKEN sets the token; the page gets the backend URL; SIGTERM exits 0", async () => {
  await withHome(async (home) => {
    await ok(home, ["pub", "orders", "x"]);
    const url = `file:${home}/data?fsync=never`;
    const ui = await startUi(home, ["--url", url], { MQ_UI_TOKEN: "env-token-123" });
    try {
      assertEquals(ui.url, `${ui.origin}/?token=env-token-123`);
      const r = await fetch(`${ui.origin}/api/overview`, {
        headers: { authorization: "Bearer env-token-123" },
      });
      const o = await r.json();
      assertEquals([o.backend, o.topics.map((t: { name: string }) => t.name)], [url, ["orders"]]);
    } finally {
      const { code, err } = await ui.stop();
      assertEquals([code, err], [0, `mq: serving ${url}; Ctrl-C stops\n`]);
    }
  });
});

Deno.test("metrics cli: mq metrics prints the same families as GET /metrics", async () => {
  await withHome(async (home) => {
    await ok(home, ["topics", "create", "orders", "--partitions", "2"]);
    await ok(home, ["pub", "orders", "-k", "a", "1", "2", "3"]);
    await ok(home, ["sub", "orders", "-g", "billing", "-n", "1"]);
    const text = await ok(home, ["metrics"]);
    const samples = text.split("\n").filter((l) => l && !l.startsWith("#"));
    assertEquals(samples.filter((l) => l.includes('"orders"')).sort(), [
      'mq_group_dead_letters_total{topic="orders",group="billing"} 0',
      'mq_group_delivered_total{topic="orders",group="billing"} 1',
      'mq_group_expired_total{topic="orders",group="billing"} 0',
      'mq_group_in_flight{topic="orders",group="billing"} 0',
      'mq_group_lag{topic="orders",group="billing"} 2',
      'mq_group_retrying{topic="orders",group="billing"} 0',
      'mq_group_settled_total{topic="orders",group="billing"} 1',
      ...samples.filter((l) => l.startsWith('mq_topic_bytes{topic="orders"}')),
      'mq_topic_dead_letters{topic="orders"} 0',
      'mq_topic_delayed{topic="orders"} 0',
      'mq_topic_messages{topic="orders"} 3',
      'mq_topic_partitions{topic="orders"} 2',
      'mq_topic_published_total{topic="orders"} 3',
    ]);
    assertEquals(
      Number(samples.find((l) => l.startsWith("mq_topic_bytes"))!.split(" ")[1]) > 3,
      true,
    );
    const ui = await startUi(home, ["--token", "metrics-token"]);
    try {
      const served = await (await fetch(`${ui.origin}/metrics`, {
        headers: { authorization: "Bearer metrics-token" },
      })).text();
      assertEquals(served, text);
    } finally {
      await ui.stop();
    }
  });
});

Deno.test("top cli: --once --json is one snapshot with rates; --once alone is the table", async () => {
  await withHome(async (home) => {
    await ok(home, ["topics", "create", "jobs", "--max-attempts", "1"]);
    await ok(home, ["pub", "jobs", "a", "b"]);
    await mq(home, ["work", "jobs", "-g", "w", "-e", "--", "false"]);
    await ok(home, ["pub", "logs.app", "x"]);
    const o = JSON.parse(await ok(home, ["top", "--once", "--json", "--interval", "100ms"]));
    assertEquals(typeof o.at, "string");
    assertEquals(
      o.topics.map((
        t: Record<string, unknown>,
      ) => [t.name, t.messages, t.deadLetters, t.publishRate]),
      [["jobs", 2, 2, 0], ["jobs.dlq", 2, 0, 0], ["logs.app", 1, 0, 0]],
    );
    assertEquals(o.topics[0].groups.map((g: Record<string, unknown>) => [g.name, g.deadLettered]), [
      [
        "w",
        2,
      ],
    ]);
    const only = JSON.parse(
      await ok(home, ["top", "--once", "--json", "--interval", "50ms", "--topics", "logs.*"]),
    );
    assertEquals(only.topics.map((t: { name: string }) => t.name), ["logs.app"]);
    const table = (await ok(home, ["top", "--once", "--interval", "50ms"])).split("\n");
    assertEquals(table[2].split(/\s+/), [
      "TOPIC",
      "/",
      "GROUP",
      "PARTS",
      "MESSAGES",
      "PUB/S",
      "CON/S",
      "LAG",
      "DLQ",
      "DELAYED",
    ]);
    assertEquals(table.slice(3, 5).map((l) => l.trim().split(/\s+/)), [
      ["jobs", "1", "2", "0", "0", "0", "2", "0"],
      ["w", "0", "2", "0"],
    ]);
    assertEquals(table.join("\n").includes("\x1b["), false); // not a terminal: no colours
  });
});

const tmux = (() => {
  try {
    return new Deno.Command("tmux", { args: ["-V"], stdout: "null", stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
})();

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  return new TextDecoder().decode(out.stdout);
}

Deno.test({
  name: "top cli: live in a terminal (tmux): redrawn, sort keys, NO_COLOR, q quits",
  ignore: !tmux && Deno.env.get("CI") !== "true",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withHome(async (home) => {
      if (!tmux) throw new Error("tmux is not installed");
      await ok(home, ["pub", "alpha", "1"]);
      await ok(home, ["pub", "zeta", "1", "2", "3", "4", "5"]);
      const socket = `mq-top-${crypto.randomUUID().slice(0, 8)}`;
      const t = (...args: string[]) => run("tmux", ["-L", socket, "-f", "/dev/null", ...args]);
      const start = async (name: string, env: Record<string, string>) => {
        const script = `${home}/${name}.sh`;
        // The caller's NO_COLOR (CI sets it) must not decide the colour case.
        const base = envFor(home, { TERM: "xterm-256color", ...env });
        if (env.NO_COLOR === undefined) delete base.NO_COLOR;
        const vars = Object.entries(base)
          .map(([k, v]) => `export ${k}='${v.replaceAll("'", "'\\''")}'`).join("\n");
        await Deno.writeTextFile(
          script,
          `${env.NO_COLOR === undefined ? "unset NO_COLOR\n" : ""}${vars}\nexec ${
            MQ.map((a) => `'${a}'`).join(" ")
          } top --interval 200ms\n`,
        );
        await t("new-session", "-d", "-x", "120", "-y", "20", "-s", name, `sh ${script}`);
      };
      const screen = (name: string, escapes = false) =>
        t("capture-pane", "-p", ...(escapes ? ["-e"] : []), "-t", name);
      const until = async (name: string, test: (s: string) => boolean, what: string) => {
        const deadline = Date.now() + 20_000;
        let s = "";
        while (Date.now() < deadline) {
          s = await screen(name);
          if (test(s)) return s;
          await new Promise((r) => setTimeout(r, 100));
        }
        throw new Error(`${what}: the screen is\n${s}`);
      };
      const order = (s: string) =>
        s.split("\n").filter((l) => /^(alpha|zeta) /.test(l)).map((l) => l.split(" ")[0]);
      try {
        await start("colour", {});
        let s = await until("colour", (x) => x.includes("TOPIC / GROUP"), "no table");
        assertEquals(s.split("\n")[0].startsWith("mq top  file:"), true);
        assertEquals(s.includes("sort: publish rate"), true);
        assertEquals(order(s), ["alpha", "zeta"]); // no traffic: by name
        await t("send-keys", "-t", "colour", "m");
        // (A capture may catch a frame half drawn: the status line new, the rows not yet.)
        const same = (a: string[], b: string[]) => a.join() === b.join();
        s = await until(
          "colour",
          (x) => x.includes("sort: messages") && same(order(x), ["zeta", "alpha"]),
          "m did not sort",
        );
        assertEquals(order(s), ["zeta", "alpha"]);
        await t("send-keys", "-t", "colour", "n");
        s = await until(
          "colour",
          (x) => x.includes("sort: name") && same(order(x), ["alpha", "zeta"]),
          "n did not sort",
        );
        assertEquals(order(s), ["alpha", "zeta"]);
        // Redrawn in place: a publish shows up in the same screen.
        await ok(home, ["pub", "alpha", "2", "3", "4", "5", "6", "7"]);
        s = await until(
          "colour",
          (x) => x.split("\n").some((l) => /^alpha\s+1\s+7\s/.test(l)),
          "the new count did not show",
        );
        assertEquals(s.split("\n").filter((l) => l.includes("TOPIC / GROUP")).length, 1);
        assertEquals(
          (await screen("colour", true)).includes("\x1b[7m") ||
            (await screen("colour", true)).includes(";7m"),
          true,
        );
        await start("plain", { NO_COLOR: "1" });
        await until("plain", (x) => x.includes("TOPIC / GROUP"), "no table");
        const plain = await screen("plain", true);
        // No attributes at all (tmux writes what a cell has as SGR sequences).
        assertEquals(new RegExp("\x1b\\[[0-9;]*[1-9][0-9;]*m").test(plain), false);
        for (const name of ["colour", "plain"]) {
          await t("send-keys", "-t", name, "q");
          const deadline = Date.now() + 10_000;
          while ((await t("list-sessions", "-F", "#{session_name}")).includes(name)) {
            if (Date.now() > deadline) throw new Error(`q did not quit ${name}`);
            await new Promise((r) => setTimeout(r, 100));
          }
        }
      } finally {
        await t("kill-server");
      }
    }),
});
