import { deepStrictEqual as eq } from "node:assert/strict";
import { callerFolder } from "./main.ts";

Deno.test("cli: INIT_CWD is the caller's folder only when mq runs in the checkout (deno task)", () => {
  const checkout = "/src/mq/";
  eq(callerFolder("/src/mq", "/home/me/work", checkout), "/home/me/work");
  eq(callerFolder("/src/mq/", "/home/me/work", checkout), "/home/me/work");
  // The installed mq, run elsewhere with a stale INIT_CWD from some npm script: the real folder.
  eq(callerFolder("/home/me/other", "/home/me/work", checkout), "/home/me/other");
  eq(callerFolder("/src/mq", undefined, checkout), "/src/mq");
  eq(callerFolder("/src/mq", "", checkout), "/src/mq");
});
