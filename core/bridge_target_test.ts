import { deepStrictEqual as eq, throws } from "node:assert/strict";
import { compileTarget } from "./bridge_target.ts";
import { ReceivedMessage } from "./message.ts";
import { MqError } from "./errors.ts";

const msg = (key?: string, headers?: Record<string, string>) =>
  new ReceivedMessage("orders", 2, {
    offset: 5,
    timestamp: 0,
    payload: new Uint8Array(),
    key,
    headers,
  }, 1);

/** Asserts `fn` throws an MqError INVALID_ARGUMENT with exactly `message`. */
function refuses(fn: () => unknown, message: string) {
  throws(fn, (e) => {
    eq(MqError.is(e, "INVALID_ARGUMENT"), true);
    eq((e as Error).message, message);
    return true;
  });
}

Deno.test("compileTarget: the default is the topic", () => {
  eq(compileTarget()("orders", msg()), "orders");
  eq(compileTarget("{topic}")("a.b", msg()), "a.b");
});

Deno.test("compileTarget: every placeholder, and text around them", () => {
  const t = compileTarget("mq/{topic}/{partition}/{key}/{header.region}-{header.a.b}!");
  eq(t("orders", msg("c-1", { region: "eu", "a.b": "x" })), "mq/orders/2/c-1/eu-x!");
  eq(compileTarget("fixed")("orders", msg()), "fixed");
  eq(compileTarget("{key}{key}")("orders", msg("k")), "kk");
});

Deno.test("compileTarget: a placeholder without a value stops with the message's place", () => {
  refuses(
    () => compileTarget("{key}")("orders", msg()),
    '--target "{key}": message orders/2/5 has no key',
  );
  refuses(
    () => compileTarget("t.{header.region}")("orders", msg("k", { other: "1" })),
    '--target "t.{header.region}": message orders/2/5 has no header "region"',
  );
});

Deno.test("compileTarget: unknown placeholders, unbalanced braces and an empty template", () => {
  refuses(
    () => compileTarget("{nope}"),
    '--target "{nope}": unknown placeholder {nope}; use {topic}, {key}, {partition} or {header.NAME}',
  );
  refuses(
    () => compileTarget("{header.}"),
    '--target "{header.}": unknown placeholder {header.}; use {topic}, {key}, {partition} or {header.NAME}',
  );
  refuses(() => compileTarget("a{topic"), '--target "a{topic": unbalanced "{" at character 2');
  refuses(() => compileTarget("a}b"), '--target "a}b": unbalanced "}" at character 2');
  refuses(() => compileTarget("{a{topic}"), '--target "{a{topic}": unbalanced "{" at character 1');
  refuses(() => compileTarget(""), '--target "": is empty; give a template such as "{topic}"');
});
