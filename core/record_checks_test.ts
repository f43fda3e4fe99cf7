/**
 * The header rules of a publish (`_record_checks.ts`): every value a string
 * with a named header, and the headers as JSON at most 64 KiB, measured in
 * UTF-8 bytes of the JSON (escapes included), on the memory backend.
 */
import { deepStrictEqual as eq, rejects } from "node:assert/strict";
import { Mq } from "./client.ts";
import { MemoryAdapter } from "../adapters/memory/mod.ts";
import { MqError } from "./errors.ts";

const LIMIT = 64 * 1024;

async function refused(headers: Record<string, unknown>, message: string) {
  const mq = new Mq(new MemoryAdapter());
  await rejects(
    mq.publish("t", "x", { headers: headers as Record<string, string> }),
    (e: unknown) => {
      eq(MqError.is(e, "INVALID_ARGUMENT"), true, String(e));
      eq((e as Error).message.includes(message), true, (e as Error).message);
      return true;
    },
  );
  await mq.close();
}

async function taken(headers: Record<string, string>) {
  const mq = new Mq(new MemoryAdapter());
  await mq.publish("t", "x", { headers });
  const [m] = (await mq.subscribe("t", { follow: false }).take(1))!;
  eq(m.headers, headers);
  await mq.close();
}

Deno.test("headers: a value that is not a string, or a header without a name, is refused", async () => {
  await refused({ a: "1", b: 2 }, `header "b" must have a name and a string value`);
  await refused({ "": "x" }, `header "" must have a name and a string value`);
});

Deno.test("headers: the JSON's UTF-8 bytes count, escapes and multi-byte text included", async () => {
  // 11,000 control characters: 11,000 UTF-16 units, 66,000 bytes of JSON escapes.
  await refused({ c: "\u0001".repeat(11_000) }, `headers must not exceed ${LIMIT} bytes`);
  // 22,000 three-byte characters: 66,000 bytes of UTF-8.
  await refused({ e: "€".repeat(22_000) }, `headers must not exceed ${LIMIT} bytes`);
  await refused({ a: "x".repeat(LIMIT) }, `headers must not exceed ${LIMIT} bytes`);
  // {"a":"xxx..."} is 8 bytes besides the value: exactly the limit is taken.
  await taken({ a: "x".repeat(LIMIT - 8) });
  await refused({ a: "x".repeat(LIMIT - 7) }, `headers must not exceed ${LIMIT} bytes`);
  await taken({ c: "\u0001".repeat(10_000), e: "€".repeat(1000), many: "y" });
});
