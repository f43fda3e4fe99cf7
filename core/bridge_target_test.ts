import { deepStrictEqual as eq, throws } from "node:assert/strict";
import { compileTarget } from "./bridge_target.ts";
import { ReceivedMessage } from "./message.ts";
import { MqError } from "./errors.ts";

const message = (key?: string, headers?: Record<string, string>) =>
  new ReceivedMessage("orders", 3, {
    offset: 42,
    timestamp: 0,
    payload: new Uint8Array(),
    key,
    headers,
  }, 1);

/** The message and code of what `fn` throws. */
function failure(fn: () => unknown): [string, string] {
  try {
    fn();
  } catch (e) {
    if (MqError.is(e)) return [e.code, e.message];
    throw e;
  }
  throw new Error("did not throw");
}

Deno.test("compileTarget fills {topic}, {key}, {partition} and {header.NAME}", () => {
  eq(compileTarget()("orders", message()), "orders");
  eq(compileTarget("fixed")("orders", message()), "fixed");
  const t = compileTarget("mq.{topic}.{partition}.{key}.{header.region}");
  eq(t("orders", message("k1", { region: "eu" })), "mq.orders.3.k1.eu");
});

Deno.test("compileTarget refuses unknown placeholders and unbalanced braces", () => {
  eq(failure(() => compileTarget("{nope}")), [
    "INVALID_ARGUMENT",
    '--target "{nope}": unknown placeholder {nope} (use {topic}, {key}, {partition} or {header.NAME})',
  ]);
  eq(failure(() => compileTarget("a.{topic")), [
    "INVALID_ARGUMENT",
    '--target "a.{topic": unbalanced "{" at 3',
  ]);
  eq(failure(() => compileTarget("a}")), [
    "INVALID_ARGUMENT",
    '--target "a}": unbalanced "}" at 2',
  ]);
  eq(failure(() => compileTarget("{header.}")), [
    "INVALID_ARGUMENT",
    '--target "{header.}": unknown placeholder {header.} (use {topic}, {key}, {partition} or {header.NAME})',
  ]);
});

Deno.test("a message without the value of a placeholder is an error naming it", () => {
  eq(failure(() => compileTarget("{key}")("orders", message())), [
    "INVALID_ARGUMENT",
    '--target "{key}": message orders/3/42 has no key',
  ]);
  eq(failure(() => compileTarget("{header.region}")("orders", message("k"))), [
    "INVALID_ARGUMENT",
    '--target "{header.region}": message orders/3/42 has no header region',
  ]);
  throws(() => compileTarget("{key}")("orders", message()), MqError);
});
