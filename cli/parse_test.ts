import { deepStrictEqual as eq, throws } from "node:assert/strict";
import { parse } from "./parse.ts";
import { loadProgram } from "./registry.ts";

const PROGRAM = await loadProgram();
import { helpText } from "./help.ts";
import { complete } from "./complete.ts";
import { attributeOf, type CommandDefinition, flagsOf } from "./definition.ts";

const run = (...argv: string[]) => {
  const p = parse(PROGRAM, argv);
  if (p.kind !== "run") throw new Error(`not a run: ${p.kind}`);
  return p.call;
};
const usage = (argv: string[], message: string) =>
  throws(() => parse(PROGRAM, argv), (e: Error) => e.message === message, argv.join(" "));

Deno.test("cli parse: options anywhere, = and attached values, clusters, repeats, defaults, --", () => {
  const c = run("-q", "pub", "t", "--key=k", "-H", "a=1", "a", "-Hb=2", "--url", "memory:", "b");
  eq(c.path, ["pub"]);
  eq(c.args, { topic: "t", payload: ["a", "b"] });
  eq(c.options.key, "k");
  eq(c.options.header, ["a=1", "b=2"]);
  eq(c.options.routingKey, "");
  eq(c.globals, { quiet: true, url: "memory:" });
  const s = run("sub", "t", "-en3", "--from", "-10m");
  eq([s.options.exit, s.options.count, s.options.from, s.options.format], [true, 3, "-10m", "raw"]);
  const w = run("work", "t", "-c", "2", "--", "./h.sh", "-e", "--x");
  eq([w.args.command, w.options.concurrency, w.options.exit], [
    ["./h.sh", "-e", "--x"],
    2,
    undefined,
  ]);
  eq(run("--no-color", "topics").globals.color, false);
  eq(run("bench").args.mode, "pub");
  eq(run("topics", "create", "t", "--partitions", "4").options.partitions, 4);
  eq(run("sub", "t", "-e").reads, true);
  eq(run("sub", "t", "-e", "-g", "g").reads, false);
  eq(run("pub", "t", "x").reads, false);
});

Deno.test("cli parse: help, version and every kind of mistake", () => {
  eq(parse(PROGRAM, ["topics", "create", "--help"]), { kind: "help", path: ["topics", "create"] });
  eq(parse(PROGRAM, ["pub", "--bogus", "-h"]), { kind: "help", path: ["pub"] });
  eq(parse(PROGRAM, []), { kind: "help", path: [] });
  eq(parse(PROGRAM, ["-V"]), { kind: "version" });
  usage(["pub", "--version"], "unknown option '--version'");
  usage(["pub", "t", "--bogus"], "unknown option '--bogus'");
  usage(["pub", "t", "--kye", "k"], "unknown option '--kye' (Did you mean --key?)");
  usage(["pub", "t", "-Z"], "unknown option '-Z'");
  usage(["pub", "t", "--key"], "option '-k, --key <key>' argument missing");
  usage(["pub", "t", "--raw=1"], "option '--raw' takes no value");
  usage(
    ["sub", "t", "-n", "x"],
    "option '-n, --count <n>' argument 'x' is invalid. --count must be a whole number of at least 1",
  );
  usage(
    ["topics", "create", "t", "--overflow", "zz"],
    "option '--overflow <policy>' argument 'zz' is invalid. --overflow must be drop-oldest or reject",
  );
  usage(["sub"], "missing required argument 'topics'");
  usage(["groups", "reset", "t", "g"], "required option '--to <where>' not specified");
  usage(["pbu"], "unknown command 'pbu' (Did you mean pub?)");
  usage(["topics", "lst"], "unknown command 'lst' for 'mq topics' (Did you mean ls?)");
  usage(["groups", "rest"], "unknown command 'rest' for 'mq groups' (Did you mean reset?)");
  usage(["groups", "t", "x"], "too many arguments for 'groups'. Expected 1 argument but got 2.");
  usage(["exchange"], "mq exchange needs a subcommand: create, ls, rm (see mq exchange --help)");
  // A topic named like a subcommand's typo is still reachable after --.
  eq(run("groups", "--", "rest").args.topic, "rest");
});

/** Every command and subcommand with its path. */
function walk(
  list: readonly CommandDefinition[],
  prefix: string[] = [],
): [string[], CommandDefinition][] {
  return list.flatMap((c) => [
    [[...prefix, c.name], c] as [string[], CommandDefinition],
    ...walk(c.subcommands ?? [], [...prefix, c.name]),
  ]);
}

const NO_NAMES = {
  topics: () => Promise.resolve(["orders"]),
  groups: () => Promise.resolve(["billing"]),
  exchanges: () => Promise.resolve(["events"]),
  contexts: () => Promise.resolve(["dev"]),
};

Deno.test("cli: help and completions of every command come from its definition", async () => {
  for (const [path, cmd] of walk(PROGRAM.commands)) {
    const help = helpText(PROGRAM, path);
    const flags = (await complete(PROGRAM, [...path, "--"], NO_NAMES)).candidates.map((c) =>
      c.value
    );
    for (const o of cmd.options ?? []) {
      eq(
        help.includes(`  ${flagsOf(o)}  `) || help.includes(`  ${flagsOf(o)} `),
        true,
        `${path} ${o.long}`,
      );
      eq(flags.includes(`--${o.long}`), true, `${path.join(" ")}: --${o.long} completes`);
      eq(typeof attributeOf(o), "string");
      if (o.value && o.complete && typeof o.complete !== "string") {
        const values = (await complete(PROGRAM, [...path, `--${o.long}`, ""], NO_NAMES)).candidates;
        eq(values.map((v) => v.value), [...o.complete], `${path.join(" ")} --${o.long} values`);
      }
    }
    for (const [line] of cmd.examples ?? []) eq(help.includes(`  ${line}`), true, line);
    const subs = (await complete(PROGRAM, [...path, ""], NO_NAMES)).candidates.map((c) => c.value);
    for (const s of cmd.subcommands ?? []) eq(subs.includes(s.name), true, `${path} ${s.name}`);
    const first = cmd.arguments?.[0];
    if (first?.complete === "topic") eq(subs.includes("orders"), true, `${path}: topics offered`);
  }
});
