import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { parseBackendUrl, redactUrl } from "./backend_url.ts";
import { MqError } from "./errors.ts";

Deno.test("backend URLs parse relative paths and query options", () => {
  const u = parseBackendUrl("file:./data?fsync=never");
  assertEquals([u.scheme, u.body, u.params.get("fsync")], ["file", "./data", "never"]);
  assertEquals(parseBackendUrl("nats://u:p@127.0.0.1:4222").scheme, "nats");
  assertThrows(() => parseBackendUrl("/just/a/path"), (e: unknown) => MqError.is(e, "INVALID_URL"));
});

Deno.test("secrets in URLs are shown as ***", () => {
  assertEquals(redactUrl("nats://alice:s3cret@host:4222"), "nats://alice:***@host:4222");
  assertEquals(redactUrl("nats://tok3n@host:4222"), "nats://***@host:4222");
  assertEquals(
    redactUrl("kv:https://api.example/db?token=abc&x=1"),
    "kv:https://api.example/db?token=***&x=1",
  );
  assertEquals(redactUrl("file:./data"), "file:./data");
});
