/**
 * The connections of the Redis connector: going out (`adapters/redis/_pipe.ts`),
 * batches of several topics in flight on one connection at once, and a
 * Redis that accepts and never answers (plain and TLS); coming in
 * (`_link.ts`), a Redis that stops answering; against fake servers on
 * loopback and a private redis-server checked with redis-cli.
 */
import { deepStrictEqual as eq, ok, rejects } from "node:assert/strict";
import { errorLine, mq } from "../cli/_mq.ts";
import { redisCase, redisCli } from "./_redis.ts";
import { openXaddPipe } from "../../adapters/redis/_pipe.ts";
import { openRedisLink } from "../../adapters/redis/_link.ts";
import { parseRedisUrl } from "../../adapters/redis/_connection.ts";
import { parseBackendUrl } from "../../core/backend_url.ts";
import { ReceivedMessage } from "../../core/message.ts";
import { MqError } from "../../core/errors.ts";

const enc = new TextEncoder();

/**
 * A loopback server that accepts connections and answers only what
 * `answer` gives for the bytes it got (nothing: it stays silent); `closed`
 * counts the connections the other side closed.
 */
function fakeServer(answer: (got: Uint8Array) => Uint8Array | undefined = () => undefined) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  let closed = 0;
  const serving = (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      (async () => {
        const buf = new Uint8Array(64 * 1024);
        try {
          for (;;) {
            const n = await conn.read(buf);
            if (n === null) break;
            const reply = answer(buf.subarray(0, n));
            if (reply) await conn.write(reply);
          }
          closed++;
        } catch {
          closed++;
        }
      })();
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    get closed() {
      return closed;
    },
    async stop() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed already */ }
      }
      await serving.catch(() => {});
    },
  };
}

const message = (i: number) =>
  new ReceivedMessage("t", 0, { offset: i, timestamp: 0, payload: enc.encode(`m-${i}`) }, 1);

async function until(what: string, check: () => boolean, ms = 5000) {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`still not: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test("redis pipe: a Redis that accepts and never answers is one line, exit 1, after ?timeout", async () => {
  const server = fakeServer();
  try {
    const h = await Deno.makeTempDir();
    try {
      eq((await mq(h, ["pub", "t", "-q"], { stdin: "x\n" })).code, 0);
      const url = `redis://127.0.0.1:${server.port}?timeout=300ms`;
      const r = await mq(h, ["bridge", "--to", url, "-e", "-q"]);
      eq(r.code, 1, r.err);
      eq(
        errorLine(r),
        `mq: error: cannot connect to Redis at 127.0.0.1:${server.port}: no reply from Redis within 300 ms`,
      );
      eq(r.err.trim().split("\n").length, 1, r.err);
    } finally {
      await Deno.remove(h, { recursive: true });
    }
  } finally {
    await server.stop();
  }
});

Deno.test("redis pipe: a Redis that stops answering fails the batch in flight after the timeout", async () => {
  // Answers the first PING, then nothing.
  let answered = false;
  const server = fakeServer(() => {
    if (answered) return undefined;
    answered = true;
    return enc.encode("+PONG\r\n");
  });
  try {
    const conf = parseRedisUrl(parseBackendUrl(`redis://127.0.0.1:${server.port}?timeout=300ms`));
    const lines: string[] = [];
    const pipe = await openXaddPipe(conf, () => (l) => lines.push(l));
    const t = Date.now();
    await rejects(pipe.xadd("t", [["s", [message(0), message(1)]]]), (e: Error) => {
      eq(e.message, "no reply from Redis within 300 ms");
      ok(!MqError.is(e), "worth a retry, not fatal");
      return true;
    });
    ok(Date.now() - t >= 250, `failed after ${Date.now() - t} ms`);
    eq(lines, [
      `disconnected from Redis at 127.0.0.1:${server.port} (no reply from Redis within 300 ms); reconnecting`,
    ]);
    // The connection was closed, not left behind.
    await until("the connection is closed", () => server.closed === 1);
    pipe.close();
  } finally {
    await server.stop();
  }
});

Deno.test("redis pipe: a TLS handshake that never ends is one line, exit 1, after ?timeout", async () => {
  const server = fakeServer();
  try {
    const where = `127.0.0.1:${server.port}`;
    const conf = parseRedisUrl(parseBackendUrl(`rediss://${where}?timeout=300ms`));
    await rejects(openXaddPipe(conf), (e: Error) => {
      ok(MqError.is(e, "UNREACHABLE"), String(e));
      eq(e.message, `cannot connect to Redis at ${where}: TLS handshake timed out after 300 ms`);
      return true;
    });
    const h = await Deno.makeTempDir();
    try {
      eq((await mq(h, ["pub", "t", "-q"], { stdin: "x\n" })).code, 0);
      const r = await mq(h, ["bridge", "--to", `rediss://${where}?timeout=300ms`, "-e", "-q"]);
      eq(r.code, 1, r.err);
      eq(
        r.err.trim(),
        `mq: error: cannot connect to Redis at ${where}: TLS handshake timed out after 300 ms`,
      );
    } finally {
      await Deno.remove(h, { recursive: true });
    }
  } finally {
    await server.stop();
  }
});

redisCase(
  "bridge --to redis: three topics at once over one connection, every message exactly once",
  async (h, broker) => {
    const n = 30_000;
    const lines = Array.from({ length: n }, (_, i) => `m-${i}`).join("\n") + "\n";
    for (const t of ["a", "b", "c"]) {
      eq((await mq(h, ["pub", t, "-q"], { stdin: lines })).code, 0);
    }
    const r = await mq(h, ["bridge", "--to", broker.url, "-e"]);
    eq(r.code, 0, r.err);
    // One connection, no outage: batches of the three topics were in flight together.
    ok(!r.err.includes("disconnected"), r.err);
    ok(r.err.includes(`forwarded ${3 * n} messages from 3 topic(s)`), r.err);
    for (const t of ["a", "b", "c"]) {
      eq((await redisCli(broker.port, ["XLEN", t])).trim(), String(n), `stream ${t}`);
      const last = await redisCli(broker.port, ["XREVRANGE", t, "+", "-", "COUNT", "1"]);
      ok(last.includes(`m-${n - 1}`) && last.includes(`${t}:0-${n - 1}`), last);
    }
  },
);

Deno.test("redis pipe: closed while it reconnects, the connection it was opening is closed, not used", async () => {
  // Connection 1 answers its PING and then nothing (its batch times out:
  // the pipe reconnects); connection 2's PONG waits until the pipe is closed.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  let second!: () => void;
  const secondPing = new Promise<void>((r) => second = r);
  const ended: number[] = [];
  const serving = (async () => {
    for await (const conn of listener) {
      const n = conns.push(conn);
      (async () => {
        const buf = new Uint8Array(64 * 1024);
        let pinged = false;
        try {
          for (;;) {
            const got = await conn.read(buf);
            if (got === null) break;
            if (!pinged) {
              pinged = true;
              if (n === 1) await conn.write(enc.encode("+PONG\r\n"));
              else second();
            }
          }
        } catch { /* closed */ }
        ended.push(n);
      })();
    }
  })();
  try {
    const port = (listener.addr as Deno.NetAddr).port;
    const conf = parseRedisUrl(parseBackendUrl(`redis://127.0.0.1:${port}?timeout=300ms`));
    const pipe = await openXaddPipe(conf, () => () => {});
    await rejects(pipe.xadd("t", [["s", [message(0)]]]), /no reply from Redis within 300 ms/);
    const sending = pipe.xadd("t", [["s", [message(1)]]]);
    sending.catch(() => {});
    await secondPing;
    pipe.close();
    await conns[1].write(enc.encode("+PONG\r\n"));
    await rejects(sending, /the connection was closed/);
    await until("connection 2 is closed by the pipe", () => ended.includes(2));
  } finally {
    listener.close();
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed already */ }
    }
    await serving.catch(() => {});
  }
});

Deno.test("redis pipe: after a lost connection, later batches wait for the resend of the first that failed (nothing stored ahead of it)", async () => {
  // Connection 1 answers its PING, then closes on the first XADDs; the next
  // ones answer every XADD and record the payloads, in the order stored.
  const stored: string[] = [];
  let connections = 0;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const serving = (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      const n = ++connections;
      (async () => {
        const buf = new Uint8Array(64 * 1024);
        const text = new TextDecoder();
        try {
          for (;;) {
            const got = await conn.read(buf);
            if (got === null) break;
            const s = text.decode(buf.subarray(0, got));
            const xadds = s.split("XADD").length - 1;
            if (xadds === 0) {
              await conn.write(enc.encode("+PONG\r\n"));
            } else if (n === 1) {
              conn.close();
              break;
            } else {
              stored.push(...s.match(/m-\d+/g)!);
              await conn.write(enc.encode("+OK\r\n".repeat(xadds)));
            }
          }
        } catch { /* closed */ }
      })();
    }
  })();
  try {
    const port = (listener.addr as Deno.NetAddr).port;
    const conf = parseRedisUrl(parseBackendUrl(`redis://127.0.0.1:${port}?timeout=2s`));
    const pipe = await openXaddPipe(conf, () => () => {});
    const a = [message(0), message(1)], b = [message(2)], c = [message(3)];
    const sentA = pipe.xadd("t", [["s", a]], a);
    const sentB = pipe.xadd("t", [["s", b]], b);
    await rejects(sentA);
    await rejects(sentB);
    // Called after the failure, before the resend of `a`: refused, not sent.
    await rejects(pipe.xadd("t", [["s", c]], c));
    eq(connections, 1, "no connection made for a batch behind the one that failed");
    // Another topic's order is its own: not held.
    const d = [message(9)];
    await pipe.xadd("u", [["s2", d]], d);
    await pipe.xadd("t", [["s", a]], a);
    await pipe.xadd("t", [["s", b]], b);
    await pipe.xadd("t", [["s", c]], c);
    eq(stored, ["m-9", "m-0", "m-1", "m-2", "m-3"]);
    pipe.close();
  } finally {
    listener.close();
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed already */ }
    }
    await serving.catch(() => {});
  }
});

Deno.test("redis link (coming in): a Redis that stops answering fails the call after the timeout and the read's wait, says so once, and the next call reconnects", async () => {
  let answering = false;
  const server = fakeServer((got) => {
    const text = new TextDecoder().decode(got);
    if (text.includes("PING")) return enc.encode("+PONG\r\n");
    return answering ? enc.encode(":1\r\n") : undefined;
  });
  try {
    const where = `127.0.0.1:${server.port}`;
    const conf = parseRedisUrl(parseBackendUrl(`redis://${where}?timeout=200ms`));
    const lines: string[] = [];
    const link = await openRedisLink(conf, 150, (l) => lines.push(l));
    const t = Date.now();
    await rejects(link.call([["XACK", "s", "g", "1-0"]]), (e: Error) => {
      eq(e.message, "no reply from Redis within 350 ms");
      ok(!MqError.is(e), "worth a retry, not fatal");
      return true;
    });
    ok(Date.now() - t >= 300, `failed after ${Date.now() - t} ms`);
    eq(lines, [
      `disconnected from Redis at ${where} (no reply from Redis within 350 ms); reconnecting`,
    ]);
    await until("the connection is closed", () => server.closed === 1);
    answering = true;
    eq(await link.call([["XACK", "s", "g", "1-0"]]), [1]);
    eq(lines.slice(1), [`reconnected to Redis at ${where}`]);
    link.close();
  } finally {
    await server.stop();
  }
});
