import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { envFor, errorLine, MQ, mq, mqOnPath, withHome } from "./_mq.ts";

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

Deno.test("cli: bash completions of `mq to` give topics and top", () =>
  withHome(async (h) => {
    const script = (await mq(h, ["completions", "bash"])).out;
    await Deno.writeTextFile(`${h}/c.bash`, script);
    await mq(h, ["pub", "tomatoes", "x", "-q"]);
    const out = await new Deno.Command("bash", {
      env: await mqOnPath(h),
      clearEnv: true,
      args: [
        "-c",
        `source ${h}/c.bash; COMP_WORDS=(mq to); COMP_CWORD=1; _mq; echo "\${COMPREPLY[*]}"; COMP_WORDS=(mq topics create t --par); COMP_CWORD=4; _mq; echo "\${COMPREPLY[*]}"; COMP_WORDS=(mq sub to); COMP_CWORD=2; _mq; echo "\${COMPREPLY[*]}"`,
      ],
    }).output();
    eq(new TextDecoder().decode(out.stdout), "topics top\n--partitions\ntomatoes\n");
    ok(
      (await mq(h, ["completions", "fish"])).out.includes("complete -c mq -f -a '(__mq_complete)'"),
    );
    eq((await mq(h, ["completions", "tcsh"])).code, 2);
  }));

/** Runs mq in `cwd` with only `env` (and the test's folders). */
async function mqIn(h: string, cwd: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(MQ[0], {
    args: [...MQ.slice(1), ...args],
    cwd,
    env: {
      MQ_HOME: `${h}/data`,
      XDG_CONFIG_HOME: `${h}/config`,
      PATH: Deno.env.get("PATH") ?? "",
      ...env,
    },
    clearEnv: true,
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, out: dec.decode(out.stdout), err: dec.decode(out.stderr) };
}

const SCHEMES = "use one of memory:, file:, kv:, nats:";

Deno.test("cli: a stored context or an mq.json environment with an unknown scheme: exit 2 naming it and the file", () =>
  withHome(async (h) => {
    const file = `${h}/config/mq/contexts.json`;
    await Deno.mkdir(`${h}/config/mq`, { recursive: true });
    const stored = JSON.stringify({ contexts: { z: { url: "zz:foo" } } });
    await Deno.writeTextFile(file, stored);
    const r = await mq(h, ["--context", "z", "topics"]);
    eq([r.code, errorLine(r)], [
      2,
      `mq: error: context "z" in ${file}: unknown backend "zz:": ${SCHEMES}`,
    ]);
    const fast = await mq(h, ["pub", "t", "x"], { env: { MQ_CONTEXT: "z" } });
    eq([fast.code, errorLine(fast)], [2, errorLine(r)]);
    eq(await Deno.readTextFile(file), stored);

    await Deno.writeTextFile(`${h}/mq.json`, JSON.stringify({ environments: { dev: "zz:q" } }));
    const env = await mqIn(h, h, ["topics"], { MQ_ENV: "dev" });
    eq([env.code, env.err], [
      2,
      `mq: error: MQ_ENV=dev in ${h}/mq.json: unknown backend "zz:": ${SCHEMES}\n`,
    ]);
  }));

Deno.test("cli: a contexts file of the wrong shape: exit 2 naming the file, for every command; nothing written", () =>
  withHome(async (h) => {
    const file = `${h}/config/mq/contexts.json`;
    await Deno.mkdir(`${h}/config/mq`, { recursive: true });
    const cases: [string, string][] = [
      ['{"contexts":null}', '"contexts" must be an object of NAME: {"url": URL}, not null'],
      ['{"contexts":{"a":5}}', 'context "a" must be {"url": "..."}, not 5'],
      ['{"contexts":{"a":{"url":5}}}', 'context "a" must be {"url": "..."}, not an object'],
      ['{"contexts":{"a":"file:/x"}}', 'context "a" must be {"url": "..."}, not "file:/x"'],
      ["[]", 'expected an object with a "contexts" object'],
      ['{"current":5,"contexts":{}}', '"current" must be a context name, not 5'],
      ["{bad", "not JSON"],
    ];
    for (const [i, [text, why]] of cases.entries()) {
      await Deno.writeTextFile(file, text);
      const commands = i === 0
        ? [["topics"], ["pub", "t", "x"], ["context", "add", "y", "memory:"], [
          "context",
          "use",
          "a",
        ], ["context", "ls"]]
        : [["pub", "t", "x"], ["context", "add", "y", "memory:"]];
      for (const args of commands) {
        const r = await mq(h, args);
        eq(r.code, 2, `${text}: mq ${args.join(" ")}: ${r.err}`);
        ok(
          errorLine(r).startsWith(`mq: error: the contexts file ${file} is not valid: ${why}`),
          `${text}: ${r.err}`,
        );
        eq(await Deno.readTextFile(file), text);
      }
    }
    eq((await Array.fromAsync(Deno.readDir(`${h}/config/mq`))).map((e) => e.name), [
      "contexts.json",
    ]);
  }));

Deno.test("cli: context names such as toString or constructor are no contexts: exit 2, the file kept", () =>
  withHome(async (h) => {
    const file = `${h}/config/mq/contexts.json`;
    eq((await mq(h, ["context", "add", "dev", "memory:"])).code, 0);
    const before = await Deno.readTextFile(file);
    for (const name of ["toString", "constructor", "__proto__"]) {
      const flag = await mq(h, ["--context", name, "topics"]);
      eq([flag.code, errorLine(flag)], [
        2,
        `mq: error: unknown context ${
          JSON.stringify(name)
        } (from --context); known: dev in ${file}`,
      ]);
      const env = await mq(h, ["pub", "t", "x"], { env: { MQ_CONTEXT: name } });
      eq(env.code, 2, env.err);
      for (const verb of name === "constructor" ? ["use", "rm"] : ["use"]) {
        const r = await mq(h, ["context", verb, name]);
        eq([r.code, errorLine(r)], [
          2,
          `mq: error: unknown context ${JSON.stringify(name)} in ${file}`,
        ]);
      }
      eq(await Deno.readTextFile(file), before);
    }
    // An mq.json environment named so is none either.
    await Deno.writeTextFile(`${h}/mq.json`, JSON.stringify({ environments: { dev: "memory:" } }));
    const env = await mqIn(h, h, ["topics"], { MQ_ENV: "constructor" });
    eq([env.code, env.err], [
      2,
      `mq: error: MQ_ENV=constructor is not among the environments of ${h}/mq.json: dev\n`,
    ]);
  }));

Deno.test("cli: an mq.json of the wrong shape: exit 2 naming the file", () =>
  withHome(async (h) => {
    const cases: [string, string][] = [
      ['{"environments":{"dev":5}}', 'environment "dev" must be a backend URL string, not 5'],
      ['{"environments":{"dev":null}}', 'environment "dev" must be a backend URL string, not null'],
      ['{"environments":null}', 'the file must be {"environments": {"NAME": "URL", ...}}'],
      ["[1]", 'the file must be {"environments": {"NAME": "URL", ...}}'],
    ];
    for (const [text, why] of cases) {
      await Deno.writeTextFile(`${h}/mq.json`, text);
      const r = await mqIn(h, h, ["topics"], { MQ_ENV: "dev" });
      eq([r.code, r.err], [2, `mq: error: ${h}/mq.json is not valid: ${why}\n`], text);
    }
    await Deno.remove(`${h}/mq.json`);
    await Deno.writeTextFile(`${h}/deno.json`, JSON.stringify({ mq: { environments: [] } }));
    const deno = await mqIn(h, h, ["topics"], { MQ_ENV: "dev" });
    eq([deno.code, deno.err], [
      2,
      `mq: error: ${h}/deno.json is not valid: "mq" must be {"environments": {"NAME": "URL", ...}}\n`,
    ]);
  }));

Deno.test("cli: relative paths: mq.json's against its folder, context add's made absolute", () =>
  withHome(async (h) => {
    await Deno.mkdir(`${h}/proj/deep/er`, { recursive: true });
    await Deno.mkdir(`${h}/proj/db`);
    await Deno.writeTextFile(
      `${h}/proj/mq.json`,
      JSON.stringify({
        environments: { dev: "file:./data?fsync=never", db: "kv:db/mq.sqlite", mem: "kv::memory:" },
      }),
    );
    const info = async (env: string) =>
      JSON.parse((await mqIn(h, `${h}/proj/deep/er`, ["info", "--json"], { MQ_ENV: env })).out);
    eq((await info("dev")).backend, `file:${h}/proj/data?fsync=never`);
    eq((await info("dev")).file, `${h}/proj/mq.json`);
    eq((await info("db")).backend, `kv:${h}/proj/db/mq.sqlite`);
    eq((await info("mem")).backend, "kv::memory:");
    const pub = await mqIn(h, `${h}/proj/deep/er`, ["pub", "t", "x", "-q"], { MQ_ENV: "dev" });
    eq(pub.code, 0, pub.err);
    ok((await Deno.stat(`${h}/proj/data/log/t`)).isDirectory);

    await Deno.mkdir(`${h}/work`);
    eq((await mqIn(h, `${h}/work`, ["context", "add", "rel", "file:../d"])).code, 0);
    eq((await mqIn(h, `${h}/work`, ["context", "add", "k", "kv:x.sqlite"])).code, 0);
    eq((await mqIn(h, `${h}/work`, ["context", "add", "abs", "file:///srv/mq"])).code, 0);
    const ls = JSON.parse((await mq(h, ["context", "ls", "--json"])).out);
    eq(ls.map((c: { name: string; url: string }) => [c.name, c.url]), [
      ["abs", "file:///srv/mq"],
      ["k", `kv:${h}/work/x.sqlite`],
      ["rel", `file:${h}/d`],
    ]);
  }));

Deno.test("cli: with MQ_ENV, a broken contexts file is not read; a stale current context is an error", () =>
  withHome(async (h) => {
    const file = `${h}/config/mq/contexts.json`;
    await Deno.mkdir(`${h}/config/mq`, { recursive: true });
    await Deno.writeTextFile(file, "{bad");
    await Deno.writeTextFile(`${h}/mq.json`, JSON.stringify({ environments: { dev: "file:d" } }));
    const pub = await mqIn(h, h, ["pub", "t", "x", "-q"], { MQ_ENV: "dev" });
    eq([pub.code, pub.err], [0, ""]);
    eq((await mqIn(h, h, ["sub", "t", "-e"], { MQ_ENV: "dev" })).out, "x\n");

    const stale = JSON.stringify({ current: "gone", contexts: { a: { url: `file:${h}/a` } } });
    await Deno.writeTextFile(file, stale);
    const r = await mq(h, ["topics"]);
    eq([r.code, errorLine(r)], [
      2,
      `mq: error: the current context "gone" is not in ${file}: pick another with mq context use NAME (known: a)`,
    ]);
    eq(await Deno.readTextFile(file), stale);
    eq((await mq(h, ["context", "use", "a"])).code, 0);
    eq((await mq(h, ["context", "show"])).out, `file:${h}/a (from current context: a)\n`);
  }));

Deno.test("cli: under deno task mq, relative paths are the caller's folder (INIT_CWD)", () =>
  withHome(async (h) => {
    const root = new URL("../../", import.meta.url).pathname;
    await Deno.writeTextFile(`${h}/handle.sh`, "#!/bin/sh\ncat >> done.txt\necho >> done.txt\n", {
      mode: 0o755,
    });
    const task = (args: string[], env: Record<string, string> = {}) =>
      new Deno.Command(Deno.execPath(), {
        args: ["task", "--quiet", "--config", `${root}deno.json`, "mq", ...args],
        cwd: h,
        env: envFor(h, { MQ_URL: "file:./data", ...env }),
        clearEnv: true,
        stdout: "piped",
        stderr: "piped",
      }).output();
    const pub = await task(["pub", "t", "a", "b", "-q"]);
    eq(pub.code, 0, new TextDecoder().decode(pub.stderr));
    const work = await task(["work", "t", "-e", "--", "./handle.sh"]);
    eq(work.code, 0, new TextDecoder().decode(work.stderr));
    eq(await Deno.readTextFile(`${h}/done.txt`), "a\nb\n");
    ok((await Deno.stat(`${h}/data`)).isDirectory);
    eq(
      await Deno.stat(`${root}data`).then(() => true, () => false),
      false,
      "nothing in the checkout",
    );
  }));
