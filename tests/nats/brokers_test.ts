/** The test-broker helper: a missing broker says why the tests skip, once; under CI it fails. */
import { deepStrictEqual as eq } from "node:assert/strict";

const brokers = new URL("../../scripts/brokers.ts", import.meta.url).href;

async function run(env: Record<string, string>) {
  const code = `import { available } from ${JSON.stringify(brokers)};
const a = available("no-such-broker"), b = available("no-such-broker");
console.log(JSON.stringify([a.ok, b.ok]));`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    out: new TextDecoder().decode(out.stdout),
    err: new TextDecoder().decode(out.stderr),
  };
}

Deno.test("brokers: a missing broker's skip reason is printed once per process", async () => {
  const r = await run({ HOME: Deno.env.get("HOME") ?? "/tmp" });
  eq([r.code, r.out, r.err], [
    0,
    "[false,false]\n",
    "note: no-such-broker is not installed (apt-get install no-such-broker); skipping tests that need it\n",
  ]);
});

Deno.test("brokers: under CI=true a missing broker is a failure", async () => {
  const r = await run({ HOME: Deno.env.get("HOME") ?? "/tmp", CI: "true" });
  eq(r.code, 1);
  eq(
    r.err.includes(
      "CI=true: no-such-broker is not installed (apt-get install no-such-broker), and tests need it",
    ),
    true,
    r.err,
  );
});
