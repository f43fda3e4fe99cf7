import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { errorLine, MQ, mq, withHome } from "./_mq.ts";

Deno.test("cli: contexts add/ls/use/rm/show, a 0600 file, secrets hidden", () =>
  withHome(async (h) => {
    eq(
      (await mq(h, ["context", "add", "dev", `file:${h}/dev`, "--description", "laptop"])).code,
      0,
    );
    eq((await mq(h, ["context", "add", "prod", "nats://app:s3cret@127.0.0.1:1"])).code, 0);
    const file = `${h}/config/mq/contexts.json`;
    eq((await Deno.stat(file)).mode! & 0o777, 0o600);
    const ls = await mq(h, ["context", "ls"]);
    ok(ls.out.includes("nats://app:***@127.0.0.1:1") && !ls.out.includes("s3cret"), ls.out);
    eq((await mq(h, ["context", "use", "dev"])).code, 0);
    eq((await mq(h, ["context", "show"])).out, `file:${h}/dev (from current context: dev)\n`);
    eq((await mq(h, ["pub", "t", "x", "-q"])).code, 0);
    ok((await Deno.stat(`${h}/dev/log/t`)).isDirectory, "the current context was used");
    eq(
      (await mq(h, ["context", "show"], { env: { MQ_CONTEXT: "prod" } })).out,
      "nats://app:***@127.0.0.1:1 (from MQ_CONTEXT: prod)\n",
    );
    eq((await mq(h, ["--url", "memory:", "context", "show"])).out, "memory: (from --url)\n");
    eq((await mq(h, ["context", "rm", "prod"])).code, 0);
    eq(
      JSON.parse((await mq(h, ["context", "ls", "--json"])).out).map((c: { name: string }) =>
        c.name
      ),
      ["dev"],
    );
  }));

Deno.test("cli: an unknown context, a broken contexts file, an unknown scheme: exit 2 naming the file; the file is kept", () =>
  withHome(async (h) => {
    const unknown = await mq(h, ["topics"], { env: { MQ_CONTEXT: "nosuch" } });
    eq(unknown.code, 2);
    ok(
      errorLine(unknown).startsWith('mq: error: unknown context "nosuch" (from MQ_CONTEXT)'),
      unknown.err,
    );
    const scheme = await mq(h, ["context", "add", "x", "zz:foo"]);
    eq([scheme.code, errorLine(scheme)], [
      2,
      'mq: error: unknown backend "zz:": use one of memory:, file:, kv:, nats:',
    ]);
    await Deno.mkdir(`${h}/config/mq`, { recursive: true });
    await Deno.writeTextFile(`${h}/config/mq/contexts.json`, "{bad");
    const broken = await mq(h, ["context", "add", "y", "memory:"]);
    eq(broken.code, 2);
    ok(errorLine(broken).includes(`${h}/config/mq/contexts.json is not valid`), broken.err);
    eq(await Deno.readTextFile(`${h}/config/mq/contexts.json`), "{bad");
  }));

Deno.test("cli: MQ_ENV picks a URL from the project's mq.json", () =>
  withHome(async (h) => {
    await Deno.writeTextFile(
      `${h}/mq.json`,
      JSON.stringify({ environments: { dev: `file:${h}/envdev` } }),
    );
    const run = (env: Record<string, string>) =>
      new Deno.Command(MQ[0], {
        args: [...MQ.slice(1), "info", "--json"],
        cwd: h,
        env: {
          ...env,
          MQ_HOME: `${h}/data`,
          XDG_CONFIG_HOME: `${h}/config`,
          PATH: Deno.env.get("PATH") ?? "",
        },
        clearEnv: true,
      }).output();
    const ok1 = await run({ MQ_ENV: "dev" });
    eq(JSON.parse(new TextDecoder().decode(ok1.stdout)).backend, `file:${h}/envdev`);
    const bad = await run({ MQ_ENV: "prod" });
    eq(bad.code, 2);
    ok(
      new TextDecoder().decode(bad.stderr).includes(
        `MQ_ENV=prod is not among the environments of ${h}/mq.json: dev`,
      ),
    );
  }));

Deno.test("cli: bash completions of `mq to` give topics", () =>
  withHome(async (h) => {
    const script = (await mq(h, ["completions", "bash"])).out;
    await Deno.writeTextFile(`${h}/c.bash`, script);
    const out = await new Deno.Command("bash", {
      args: [
        "-c",
        `source ${h}/c.bash; COMP_WORDS=(mq to); COMP_CWORD=1; _mq; echo "\${COMPREPLY[*]}"; COMP_WORDS=(mq topics create t --par); COMP_CWORD=4; _mq; echo "\${COMPREPLY[*]}"`,
      ],
    }).output();
    eq(new TextDecoder().decode(out.stdout), "topics\n--partitions\n");
    ok(
      (await mq(h, ["completions", "fish"])).out.includes(
        'complete -c mq -n "__fish_use_subcommand" -a pub',
      ),
    );
    eq((await mq(h, ["completions", "tcsh"])).code, 2);
  }));
