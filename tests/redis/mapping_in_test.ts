/**
 * Entries coming in (`messageOf`): field names are told by their bytes, and
 * entries without header fields share the stream's origin object.
 */
import { deepStrictEqual as eq } from "node:assert/strict";
import { Buffer } from "node:buffer";
import { messageOf } from "../../adapters/redis/_mapping.ts";

const b = (s: string) => Buffer.from(s);

Deno.test("redis in: entries without header fields share the origin object; others get their own", () => {
  const origin = Object.freeze({ "redis-stream": "s" });
  const plain = messageOf("s", "1-0", [b("payload"), b("p1"), b("mq-id"), b("x")], origin);
  const only = messageOf("s", "1-1", [b("body"), b("p2")], origin);
  const keyed = messageOf("s", "1-2", [b("payload"), b("p3"), b("mq-key"), b("k")], origin);
  eq([plain.headers === origin, only.headers === origin, keyed.headers === origin], [
    true,
    true,
    true,
  ]);
  eq([keyed.key, new TextDecoder().decode(keyed.payload as Uint8Array)], ["k", "p3"]);
  const withHeaders = messageOf("s", "1-3", [b("payload"), b("p4"), b("level"), b("info")], origin);
  eq(withHeaders.headers === origin, false);
  eq(withHeaders.headers, { level: "info", "redis-stream": "s" });
  eq(origin, { "redis-stream": "s" }, "the shared object is not changed");
  // Without an origin, each message has an object of its own.
  const a = messageOf("s", "2-0", [b("payload"), b("q")]);
  const c = messageOf("s", "2-1", [b("payload"), b("q")]);
  eq([a.headers === c.headers, a.headers], [false, { "redis-stream": "s" }]);
});

Deno.test("redis in: reserved names are told by their bytes (a longer or shorter name is a header)", () => {
  const m = messageOf("s", "1-0", [
    b("payload"),
    b("p"),
    b("payloads"),
    b("1"),
    b("mq-i"),
    b("2"),
    b("mq-id"),
    b("dropped"),
    b("mq-headers"),
    b('{"payload":"taken"}'),
    b("mq-keyx"),
    b("3"),
  ]);
  eq(m.headers, {
    payloads: "1",
    "mq-i": "2",
    payload: "taken",
    "mq-keyx": "3",
    "redis-stream": "s",
  });
  eq([new TextDecoder().decode(m.payload as Uint8Array), m.key, m.id], [
    "p",
    undefined,
    "redis:s:1-0",
  ]);
});
