/**
 * Living with mq in a shell: help with examples everywhere, suggestions,
 * completions, progress and colour on a terminal (under `script`, which gives
 * the command a pseudo-terminal), `mq bench`, and the three ways to run mq.
 */
import { deepStrictEqual as eq, match, ok } from "node:assert/strict";
import type { CommandDefinition } from "../../cli/definition.ts";
import { helpText } from "../../cli/help.ts";
import { loadProgram } from "../../cli/registry.ts";

const PROGRAM = await loadProgram();
import { cliTest, envFor, errorLine, MQ, mq, mqOnPath, withHome } from "./_mq.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const dec = new TextDecoder();

/** `s` quoted for sh. */
const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
/** The mq command line, for sh. */
const MQ_SH = MQ.map(q).join(" ");

const SCRIPT = ["/usr/bin/script", "/bin/script"].find((p) => {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
});

/**
 * Runs `shell` (sh) on a pseudo-terminal (`script -qfec`, util-linux) in
 * `home`; resolves to what appeared on the terminal and the exit code.
 */
async function onTerminal(
  home: string,
  shell: string,
  env: Record<string, string> = {},
): Promise<{ code: number; screen: string }> {
  const out = await new Deno.Command(SCRIPT!, {
    args: ["-qfec", shell, "/dev/null"],
    cwd: home,
    env: { ...envFor(home, env), TERM: "xterm" },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, screen: dec.decode(out.stdout) };
}

const terminalTest = (name: string, fn: () => Promise<void>) =>
  Deno.test({
    name,
    ignore: SCRIPT === undefined && Deno.env.get("CI") !== "true",
    sanitizeResources: false,
    sanitizeOps: false,
    fn,
  });

// ---------------------------------------------------------------- help

/** Every command and subcommand, as its path of names. */
function commandPaths(list: readonly CommandDefinition[], prefix: string[] = []): string[][] {
  return list.flatMap((c) => [
    [...prefix, c.name],
    ...commandPaths(c.subcommands ?? [], [...prefix, c.name]),
  ]);
}

Deno.test("cli: every command and subcommand's help has examples", () => {
  const paths = commandPaths(PROGRAM.commands);
  ok(paths.length >= 38, `${paths.length} commands`);
  const missing = paths.filter((path) => !helpText(PROGRAM, path).includes("\nExamples:\n  ")).map((
    p,
  ) => p.join(" "));
  eq(missing, []);
});

Deno.test("cli: mq help <command> <subcommand>, and close matches for typos", () =>
  withHome(async (h) => {
    const create = await mq(h, ["help", "topics", "create"]);
    eq(create.code, 0, create.err);
    ok(create.out.startsWith("Usage: mq topics create [options] <topic>\n"), create.out);
    ok(create.out.includes("\nExamples:\n  mq topics create orders --partitions 4"), create.out);
    eq((await mq(h, ["topics", "create", "--help"])).out, create.out);
    const pub = await mq(h, ["help", "pub"]);
    ok(pub.out.includes("mq pub events < events.log"), pub.out);

    const cases: [string[], string][] = [
      [["help", "pbu"], 'unknown command "pbu" for mq (did you mean pub?); see mq --help'],
      [
        ["help", "topics", "craete"],
        'unknown command "craete" for mq topics (did you mean create?); see mq topics --help',
      ],
      [["help", "zzzzz"], 'unknown command "zzzzz" for mq; see mq --help'],
      [["pbu", "t", "x"], "unknown command 'pbu' (Did you mean pub?)"],
      [
        ["topics", "craete", "x"],
        "unknown command 'craete' for 'mq topics' (Did you mean create?)",
      ],
      [["topics", "craete"], "unknown command 'craete' for 'mq topics' (Did you mean create?)"],
      [["dlq", "replya", "t"], "unknown command 'replya' for 'mq dlq' (Did you mean replay?)"],
      [["topics", "lst"], "unknown command 'lst' for 'mq topics' (Did you mean ls?)"],
      [["groups", "rest"], "unknown command 'rest' for 'mq groups' (Did you mean reset?)"],
      [["sub", "t", "--fromm", "end"], "unknown option '--fromm' (Did you mean --from?)"],
      [["dlq"], "mq dlq needs a subcommand: ls, replay, purge (see mq dlq --help)"],
      [
        ["groups", "rest", "t", "g"],
        "unknown command 'rest' for 'mq groups' (Did you mean reset?)",
      ],
      [["groups", "t", "extra"], "too many arguments for 'groups'. Expected 1 argument but got 2."],
      [["topics", "x"], "too many arguments for 'topics'. Expected 0 arguments but got 1."],
    ];
    for (const [args, message] of cases) {
      const r = await mq(h, args);
      eq([r.code, errorLine(r)], [2, `mq: error: ${message}`], args.join(" "));
    }
  }));

Deno.test("cli: mq info --help tells the whole resolution order, MQ_ENV included", () =>
  withHome(async (h) => {
    const r = await mq(h, ["info", "--help"]);
    eq(r.code, 0);
    ok(r.out.includes("\nExamples:\n  mq info "), r.out);
    const order = r.out.slice(r.out.indexOf("The backend is the first of:")).replace(/\s+/g, " ");
    ok(
      order.startsWith(
        "The backend is the first of: --url, MQ_URL, --context / MQ_CONTEXT, MQ_ENV (the URL of that name in mq.json,",
      ),
      order,
    );
    ok(order.includes("the current context (mq context use), file:$MQ_HOME"), order);
  }));

// ---------------------------------------------------------------- completions

Deno.test("cli: bash completions skip global options and their values, offer --help, not --version on subcommands", () =>
  withHome(async (h) => {
    await Deno.writeTextFile(`${h}/c.bash`, (await mq(h, ["completions", "bash"])).out);
    const env = await mqOnPath(h);
    const words = (...w: string[]) =>
      `COMP_WORDS=(${w.map(q).join(" ")}); COMP_CWORD=${
        w.length - 1
      }; _mq; echo "[\${COMPREPLY[*]}]"`;
    const line = (l: string) =>
      `COMP_LINE=${
        q(l)
      }; COMP_POINT=${l.length}; _mq; echo "[\${COMPREPLY[*]}]"; unset COMP_LINE COMP_POINT`;
    const out = await new Deno.Command("bash", {
      args: [
        "-c",
        [
          `source ${q(`${h}/c.bash`)}`,
          words("mq", "-q", "topics", "cr"),
          words("mq", "--url", "x", "pub", "--he"),
          words("mq", "--context", "dev", "-q", "topics", "create", "t", "--par"),
          words("mq", "pub", "--ver"),
          words("mq", "--ver"),
          words("mq", "--url", ""),
          words("mq", "help", "top"),
          words("mq", "help", "topics", "p"),
          line("mq --url file:/x/y dlq re"),
          line("mq --url=kv:/a sub t --fo"),
        ].join("; "),
      ],
      env,
      clearEnv: true,
    }).output();
    eq(dec.decode(out.stdout).split("\n"), [
      "[create]",
      "[--header --help]",
      "[--partitions]",
      "[]",
      "[--version]",
      "[]",
      "[topics top]",
      "[purge]",
      "[replay]",
      "[--format]",
      "",
    ]);
  }));

Deno.test("cli: the fish script asks mq, which says what each word is", () =>
  withHome(async (h) => {
    const fish = (await mq(h, ["completions", "fish"])).out;
    ok(fish.includes("complete -c mq -f -a '(__mq_complete)'"), fish);
    ok(fish.includes("env MQ_COMPLETE_DESCRIPTIONS=1 mq __complete $words"), fish);
    const described = await mq(h, ["__complete", "topics", "cr"], {
      env: { MQ_COMPLETE_DESCRIPTIONS: "1" },
    });
    eq(described.out, ":words\ncreate\tcreate a topic with settings\n");
    const zsh = (await mq(h, ["completions", "zsh"])).out;
    ok(
      zsh.startsWith("autoload -U +X bashcompinit && bashcompinit\n_mq() {") ||
        zsh.includes("\n_mq() {"),
    );
  }));

cliTest(
  "completions offer the store's topics, a topic's groups, contexts and formats",
  async (h) => {
    for (const t of ["orders", "logs"]) eq((await mq(h, ["pub", t, "x", "-q"])).code, 0);
    eq((await mq(h, ["take", "orders", "-g", "billing"])).code, 0);
    eq((await mq(h, ["context", "add", "dev", "memory:"])).code, 0);
    const offered = async (...words: string[]) => {
      // A generous deadline: a busy test machine can be slow to reach a broker.
      const r = await mq(h, ["__complete", ...words], {
        env: { MQ_COMPLETE_DEADLINE_MS: "20000" },
      });
      eq(r.code, 0, r.err);
      return r.out.trimEnd().split("\n");
    };
    eq(await offered("sub", ""), [":words", "logs", "orders"].sort((a, b) => a < b ? -1 : 1));
    eq(await offered("sub", "or"), [":words", "orders"]);
    eq(await offered("sub", "orders", "--group", ""), [":words", "billing"]);
    eq(await offered("sub", "orders", "-g", "b"), [":words", "billing"]);
    eq(await offered("groups", "reset", "orders", ""), [":words", "billing"]);
    eq(await offered("groups", "r"), [":words", "reset", "rm"]);
    eq(await offered("--context", ""), [":words", "dev"]);
    eq(await offered("sub", "orders", "--format", ""), [":words", "raw", "json"]);
    eq(await offered("sub", "orders", "--format="), [":words", "--format=raw", "--format=json"]);
    eq(await offered("completions", ""), [":words", "bash", "zsh", "fish"]);
    eq(await offered("work", "orders", "--", "./"), [":files"]);
  },
);

Deno.test("cli: completions and reading commands create no store", () =>
  withHome(async (h) => {
    const kv = `kv:${h}/none/x.sqlite`;
    eq((await mq(h, ["__complete", "--url", kv, "sub", ""])).out, ":words\n");
    eq((await mq(h, ["__complete", "--url", `file:${h}/nofs`, "sub", ""])).out, ":words\n");
    for (const args of [["topics"], ["groups", "t"], ["topics", "info", "t"], ["sub", "t", "-e"]]) {
      const r = await mq(h, ["--url", kv, ...args]);
      eq(
        [r.code, errorLine(r)],
        [
          1,
          `mq: error: Deno KV file ${h}/none/x.sqlite does not exist (a command that writes, such as mq pub, creates it)`,
        ],
        args.join(" "),
      );
    }
    const info = await mq(h, ["--url", kv, "info"]);
    eq([info.code, info.out.trim().split("\n").at(-1)], [
      0,
      "capabilities: unknown (the store does not exist yet)",
    ]);
    const fsTopics = await mq(h, ["--url", `file:${h}/nofs`, "topics"]);
    eq([fsTopics.code, fsTopics.err], [0, "mq: no topics yet (mq pub <topic> creates one)\n"]);
    eq([...Deno.readDirSync(h)].map((e) => e.name).sort(), []);
  }));

// ---------------------------------------------------------------- progress and colour

/** What starts a redrawn progress line: a carriage return and "erase line". */
const CLEAR = String.raw`\r\x1b\[2K`;
/** A redrawn line matching `pattern`. */
const line = (pattern: string) => new RegExp(CLEAR + pattern);
const PROGRESS = (label: string) => line(String.raw`${label}: \d+ messages, \d+/s`);

terminalTest(
  "cli: progress on a terminal for pub of stdin and sub; -q and a redirected stderr silence it",
  () =>
    withHome(async (h) => {
      const pub = await onTerminal(h, `printf 'a\\nb\\nc\\n' | ${MQ_SH} pub t`);
      eq(pub.code, 0, pub.screen);
      match(
        pub.screen,
        line(String.raw`pub: 3 messages, \d+/s${CLEAR}mq: published 3 messages to "t"`),
      );
      const quiet = await onTerminal(h, `printf 'd\\n' | ${MQ_SH} -q pub t`);
      eq([quiet.code, quiet.screen], [0, ""]);
      const args = await onTerminal(h, `${MQ_SH} pub t e`);
      ok(!args.screen.includes("pub:"), "no progress for arguments");
      const piped = await onTerminal(h, `printf 'f\\n' | ${MQ_SH} pub t 2>err.txt`);
      eq(piped.screen, "");
      match(await Deno.readTextFile(`${h}/err.txt`), /^mq: published 1 message to "t" in \S+s/);

      const sub = await onTerminal(h, `${MQ_SH} sub t -e > out.txt`);
      eq(sub.code, 0, sub.screen);
      match(sub.screen, new RegExp(String.raw`^${CLEAR}sub: 6 messages, \d+/s${CLEAR}$`));
      eq(await Deno.readTextFile(`${h}/out.txt`), "a\nb\nc\nd\ne\nf\n");
      eq((await onTerminal(h, `${MQ_SH} sub t -e -q > out.txt`)).screen, "");
      eq((await onTerminal(h, `${MQ_SH} sub t -e > out.txt 2>err.txt`)).screen, "");
      eq(await Deno.readTextFile(`${h}/err.txt`), "");
      // Messages on the terminal itself: no progress line among them.
      eq((await onTerminal(h, `${MQ_SH} sub t -e -n 2`)).screen, "a\r\nb\r\n");
    }),
);

terminalTest(
  "cli: progress on a terminal for work, bridge and bench; -q silences it",
  () =>
    withHome(async (h) => {
      eq((await mq(h, ["pub", "t", "1", "2", "3"])).code, 0);
      const work = await onTerminal(h, `${MQ_SH} work t -e -- true`);
      eq(work.code, 0, work.screen);
      match(work.screen, line(String.raw`work: \d+ done, 0 failed, \d+ running, \d+/s`));
      eq((await mq(h, ["pub", "t", "4"])).code, 0);
      ok(!(await onTerminal(h, `${MQ_SH} -q work t -e -- true`)).screen.includes("work:"));

      const bridge = await onTerminal(h, `${MQ_SH} bridge --to ${q(`file:${h}/mirror`)} -e`);
      eq(bridge.code, 0, bridge.screen);
      match(bridge.screen, PROGRESS("bridge"));
      const quietBridge = await onTerminal(h, `${MQ_SH} bridge -q --to ${q(`file:${h}/m2`)} -e`);
      eq([quietBridge.code, quietBridge.screen], [0, ""]);

      const bench = await onTerminal(h, `${MQ_SH} bench sub -n 500 --json > b.json`);
      eq(bench.code, 0, bench.screen);
      match(bench.screen, PROGRESS("bench sub"));
      eq((await onTerminal(h, `${MQ_SH} -q bench -n 200 > b.json`)).screen, "");
    }),
);

terminalTest(
  "cli: colour only on a terminal, never with NO_COLOR or --no-color",
  () =>
    withHome(async (h) => {
      const red = (message: string) => `mq: \x1b[31merror\x1b[0m: ${message}\r\n`;
      const plain = (message: string) => `mq: error: ${message}\r\n`;
      const typo = "unknown command 'craete' for 'mq topics' (Did you mean create?)";
      const name = 'topic name "../x" may contain only A-Z a-z 0-9 . _ -';
      // NO_COLOR="" counts as unset (no-color.org); the case must not inherit the caller's.
      const unset = { NO_COLOR: "" };
      const cases: [string, Record<string, string>, string][] = [
        [`${MQ_SH} topics craete`, unset, red(typo)],
        [`${MQ_SH} topics craete`, { NO_COLOR: "1" }, plain(typo)],
        [`${MQ_SH} --no-color topics craete`, unset, plain(typo)],
        [`${MQ_SH} topics craete --no-color`, unset, plain(typo)],
        [`${MQ_SH} pub ../x y`, unset, red(name)],
        [`${MQ_SH} pub ../x y`, { NO_COLOR: "1" }, plain(name)],
        [`${MQ_SH} --no-color pub ../x y`, unset, plain(name)],
      ];
      for (const [shell, env, screen] of cases) {
        const r = await onTerminal(h, shell, env);
        eq([r.code, r.screen], [2, screen], `${JSON.stringify(env)} ${shell.slice(MQ_SH.length)}`);
      }
      // Not a terminal: no colour.
      const piped = await mq(h, ["pub", "../x", "y"], { env: unset });
      eq(piped.err, `mq: error: ${name}\n`);
    }),
);

// ---------------------------------------------------------------- bench

const BENCH_FIELDS = [
  "mode",
  "backend",
  "messages",
  "size",
  "batch",
  "seconds",
  "msgs_per_sec",
  "mb_per_sec",
  "p50_ms",
  "p99_ms",
  "p999_ms",
];

cliTest(
  "mq bench pub|sub|work --json: fixed fields, the figures, the throwaway topic removed",
  async (h, backend) => {
    eq((await mq(h, ["pub", "keep", "x", "-q"])).code, 0);
    for (const mode of ["pub", "sub", "work"]) {
      const r = await mq(h, [
        "bench",
        mode,
        "-n",
        "300",
        "--size",
        "64",
        "--batch",
        "50",
        "--json",
      ]);
      eq(r.code, 0, r.err);
      eq(r.err, "");
      const report = JSON.parse(r.out);
      eq(Object.keys(report), BENCH_FIELDS);
      eq(
        [report.mode, report.messages, report.size, report.batch],
        [mode, 300, 64, 50],
      );
      eq(report.backend.startsWith(backend === "kv" ? "kv:" : "file:"), true, report.backend);
      ok(report.seconds > 0 && report.msgs_per_sec > 0 && report.mb_per_sec >= 0, r.out);
      ok(Math.abs(report.msgs_per_sec - 300 / report.seconds) <= 300 / report.seconds * 0.01 + 1);
      ok(0 <= report.p50_ms && report.p50_ms <= report.p99_ms && report.p99_ms <= report.p999_ms);
    }
    const human = await mq(h, ["bench", "-n", "100"]);
    eq(human.code, 0, human.err);
    const lines = human.out.split("\n");
    match(lines[0], /^mq bench pub on \S+: 100 messages of 128 bytes, batches of 100$/);
    match(lines[1], /^ {2}published in \d+\.\d{3}s: \d+ msgs\/s, [\d.]+ MB\/s$/);
    match(
      lines[2],
      /^ {2}latency publish->receive: p50 [\d.]+ ms, p99 [\d.]+ ms, p99\.9 [\d.]+ ms$/,
    );
    const topics = JSON.parse((await mq(h, ["topics", "--json"])).out);
    eq(topics.map((t: { name: string }) => t.name), ["keep"]);
  },
  { backends: ["file", "kv"] },
);

Deno.test("cli: mq bench refuses a bad mode, count or size with exit 2", () =>
  withHome(async (h) => {
    const cases: [string[], string][] = [
      [["bench", "zzz"], 'mq: error: unknown bench mode "zzz": use pub, sub or work'],
      [
        ["bench", "-n", "0"],
        "mq: error: option '-n, --count <n>' argument '0' is invalid. --count must be a whole number of at least 1",
      ],
      [
        ["bench", "--size", "2000000"],
        "mq: error: --size must be at most 1048576 (the largest message a topic takes by default)",
      ],
    ];
    for (const [args, line] of cases) {
      const r = await mq(h, args);
      eq([r.code, errorLine(r)], [2, line]);
    }
  }));

// ---------------------------------------------------------------- three ways to run mq

Deno.test("cli: the deno task install shim, deno task mq and cli/main.ts behave the same", () =>
  withHome(async (h) => {
    const env = { ...envFor(h), DENO_INSTALL_ROOT: `${h}/inst` };
    const install = await new Deno.Command("deno", {
      args: ["task", "--quiet", "install"],
      cwd: ROOT,
      env,
      clearEnv: true,
    }).output();
    eq(install.code, 0, dec.decode(install.stderr));
    eq(dec.decode(install.stdout) + dec.decode(install.stderr), "", "install is quiet");
    const shim = await Deno.readTextFile(`${h}/inst/bin/mq`);
    const task = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).tasks.mq as string;
    const flags = (s: string) =>
      s.split(/\s+/).filter((w) => /^--(allow-|quiet$|v8-flags=)/.test(w)).sort();
    eq(flags(shim), flags(task));
    ok(flags(task).includes("--quiet"));
    // The young generation's size that keeps a bridge of 1,000,000 messages under 150 MB.
    ok(flags(task).includes("--v8-flags=--max-semi-space-size=2"), task);

    const runners: [string, string[], string][] = [
      ["shim", [`${h}/inst/bin/mq`], h],
      ["task", ["deno", "task", "--quiet", "mq"], ROOT],
      ["main.ts", MQ, h],
    ];
    const results: string[] = [];
    for (const [name, argv, cwd] of runners) {
      const run = async (args: string[]) => {
        const out = await new Deno.Command(argv[0], {
          args: [...argv.slice(1), ...args],
          env,
          clearEnv: true,
          cwd,
        }).output();
        return `${out.code} ${dec.decode(out.stdout)}|${dec.decode(out.stderr)}`;
      };
      results.push(
        [
          await run(["pub", `t-${name}`, "x", "-q"]),
          await run(["sub", `t-${name}`, "-e"]),
          await run(["pub", "../x", "y"]),
          await run(["--version"]),
          await run(["topics", "craete"]),
        ].join("\n").replaceAll(`t-${name}`, "t"),
      );
    }
    eq(results[1], results[0], "deno task mq");
    eq(results[2], results[0], "cli/main.ts");
    ok(results[0].startsWith("0 |\n0 x\n|\n2 |mq: error: topic name"), results[0]);
  }));
