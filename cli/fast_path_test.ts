import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { type Command, CommanderError } from "commander";
import { buildProgram } from "./program.ts";
import { commandName, FAST_COMMAND_NAMES, parseFast } from "./fast_path.ts";
import { registerPub } from "./commands/pub.ts";
import { registerSub } from "./commands/sub.ts";
import { registerWork } from "./commands/work.ts";
import { registerTake } from "./commands/take.ts";
import { registerPeek } from "./commands/peek.ts";
import { registerRequest } from "./commands/request.ts";

const REGISTER: Record<string, (p: Command) => void> = {
  pub: registerPub,
  sub: registerSub,
  work: registerWork,
  take: registerTake,
  ack: registerTake,
  nack: registerTake,
  peek: registerPeek,
  cancel: registerPeek,
  request: registerRequest,
  reply: registerRequest,
};

interface Parsed {
  command: string;
  args: unknown[];
  opts: Record<string, unknown>;
  globals: Record<string, unknown>;
}

/** What commander makes of `argv`: the action's arguments, or "error". */
async function byCommander(argv: string[]): Promise<Parsed | "error"> {
  const program = buildProgram();
  let seen: Parsed | undefined;
  const silence = (c: Command) => {
    c.configureOutput({ writeErr: () => {}, writeOut: () => {}, outputError: () => {} });
    c.commands.forEach(silence);
    if (c.commands.length > 0) return;
    c.action((...a: unknown[]) => {
      const cmd = a.at(-1) as Command;
      seen = {
        command: cmd.name(),
        args: a.slice(0, -2),
        opts: { ...(a.at(-2) as Record<string, unknown>) },
        globals: { ...cmd.optsWithGlobals() },
      };
    });
  };
  silence(program);
  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) return "error";
    throw e;
  }
  return seen ?? "error";
}

/** What the fast path makes of `argv`, or undefined where it leaves it to commander. */
function byFastPath(argv: string[]): Parsed | undefined {
  const name = commandName(argv);
  if (name === undefined || !Object.hasOwn(REGISTER, name)) return undefined;
  const parsed = parseFast(REGISTER[name], argv);
  if (!parsed) return undefined;
  const cmd = parsed.command;
  return {
    command: cmd.name(),
    args: parsed.actionArgs.slice(0, -2),
    opts: { ...(parsed.actionArgs.at(-2) as Record<string, unknown>) },
    globals: cmd.optsWithGlobals(),
  };
}

/** Command lines the fast path must take (the common shapes). */
const FAST = [
  ["pub", "t", "x"],
  ["-q", "pub", "t", "x"],
  ["pub", "t", "x", "-q"],
  ["--url", "memory:", "pub", "t", "a", "b"],
  ["--url=memory:", "pub", "t"],
  ["pub", "-k", "K", "t", "x"],
  ["pub", "t", "--key=foo", "x"],
  ["pub", "t", "--", "-x", "--y"],
  ["pub", "--partition", "2", "t", "x"],
  ["pub", "-H", "a=1", "-H", "b=2", "t"],
  ["pub", "t", "-0"],
  ["pub", "t", "-k", "--help"],
  ["pub", "--no-color", "t", "x"],
  ["pub"],
  ["--context", "dev", "sub", "t"],
  ["sub", "t", "-e", "-n", "3"],
  ["sub", "t", "--from", "-10m", "--format", "json"],
  ["sub", "t", "u", "logs.#", "--partition", "0", "--partition", "2", "-H", "a=b", "--last", "3"],
  ["sub", "t", "--grep", "x", "--invert", "--idle", "1s", "--all", "-k", "k", "--until", "5"],
  ["sub", "-"],
  ["work", "jobs", "--", "sh", "-c", "exit 0"],
  ["work", "jobs", "-c", "2", "-e", "--max-attempts", "3", "--", "true"],
  ["take", "t", "--wait", "1s"],
  ["ack", "t", "r"],
  ["nack", "t", "r", "--delay", "5s"],
  ["peek", "t", "-n", "3"],
  ["cancel", "t", "id"],
  ["request", "t", "x", "--timeout", "1s"],
  ["reply", "t", "--", "cat"],
];

/** Command lines it must leave to commander (help, errors, what it does not model). */
const SLOW = [
  ["pub", "--help"],
  ["sub", "-h"],
  ["pub", "t", "-k", "-q"],
  ["pub", "--partition", "abc", "t"],
  ["pub", "t", "-kfoo"],
  ["pub", "t", "-5"],
  ["sub", "t", "-n", "0"],
  ["sub"],
  ["sub", "t", "--unknown"],
  ["pub", "t", "-V"],
  ["-V"],
  ["pub", "t", "--url"],
  ["work", "jobs", "true", "-x"],
  ["topics"],
  ["help", "pub"],
  ["pbu", "t"],
  ["--", "pub", "t"],
];

Deno.test("fast path: parses the common command lines exactly as commander does", async () => {
  for (const argv of FAST) {
    const fast = byFastPath(argv);
    ok(fast, `the fast path should take mq ${argv.join(" ")}`);
    eq(fast, await byCommander(argv), `mq ${argv.join(" ")}`);
  }
});

Deno.test("fast path: leaves help, errors and the unusual to commander", async () => {
  for (const argv of SLOW) {
    eq(byFastPath(argv), undefined, `mq ${argv.join(" ")} should go to commander`);
  }
  // Those commander refuses, the fast path never runs.
  for (const argv of [...FAST, ...SLOW]) {
    if ((await byCommander(argv)) === "error") {
      eq(byFastPath(argv), undefined, `mq ${argv.join(" ")}`);
    }
  }
});

Deno.test("fast path: the command name after global options and their values", () => {
  eq(commandName(["--url", "file:x", "pub", "t"]), "pub");
  eq(commandName(["--url=file:x", "-q", "sub", "t"]), "sub");
  eq(commandName(["--context", "pub", "sub"]), "sub");
  eq(commandName(["-x", "pub"]), undefined);
  eq(commandName([]), undefined);
  eq(FAST_COMMAND_NAMES.toSorted(), Object.keys(REGISTER).toSorted());
});

Deno.test("fast path: `deno run` of cli/main.ts does not read commander or the other commands", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", new URL("./main.ts", import.meta.url).pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const graph = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    roots: string[];
    modules: { specifier: string; dependencies?: { code?: { specifier: string } }[] }[];
  };
  // What `deno run` reads: code imports, static or literal dynamic (not `import type`).
  const bySpecifier = new Map(graph.modules.map((m) => [m.specifier, m]));
  const read = new Set<string>();
  const visit = (specifier: string) => {
    if (read.has(specifier)) return;
    read.add(specifier);
    for (const d of bySpecifier.get(specifier)?.dependencies ?? []) {
      if (d.code) visit(d.code.specifier);
    }
  };
  visit(graph.roots[0]);
  ok([...read].some((s) => s.endsWith("/cli/fast_path.ts")), [...read].join("\n"));
  eq([...read].filter((s) => /commander|\/cli\/program\.ts$|\/cli\/commands\//.test(s)), []);
});
