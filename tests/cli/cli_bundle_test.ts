/** `cli/mq.js`, the bundle `deno task mq` and the installed `mq` run, is built from the sources as they are. */
import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { bundle, HEADER, ROOT } from "../../scripts/bundle.ts";

Deno.test("cli: cli/mq.js is up to date with the sources (else: deno task bundle)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mq-bundle-" });
  try {
    await bundle(`${dir}/mq.js`);
    const fresh = await Deno.readTextFile(`${dir}/mq.js`);
    const committed = await Deno.readTextFile(`${ROOT}cli/mq.js`);
    ok(committed.startsWith(HEADER));
    eq(
      committed === fresh,
      true,
      "cli/mq.js differs from a fresh bundle of the sources: run `deno task bundle` and commit cli/mq.js",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: the bundle reads no commander, no kv and no nats module when it starts", async () => {
  const code = await Deno.readTextFile(`${ROOT}cli/mq.js`);
  eq(code.match(/^import\b.*$/gm) ?? [], [], "no static imports");
  eq([...code.matchAll(/\bimport\("([^"]+)"\)/g)].map((m) => m[1]), ["node:zlib"]);
});

Deno.test("cli: errors of adapters loaded beside the bundle keep their exit codes and one line", async () => {
  const home = await Deno.makeTempDir({ prefix: "mq-bundle-err-" });
  const run = async (entry: string, args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        "-A",
        "--config",
        `${ROOT}deno.json`,
        `${ROOT}cli/${entry}`,
        ...args,
      ],
      env: { MQ_HOME: `${home}/data`, XDG_CONFIG_HOME: `${home}/config`, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    return [out.code, new TextDecoder().decode(out.stderr)];
  };
  try {
    const cases = [
      ["--url", "nats://u:sekrit@127.0.0.1:1?bogus=1", "pub", "t", "x"], // nats: INVALID_URL, exit 2
      ["--url", "kv:https://example.invalid/db", "pub", "t", "x"], // kv: no token, exit 1
    ];
    for (const args of cases) {
      const [code, err] = await run("mq.js", args);
      eq([code, err], await run("main.ts", args), args.join(" "));
      ok(/^mq: error: [^\n]+\n$/.test(err as string), err as string);
      ok(!(err as string).includes("sekrit"), err as string);
    }
    eq((await run("mq.js", cases[0]))[0], 2);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
