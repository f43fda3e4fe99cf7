/**
 * What the start-up commands do not do (speed itself is measured by
 * `deno task bench:startup`, never in a test): they call no timer. In Deno
 * 2.9 the first call of `setTimeout`, `clearTimeout`, `setInterval` or
 * `clearInterval` loads the timers of `node:timers`, several milliseconds
 * of a run that takes tens; `mq sub t -e` paid it for a `clearTimeout` of a
 * timer it never set.
 */
import { deepStrictEqual as eq } from "node:assert/strict";
import { envFor, MQ } from "./_mq.ts";

/** Replaces the timer functions with ones that say on stderr who called them. */
const TRAP = `
for (const k of ["setTimeout", "clearTimeout", "setInterval", "clearInterval"]) {
  const real = globalThis[k];
  globalThis[k] = (...a) => {
    console.error("timer: " + k + " " + (new Error().stack ?? "").split("\\n")[2]?.trim());
    return real(...a);
  };
}
`;

Deno.test("cli: pub, sub -e, topics, groups, info and help call no timer", async () => {
  const home = await Deno.makeTempDir({ prefix: "mq-startup-" });
  try {
    await Deno.writeTextFile(`${home}/trap.js`, TRAP);
    const run = async (...words: string[]) => {
      // `deno run --preload trap.js ...`: the trap runs before mq's modules.
      const out = await new Deno.Command(MQ[0], {
        args: [MQ[1], "--preload", `${home}/trap.js`, ...MQ.slice(2), ...words],
        env: envFor(home),
        clearEnv: true,
        stdout: "null",
      }).output();
      const err = new TextDecoder().decode(out.stderr);
      return { code: out.code, timers: err.split("\n").filter((l) => l.startsWith("timer:")) };
    };
    eq(await run("pub", "t", "x", "-q"), { code: 0, timers: [] });
    eq(await run("sub", "t", "-e", "-q"), { code: 0, timers: [] });
    eq(await run("take", "t", "-g", "g"), { code: 0, timers: [] });
    for (
      const words of [["topics"], ["groups", "t"], ["info"], ["--help"], [
        "topics",
        "create",
        "--help",
      ]]
    ) {
      eq(await run(...words), { code: 0, timers: [] }, words.join(" "));
    }
    // The trap works: a command that waits sets a timer.
    eq((await run("sub", "t", "-n", "5", "--timeout", "1ms", "-q")).timers.length > 0, true);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
