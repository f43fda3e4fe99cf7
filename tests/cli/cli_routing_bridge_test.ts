import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { cliTest, envFor, errorLine, MQ, mq, spawnMq, withHome } from "./_mq.ts";
import { available, startNats } from "../../scripts/brokers.ts";

cliTest(
  "exchanges, bindings, pub --exchange, unroutable, bad input leaves things as they were",
  async (h) => {
    eq((await mq(h, ["exchange", "create", "ev", "--type", "topic"])).code, 0);
    eq((await mq(h, ["bind", "ev", "eu", "--key", "orders.*.eu"])).code, 0);
    eq((await mq(h, ["bind", "ev", "audit", "--key", "#"])).code, 0);
    eq(
      (await mq(h, ["pub", "--exchange", "ev", "--routing-key", "orders.new.eu", "hello", "-q"]))
        .code,
      0,
    );
    eq(
      (await mq(h, ["pub", "--exchange", "ev", "--routing-key", "users.new", "other", "-q"])).code,
      0,
    );
    eq((await mq(h, ["sub", "eu", "-e"])).out, "hello\n");
    eq((await mq(h, ["sub", "audit", "-e"])).out, "hello\nother\n");
    ok((await mq(h, ["topics", "info", "eu"])).out.includes("key orders.*.eu"));
    eq((await mq(h, ["exchange", "create", "d", "--type", "direct"])).code, 0);
    const lost = await mq(h, ["pub", "--exchange", "d", "--routing-key", "k", "x"]);
    eq(lost.code, 1);
    ok(errorLine(lost).includes('no binding of exchange "d" takes routing key "k"'));
    eq(
      (await mq(h, [
        "pub",
        "--exchange",
        "d",
        "--routing-key",
        "k",
        "x",
        "--allow-unroutable",
        "-q",
      ])).code,
      0,
    );
    const before = (await mq(h, ["exchange", "ls", "--json"])).out;
    const weird = await mq(h, ["exchange", "create", "x", "--type", "weird"]);
    eq([weird.code, errorLine(weird)], [
      2,
      'mq: error: unknown exchange type "weird": use direct, fanout, topic or headers',
    ]);
    const empty = await mq(h, ["bind", "ev", "t", "--key", "a..b"]);
    eq([empty.code, errorLine(empty)], [2, 'mq: error: pattern "a..b" has an empty word']);
    const nosuch = await mq(h, ["bind", "nosuch", "t"]);
    eq(nosuch.code, 2);
    eq((await mq(h, ["exchange", "ls", "--json"])).out, before);
    eq((await mq(h, ["unbind", "ev", "audit"])).code, 0);
    eq((await mq(h, ["unbind", "ev", "audit"])).code, 2);
  },
);

cliTest(
  "request and reply; a request nobody answers exits 3",
  async (h) => {
    const replier = new Deno.Command(MQ[0], {
      args: [...MQ.slice(1), "reply", "rpc", "-q", "--", "tr", "a-z", "A-Z"],
      env: envFor(h),
      clearEnv: true,
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      // The replier reads requests from when it has started (a slow start on kv took
      // longer than one request waited): asked again until it answers.
      let r = await mq(h, ["request", "rpc", "hello", "--timeout", "2s"]);
      for (let i = 0; r.code === 3 && i < 10; i++) {
        r = await mq(h, ["request", "rpc", "hello", "--timeout", "2s"]);
      }
      eq([r.code, r.out], [0, "HELLO\n"], r.err);
      const none = await mq(h, ["request", "nobody", "hi", "--timeout", "300ms"]);
      eq([none.code, errorLine(none)], [3, 'mq: error: no reply from "nobody" within 300ms']);
      ok(!(await mq(h, ["topics"])).out.includes("mq-reply."), "reply topics are removed");
    } finally {
      replier.kill("SIGTERM");
      await replier.status;
    }
  },
);

cliTest("bridge --to another backend copies every topic, resumes where it stopped", async (h) => {
  await mq(h, ["pub", "a", "-q"], { stdin: "1\n2\n" });
  await mq(h, ["pub", "b", "-q"], { stdin: "3\n" });
  const to = `kv:${h}/mirror.sqlite`;
  const r = await mq(h, ["bridge", "--to", to, "-e"]);
  eq(r.code, 0, r.err);
  ok(r.err.includes("forwarded 3 messages from 2 topic(s)"), r.err);
  await mq(h, ["pub", "a", "-q"], { stdin: "4\n" });
  ok((await mq(h, ["bridge", "--to", to, "-e"])).err.includes("forwarded 1 message from"));
  eq((await mq(h, ["--url", to, "sub", "a", "-e"])).out, "1\n2\n4\n");
  eq((await mq(h, ["--url", to, "sub", "b", "-e"])).out, "3\n");
});

cliTest(
  "a bridge that keeps following stops with one line when the target refuses a message for good",
  async (h) => {
    await mq(h, ["pub", "big", "-q", "--raw"], { stdin: "x".repeat(100_000) });
    // Without -e the bridge follows for ever; a message kv cannot store stops it (exit 2).
    const child = spawnMq(h, ["bridge", "--to", `kv:${h}/mirror.sqlite`]);
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    const out = await child.output();
    clearTimeout(timer);
    const err = new TextDecoder().decode(out.stderr);
    eq(out.signal, null, `still running: ${err}`);
    eq(out.code, 2, err);
    ok(/^mq: error: .*message is 100000 bytes[^\n]*\n$/m.test(err), err);
    ok(!err.includes("Uncaught"), err);
  },
  { backends: ["file"] },
);

const nats = available("nats-server");
Deno.test({
  name: "cli: bridge to NATS subjects (JetStream) and back in with --from",
  ignore: !nats.ok,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withHome(async (h) => {
      const broker = await startNats();
      try {
        // A stream that covers the subjects, created through mq's own NATS backend helpers.
        const { connect } = await import("@nats-io/transport-node");
        const { jetstreamManager } = await import("@nats-io/jetstream");
        const nc = await connect({ servers: `127.0.0.1:${broker.port}` });
        await (await jetstreamManager(nc)).streams.add({ name: "ORDERS", subjects: ["orders.>"] });
        await nc.close();
        await mq(h, ["pub", "orders.eu", "-q"], { stdin: "a\nb\n" });
        const out = await mq(h, ["bridge", "--to", broker.url, "--topics", "orders.#", "-e"]);
        eq(out.code, 0, out.err);
        const back = await mq(h, [
          "bridge",
          "--from",
          broker.url,
          "--subjects",
          "orders.eu",
          "--into",
          "copy",
          "-e",
        ]);
        eq(back.code, 0, back.err);
        eq(
          (await mq(h, ["sub", "copy", "-e", "--format", "{payload} {header.nats-subject}"])).out,
          "a orders.eu\nb orders.eu\n",
        );
        const bad = await mq(h, ["bridge", "--from", "file:./x", "--subjects", "s", "--into", "t"]);
        eq(bad.code, 2);
      } finally {
        await broker.stop();
      }
    }),
});
