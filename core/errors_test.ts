import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { MqError } from "./errors.ts";
import { connect } from "../mod.ts";

Deno.test("core: an MqError thrown by a lazily loaded adapter is an instanceof MqError", async () => {
  const saved = Deno.env.get("DENO_KV_ACCESS_TOKEN");
  Deno.env.delete("DENO_KV_ACCESS_TOKEN");
  try {
    const e = await connect("kv:https://example.invalid/db").then(() => undefined, (e) => e);
    ok(e instanceof MqError, String(e));
    eq([MqError.is(e, "UNREACHABLE"), MqError.is(e, "IO"), MqError.is(new Error("x"))], [
      true,
      false,
      false,
    ]);
  } finally {
    if (saved !== undefined) Deno.env.set("DENO_KV_ACCESS_TOKEN", saved);
  }
});
