/**
 * `mq bridge` to and from RabbitMQ, on a private node started for this file
 * (free loopback ports, temporary store), checked with amqp-tools
 * (amqp-declare-queue, amqp-publish, amqp-get) and rabbitmqctl.
 */
import { deepStrictEqual as eq } from "node:assert/strict";
import { AMQPClient } from "@cloudamqp/amqp-client";
import { available, type RabbitBroker, startRabbitMq } from "../../scripts/brokers.ts";
import { errorLine, mq, spawnMq, withHome } from "../cli/_mq.ts";
import { connect } from "../../mod.ts";
import { assertWithinWindow, recordingTarget } from "../_store_windows.ts";
import { parseBackendUrl } from "../../core/backend_url.ts";
import { bridgeInto } from "../../adapters/amqp/_bridge.ts";

const dec = new TextDecoder();
const rabbit = available("rabbitmq-server");

/** Runs an amqp-tools command; resolves to its stdout bytes. */
async function tool(name: string, args: string[], stdin?: string): Promise<Uint8Array> {
  const child = new Deno.Command(name, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  if (!out.success) throw new Error(`${name} ${args.join(" ")}: ${dec.decode(out.stderr)}`);
  return out.stdout;
}

/** Messages in each queue, by rabbitmqctl. */
async function queueCounts(r: RabbitBroker): Promise<Record<string, number>> {
  const out = await r.ctl("list_queues", "-q", "--no-table-headers", "name", "messages");
  const counts: Record<string, number> = {};
  for (const line of out.trim().split("\n")) {
    const [name, n] = line.trim().split(/\s+/);
    if (name) counts[name] = Number(n);
  }
  return counts;
}

/** Runs `fn` with a channel of a client of its own. */
async function withChannel<T>(
  url: string,
  fn: (
    ch: Awaited<ReturnType<Awaited<ReturnType<AMQPClient["connect"]>>["channel"]>>,
  ) => Promise<T>,
): Promise<T> {
  const c = new AMQPClient(url, undefined, null);
  const conn = await c.connect();
  try {
    return await fn(await conn.channel());
  } finally {
    await conn.close();
  }
}

/** Messages ready in a queue, asked of the broker by a client (quicker than rabbitmqctl). */
function ready(url: string, queue: string): Promise<number> {
  return withChannel(
    url,
    async (ch) => (await ch.queueDeclare(queue, { passive: true })).messageCount,
  );
}

/** Reads `n` messages of a queue with a client of its own: bodies and message ids. */
async function drainQueue(url: string, queue: string, n: number) {
  const bodies: string[] = [], ids: string[] = [];
  await withChannel(url, async (ch) => {
    await ch.prefetch(5000);
    await new Promise<void>((done) => {
      ch.basicConsume(queue, { noAck: true }, (m) => {
        bodies.push(m.bodyString() ?? "");
        ids.push(m.properties.messageId ?? "");
        if (bodies.length === n) done();
      });
    });
  });
  return { bodies, ids };
}

/** Payloads of the messages in `topic` of the file store in `home`, in order. */
async function payloads(home: string, topic: string): Promise<string[]> {
  const r = await mq(home, ["sub", topic, "-e"]);
  eq(r.code, 0, r.err);
  return r.out === "" ? [] : r.out.slice(0, -1).split("\n");
}

const numbered = (n: number, prefix = "m-") => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

async function waitUntil(what: string, ok: () => Promise<boolean>, ms = 60_000) {
  const until = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > until) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

Deno.test({
  name: "bridge amqp: RabbitMQ both ways, faults and bad input",
  ignore: !rabbit.ok,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const r = await startRabbitMq();
    const url = r.url;
    try {
      await t.step(
        "100,000 out, exact and in order, as another client reads them",
        () =>
          withHome(async (home) => {
            await tool("amqp-declare-queue", ["-u", url, "-d", "-q", "big"]);
            const sent = numbered(100_000);
            eq((await mq(home, ["pub", "big"], { stdin: sent.join("\n") + "\n" })).code, 0);
            const out = await mq(home, ["bridge", "--to", url, "--topics", "big", "-e", "-q"]);
            eq([out.code, out.err], [0, ""]);
            eq((await queueCounts(r)).big, 100_000);
            const got = await drainQueue(url, "big", 100_000);
            eq(got.bodies, sent);
            eq(got.ids.slice(0, 2), ["big:0-0", "big:0-1"]);
            eq((await queueCounts(r)).big, 0);
          }),
      );

      await t.step("100,000 in from amqp-publish, exactly once", () =>
        withHome(async (home) => {
          await tool("amqp-declare-queue", ["-u", url, "-d", "-q", "lines"]);
          const sent = numbered(100_000, "line-");
          await tool(
            "amqp-publish",
            ["-u", url, "-r", "lines", "-p", "-l"],
            sent.join("\n") + "\n",
          );
          eq((await queueCounts(r)).lines, 100_000);
          const back = await mq(home, [
            "bridge",
            "--from",
            url,
            "--subjects",
            "lines",
            "--into",
            "in",
            "-e",
            "-q",
          ]);
          eq([back.code, back.err], [0, ""]);
          // amqp-publish -l keeps each line's newline in the body.
          eq((await mq(home, ["sub", "in", "-e"])).out, sent.map((l) => `${l}\n\n`).join(""));
          // The same messages again (as a redelivery brings them): duplicates by the fallback id.
          await tool(
            "amqp-publish",
            ["-u", url, "-r", "lines", "-p", "-l"],
            sent.join("\n") + "\n",
          );
          const again = await mq(home, [
            "bridge",
            "--from",
            url,
            "--subjects",
            "lines",
            "--into",
            "in",
            "-e",
          ]);
          eq(again.err.trim().split("\n").at(-1), 'mq: bridge: stored 0 messages in "in"');
        }));

      await t.step(
        "keys, headers, content-type and bytes both ways",
        () =>
          withHome(async (home) => {
            await tool("amqp-declare-queue", ["-u", url, "-d", "-q", "meta"]);
            const lines = [
              {
                key: "k1",
                headers: { trace: "t-1", "content-type": "application/json" },
                payload: "{}",
              },
              { headers: { "with space": "a\nb" }, payload_base64: "/wD+gA==" },
              { payload: "" },
            ].map((o) => JSON.stringify(o)).join("\n") + "\n";
            eq((await mq(home, ["pub", "meta", "--json-lines"], { stdin: lines })).code, 0);
            eq((await mq(home, ["bridge", "--to", url, "--topics", "meta", "-e", "-q"])).code, 0);
            // The broker's own tool sees the bytes as they were.
            eq(dec.decode(await tool("amqp-get", ["-u", url, "-q", "meta"])), "{}");
            eq([...await tool("amqp-get", ["-u", url, "-q", "meta"])], [0xff, 0x00, 0xfe, 0x80]);
            eq((await tool("amqp-get", ["-u", url, "-q", "meta"])).length, 0);
            // Again, and back in: payload, key and headers as they were, the origin added.
            eq(
              (await mq(home, ["groups", "reset", "meta", "bridge", "--to", "beginning"])).code,
              0,
            );
            eq((await mq(home, ["bridge", "--to", url, "--topics", "meta", "-e", "-q"])).code, 0);
            eq(
              (await mq(home, [
                "bridge",
                "--from",
                url,
                "--subjects",
                "meta",
                "--into",
                "m2",
                "-e",
                "-q",
              ]))
                .code,
              0,
            );
            const got = (await mq(home, ["sub", "m2", "-e", "--format", "json"])).out.trim().split(
              "\n",
            )
              .map((l) => JSON.parse(l));
            const origin = {
              "amqp-queue": "meta",
              "amqp-exchange": "",
              "amqp-routing-key": "meta",
            };
            eq(
              got.map((m) => [m.key, m.headers, m.payload ?? m.payload_json ?? m.payload_base64]),
              [
                // A JSON object payload is printed as JSON (payload_json), the same bytes.
                ["k1", { trace: "t-1", "content-type": "application/json", ...origin }, {}],
                [null, { "with space": "a\nb", ...origin }, "/wD+gA=="],
                [null, origin, ""],
              ],
            );
            // From another program: its headers and content type come in as headers.
            await tool("amqp-publish", [
              "-u",
              url,
              "-r",
              "meta",
              "-C",
              "text/plain",
              "-H",
              "level: info",
              "-b",
              "hello",
            ]);
            eq(
              (await mq(home, [
                "bridge",
                "--from",
                url,
                "--subjects",
                "meta",
                "--into",
                "m3",
                "-e",
                "-q",
              ]))
                .code,
              0,
            );
            const m = JSON.parse((await mq(home, ["sub", "m3", "-e", "--format", "json"])).out);
            eq([m.payload, m.headers["content-type"], m.headers.level], [
              "hello",
              "text/plain",
              "info",
            ]);
            eq(m.id.startsWith("amqp:meta:"), true);
          }),
      );

      await t.step(
        "an unroutable message stops the bridge (exit 1) unless --allow-unroutable",
        () =>
          withHome(async (home) => {
            await withChannel(
              url,
              (ch) => ch.exchangeDeclare("nowhere", "direct", { durable: true }),
            );
            eq((await mq(home, ["pub", "lost", "a", "b"])).code, 0);
            const to = `${url}?exchange=nowhere`;
            const r1 = await mq(home, ["bridge", "--to", to, "--topics", "lost", "-e", "-q"]);
            eq([r1.code, errorLine(r1)], [
              1,
              'mq: error: 2 messages of topic "lost" reached no queue: exchange "nowhere" has no binding for routing key "lost" (--allow-unroutable drops them instead)',
            ]);
            // Nothing was taken as done: the group still has both.
            eq(
              (await mq(home, ["peek", "lost", "--group", "bridge", "-n", "5"])).out.trim().split(
                "\n",
              )
                .length,
              2,
            );
            const r2 = await mq(home, [
              "bridge",
              "--to",
              to,
              "--topics",
              "lost",
              "--allow-unroutable",
              "-e",
            ]);
            eq(r2.code, 0, r2.err);
            eq(
              r2.err.includes(
                'mq: bridge: dropped 2 unroutable messages of topic "lost" (routing key "lost")',
              ),
              true,
              r2.err,
            );
          }),
      );

      await t.step(
        "--bind: a durable queue named by --group, bound to an exchange",
        () =>
          withHome(async (home) => {
            await withChannel(
              url,
              (ch) => ch.exchangeDeclare("events", "topic", { durable: true }),
            );
            // The first run declares and binds the queue; it survives the bridge.
            const args = ["bridge", "--from", url, "--bind", "events:orders.#", "-g", "orders-in"];
            eq((await mq(home, [...args, "--into", "orders", "-e", "-q"])).code, 0);
            await tool("amqp-publish", ["-u", url, "-e", "events", "-r", "orders.eu", "-b", "o1"]);
            await tool("amqp-publish", ["-u", url, "-e", "events", "-r", "users.eu", "-b", "u1"]);
            await tool("amqp-publish", ["-u", url, "-e", "events", "-r", "orders", "-b", "o2"]);
            eq((await queueCounts(r))["orders-in"], 2);
            eq((await mq(home, [...args, "--into", "orders", "-e", "-q"])).code, 0);
            eq(await payloads(home, "orders"), ["o1", "o2"]);
          }),
      );

      await t.step(
        "mq's exchanges route as RabbitMQ's do (direct, fanout, topic, headers)",
        async () => {
          type Bind = {
            exchange: string;
            queue: string;
            key?: string;
            headers?: Record<string, string>;
          };
          const exchanges: [string, string][] = [
            ["x-direct", "direct"],
            ["x-fanout", "fanout"],
            ["x-topic", "topic"],
            ["x-headers", "headers"],
          ];
          const binds: Bind[] = [
            { exchange: "x-direct", queue: "q-d1", key: "red" },
            { exchange: "x-direct", queue: "q-d2", key: "blue" },
            { exchange: "x-direct", queue: "q-d3", key: "red" },
            { exchange: "x-fanout", queue: "q-f1" },
            { exchange: "x-fanout", queue: "q-f2" },
            { exchange: "x-topic", queue: "q-t1", key: "orders.*" },
            { exchange: "x-topic", queue: "q-t2", key: "orders.#" },
            { exchange: "x-topic", queue: "q-t3", key: "#.eu" },
            { exchange: "x-topic", queue: "q-t4", key: "*.*.eu" },
            { exchange: "x-headers", queue: "q-h1", headers: { "x-match": "all", a: "1", b: "2" } },
            { exchange: "x-headers", queue: "q-h2", headers: { "x-match": "any", a: "1", b: "2" } },
          ];
          const sends: [string, string, Record<string, string>?][] = [
            ["x-direct", "red"],
            ["x-direct", "blue"],
            ["x-direct", "green"],
            ["x-fanout", "anything"],
            ["x-topic", "orders"],
            ["x-topic", "orders.eu"],
            ["x-topic", "orders.new.eu"],
            ["x-topic", "users.eu"],
            ["x-topic", "eu"],
            ["x-headers", "", { a: "1", b: "2" }],
            ["x-headers", "", { a: "1" }],
            ["x-headers", "", { b: "3" }],
          ];
          // RabbitMQ: what each queue holds after the sends.
          const theirs = await withChannel(url, async (ch) => {
            for (const [name, type] of exchanges) {
              await ch.exchangeDeclare(name, type, { durable: true });
            }
            for (const b of binds) {
              await ch.queueDeclare(b.queue, { durable: true });
              await ch.queueBind(b.queue, b.exchange, b.key ?? "", b.headers ?? {});
            }
            await ch.confirmSelect();
            for (const [i, [ex, rk, headers]] of sends.entries()) {
              await ch.basicPublish(ex, rk, `msg-${i}`, { headers });
            }
            const held: Record<string, string[]> = {};
            for (const b of binds) {
              held[b.queue] = [];
              for (let m; (m = await ch.basicGet(b.queue, { noAck: true }));) {
                held[b.queue].push(m.bodyString() ?? "");
              }
            }
            return held;
          });
          // mq: the same exchanges, bindings and sends, each queue a topic.
          const local = await connect("memory:");
          try {
            for (const [name, type] of exchanges) await local.exchanges.create(name, type);
            for (const b of binds) {
              const { "x-match": match, ...headers } = b.headers ?? {};
              await local.exchanges.bind(b.exchange, {
                destination: b.queue,
                destinationKind: "topic",
                key: b.key,
                ...(b.headers ? { headers, match: match as "all" | "any" } : {}),
              });
            }
            for (const [i, [ex, rk, headers]] of sends.entries()) {
              await local.publishVia(ex, rk, [{ payload: `msg-${i}`, headers }], {
                allowUnroutable: true,
              });
            }
            const ours: Record<string, string[]> = {};
            for (const b of binds) {
              ours[b.queue] = [];
              const sub = local.subscribe(b.queue, { follow: false });
              for await (const m of sub) ours[b.queue].push(m.text());
            }
            eq(ours, theirs);
            eq(Object.values(theirs).flat().length, 17);
          } finally {
            await local.close();
          }
        },
      );

      await t.step("in: stored and acked in windows of the bridge's bound", async () => {
        // Small messages (the count bounds a window) and large ones (the bytes do).
        await tool("amqp-declare-queue", ["-u", url, "-d", "-q", "windows"]);
        await withChannel(url, async (ch) => {
          await ch.confirmSelect();
          const sent: Promise<number>[] = [];
          for (let i = 0; i < 4600; i++) {
            const body = i < 4000 ? `s-${i}` : `${i}-`.padEnd(4000, "x");
            sent.push(ch.basicPublish("", "windows", body, { messageId: `w-${i}` }));
          }
          await Promise.all(sent);
        });
        const { target, stores } = await recordingTarget();
        try {
          const n = await bridgeInto(parseBackendUrl(url), target, {
            subjects: ["windows"],
            into: "in",
            group: "windows",
            follow: false,
          });
          eq(n, 4600);
          assertWithinWindow(stores, 4600);
          eq(await ready(url, "windows"), 0);
        } finally {
          await target.close();
        }
      });

      await t.step(
        "kill -9 of the bridge, then a rerun: nothing lost, nothing twice",
        () =>
          withHome(async (home) => {
            // Out: a resend after the kill may repeat messages (at least once), never lose one.
            await tool("amqp-declare-queue", ["-u", url, "-d", "-q", "crash"]);
            const sent = numbered(60_000, "c-");
            eq((await mq(home, ["pub", "crash"], { stdin: sent.join("\n") + "\n" })).code, 0);
            // Leases of 5 s, not 30: the rerun first waits for the killed run's to expire.
            const child = spawnMq(home, [
              "bridge",
              "--to",
              url,
              "--topics",
              "crash",
              "-q",
              "--visibility",
              "5s",
            ]);
            await waitUntil("some are out", async () => (await ready(url, "crash")) > 0, 120_000);
            child.kill("SIGKILL");
            await child.output();
            const mid = await ready(url, "crash");
            eq(mid < 60_000, true, `all ${mid} were out before the kill`);
            eq((await mq(home, ["bridge", "--to", url, "--topics", "crash", "-e", "-q"])).code, 0);
            const total = await ready(url, "crash");
            eq(total >= 60_000, true);
            const out = await drainQueue(url, "crash", total);
            eq([...new Set(out.bodies)].sort(), [...sent].sort());
            // In: killed mid-stream, then rerun: each message once (the fallback id dedups).
            await tool("amqp-declare-queue", ["-u", url, "-d", "-q", "crash-in"]);
            const sentIn = numbered(20_000, "i-");
            await tool(
              "amqp-publish",
              ["-u", url, "-r", "crash-in", "-l"],
              sentIn.join("\n") + "\n",
            );
            // Through the topic's dedup window: a kill -9 at any point leaves no id reserved
            // that was not stored, and the rerun drops what the queue delivers again.
            const from = `${url}?prefetch=1000`;
            const args = ["bridge", "--from", from, "--subjects", "crash-in", "--into", "c2", "-q"];
            const inChild = spawnMq(home, args);
            await waitUntil("some are in", async () =>
              (await ready(url, "crash-in")) < 16_000, 120_000);
            inChild.kill("SIGKILL");
            await inChild.output();
            eq((await mq(home, [...args, "-e"])).code, 0);
            const got = (await mq(home, ["sub", "c2", "-e"])).out.split("\n\n").slice(0, -1);
            eq(got.length, 20_000, "each message once");
            eq([...new Set(got)].sort(), [...sentIn].sort());
          }),
      );

      await t.step(
        "a RabbitMQ restart mid-stream: reconnects, loses nothing",
        () =>
          withHome(async (home) => {
            await tool("amqp-declare-queue", ["-u", url, "-d", "-q", "restart"]);
            const sent = numbered(60_000, "r-");
            eq((await mq(home, ["pub", "restart"], { stdin: sent.join("\n") + "\n" })).code, 0);
            const child = spawnMq(home, ["bridge", "--to", url, "--topics", "restart"]);
            await waitUntil("some are out", async () => (await ready(url, "restart")) > 0, 120_000);
            await r.stop({ keepStore: true });
            await new Promise((res) => setTimeout(res, 500));
            await r.restart();
            // All are out once the bridge's position on the topic is at its end (every
            // batch confirmed): the queue's length alone reaches 60,000 early when a
            // batch was sent twice across the restart.
            const position = async () => {
              const g = await mq(home, ["groups", "restart", "--json"]);
              return g.code === 0 ? JSON.parse(g.out)[0]?.partitions[0]?.floor ?? 0 : 0;
            };
            await waitUntil("all are out", async () => {
              if ((await position()) < 60_000) return false;
              try {
                return (await ready(url, "restart")) >= 60_000;
              } catch {
                return false; // still starting
              }
            }, 180_000);
            child.kill("SIGTERM");
            const { code, stderr } = await child.output();
            const err = dec.decode(stderr);
            eq(code, 0, err);
            eq(
              /mq: bridge: disconnected from amqp:\/\/guest:\*\*\*@127\.0\.0\.1:\d+/.test(err),
              true,
              err,
            );
            eq(/mq: bridge: (reconnected to|forwarding again)/.test(err), true, err);
            // Every message is there (a resent batch may repeat some, with the same message-id).
            const total = await ready(url, "restart");
            const out = await drainQueue(url, "restart", total);
            eq([...new Set(out.bodies)].sort(), [...sent].sort());
            eq(new Set(out.ids).size, 60_000);
          }),
      );

      await t.step(
        "bad URLs, templates, queues: one line, exit 2 or 1",
        () =>
          withHome(async (home) => {
            eq((await mq(home, ["pub", "bad", "x"])).code, 0);
            const port = r.port;
            const cases: [string[], number, string][] = [
              [
                ["--to", "amqp://127.0.0.1:99999"],
                2,
                'mq: error: invalid AMQP URL "amqp://127.0.0.1:99999": expected amqp://HOST:PORT/VHOST (credentials as USER:PASSWORD@HOST)',
              ],
              [
                ["--to", `amqp://127.0.0.1:${port}?exchnage=x`],
                2,
                'mq: error: unknown amqp: URL option "exchnage" (known: exchange, prefetch)',
              ],
              [
                ["--to", `${url}?exchange=missing`],
                2,
                `mq: error: exchange "missing" does not exist on amqp://guest:***@127.0.0.1:${port}?exchange=missing`,
              ],
              [
                ["--to", `amqp://guest:wrong@127.0.0.1:${port}`],
                1,
                `mq: error: cannot connect to RabbitMQ at amqp://guest:***@127.0.0.1:${port}: authentication failed (check user and password)`,
              ],
              [
                ["--to", url, "--target", "{nope}"],
                2,
                'mq: error: --target "{nope}": unknown placeholder {nope}; use {topic}, {key}, {partition} or {header.NAME}',
              ],
              [
                ["--to", url, "--target", "{key}"],
                2,
                'mq: error: --target "{key}": message bad/0/0 has no key',
              ],
              [
                ["--from", url, "--subjects", "no-such-queue", "--into", "x"],
                2,
                `mq: error: queue "no-such-queue" does not exist on amqp://guest:***@127.0.0.1:${port}`,
              ],
              [
                ["--from", url, "--bind", "nocolon", "--into", "x"],
                2,
                'mq: error: --bind "nocolon": expected EXCHANGE:PATTERN (e.g. events:orders.#)',
              ],
            ];
            const unreachable = await mq(home, [
              "bridge",
              "--to",
              "amqp://127.0.0.1:1",
              "-e",
              "-q",
            ]);
            eq(
              [
                unreachable.code,
                errorLine(unreachable).startsWith(
                  "mq: error: cannot connect to RabbitMQ at amqp://127.0.0.1:1: ",
                ),
              ],
              [1, true],
              unreachable.err,
            );
            for (const [args, code, line] of cases) {
              const res = await mq(home, ["bridge", ...args, "-e", "-q"]);
              eq([res.code, errorLine(res)], [code, line], args.join(" "));
            }
            // Nothing of "bad" was taken as done by any of them.
            eq((await mq(home, ["peek", "bad", "--group", "bridge"])).out, "x\n");
          }),
      );
    } finally {
      await r.stop();
    }
  },
});
