/** Retries of `database is locked` and deadlines of calls that do not answer. */
import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { KvCalls } from "../../adapters/kv/_kv_calls.ts";
import { KvAdapter } from "../../adapters/kv/mod.ts";
import { MqError } from "../../core/errors.ts";
import { withKv } from "./_kv.ts";

Deno.test("kv calls: `database is locked` is retried with backoff until the call goes through", async () => {
  const calls = new KvCalls("Deno KV file /x.sqlite");
  let n = 0;
  const got = await calls.run("append", () => {
    if (++n < 5) return Promise.reject(new TypeError("database is locked"));
    return Promise.resolve("stored");
  });
  eq([got, n], ["stored", 5]);
});

Deno.test("kv calls: a store locked for longer than the retry time fails with one clear IO error", async () => {
  const calls = new KvCalls("Deno KV file /x.sqlite", { retryForMs: 300 });
  const t = Date.now();
  let n = 0;
  const e = await calls.run("append", () => {
    n++;
    return Promise.reject(new Error("database is locked"));
  }).then(() => undefined, (e) => e);
  ok(MqError.is(e, "IO"));
  eq(
    e.message,
    "Deno KV file /x.sqlite stayed locked for 0.3s (other processes keep it busy): append failed",
  );
  ok(
    n > 3 && Date.now() - t >= 300 && Date.now() - t < 2_000,
    `${n} tries in ${Date.now() - t} ms`,
  );
});

Deno.test("kv calls: other errors are not retried; a call that never answers fails at its deadline", async () => {
  const calls = new KvCalls("Deno KV file /x.sqlite", { deadlineMs: 200 });
  let n = 0;
  const other = await calls.run("read", () => {
    n++;
    return Promise.reject(new Error("disk I/O error"));
  }).then(() => undefined, (e) => e);
  eq([other.code, other.message, n], [
    "IO",
    "Deno KV file /x.sqlite: read failed: disk I/O error",
    1,
  ]);
  const t = Date.now();
  const hung = await calls.run("read", () => new Promise(() => {})).then(() => undefined, (e) => e);
  eq(
    hung.message,
    "Deno KV file /x.sqlite is locked by another process: no answer to read within 0.2s",
  );
  ok(Date.now() - t < 1_000);
});

Deno.test("kv: several clients in one process on one file, committing at once, all get through", () =>
  withKv(async (s) => {
    const clients = await Promise.all([0, 1, 2, 3].map(() => s.open()));
    const enc = new TextEncoder();
    await Promise.all(clients.map(async (c, k) => {
      for (let i = 0; i < 50; i++) {
        const payloads = Array.from({ length: 20 }, (_, j) => enc.encode(`c${k}-${i * 20 + j}`));
        await c.append("t", 0, {
          count: 20,
          data: new Uint8Array(payloads.flatMap((p) => [...p])),
          starts: Uint32Array.from(
            payloads.map((_, j) => payloads.slice(0, j).reduce((n, p) => n + p.length, 0)),
          ),
          ends: Uint32Array.from(
            payloads.map((_, j) => payloads.slice(0, j + 1).reduce((n, p) => n + p.length, 0)),
          ),
          timestamp: Date.now(),
        });
      }
    }));
    eq((await clients[0].bounds("t", 0)).end, 4 * 50 * 20);
  }));

Deno.test("kv: opening a store that never answers fails within the open timeout", async () => {
  // A loopback server that accepts connections and never answers.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  (async () => {
    for await (const c of listener) conns.push(c);
  })().catch(() => {});
  const prev = Deno.env.get("DENO_KV_ACCESS_TOKEN");
  Deno.env.set("DENO_KV_ACCESS_TOKEN", "test-token");
  try {
    const url = `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/kv`;
    const t = Date.now();
    const e = await KvAdapter.open(url, { openTimeoutMs: 500 }).then(() => undefined, (e) => e);
    ok(MqError.is(e, "UNREACHABLE"), String(e));
    eq(e.message, `cannot open Deno KV at ${url}: no answer within 0.5s`);
    ok(Date.now() - t < 3_000);
  } finally {
    if (prev === undefined) Deno.env.delete("DENO_KV_ACCESS_TOKEN");
    else Deno.env.set("DENO_KV_ACCESS_TOKEN", prev);
    listener.close();
    for (const c of conns) c.close();
  }
});
