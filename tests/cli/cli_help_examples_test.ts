/**
 * Every example line of every `--help` text runs, as a user would paste it
 * into bash: the examples of each command in order in one shell (so that
 * `r=$(mq take ...)` feeds the next line), in a folder of its own with a
 * store made for them, `mq` on the PATH. A line exits 0, or, for one that
 * follows until stopped, is still running after a while (`timeout`: 124).
 * Lines that cannot run here are listed with the reason, and the list is
 * checked, so that none is skipped silently.
 */
import { deepStrictEqual as eq } from "node:assert/strict";
import type { CommandDefinition, Example } from "../../cli/definition.ts";
import { loadProgram } from "../../cli/registry.ts";

const PROGRAM = await loadProgram();
import { mq, mqOnPath, withHome } from "./_mq.ts";

/** Lines that follow new messages (or requests) until stopped. */
const FOLLOWS = new Set([
  "mq sub orders",
  "mq sub orders --group billing",
  "mq sub orders --from -10m",
  "mq ui",
  "mq ui --read-only --port 9000",
  "mq top",
  "mq top --topics 'orders.#' --interval 5s",
  "mq work jobs -- ./handle.sh",
  "mq work mail --max-attempts 3 --backoff 5s,5m -- ./send.sh",
  "mq work jobs --visibility 30s -- ./slow.sh",
  "mq reply rpc.upper -- tr a-z A-Z",
]);

const has = (bin: string) =>
  (Deno.env.get("PATH") ?? "").split(":").some((d) => {
    try {
      return Deno.statSync(`${d}/${bin}`).isFile;
    } catch {
      return false;
    }
  });

const OWN_BROKER = "needs the machine's own broker on its standard port, which tests must not use";

/** Lines not run, and why. */
const NOT_RUN: Record<string, string> = {
  "mq bridge --to nats://127.0.0.1:4222 --topics 'orders.#'":
    "needs the NATS on 4222, the machine's own, which tests must not use",
  "mq bridge --from nats://127.0.0.1:4222 --subjects 'events.>' --into events":
    "needs the NATS on 4222, the machine's own, which tests must not use",
  "mq completions bash > /etc/bash_completion.d/mq": "writes outside its folder (/etc)",
  "mq --url nats://h1:4222,h2:4222,h3:4222 topics create orders --replicas 3":
    "needs a NATS cluster at hosts h1-h3 (tests/nats/cluster_*_test.ts start one on loopback)",
  "mq metrics > /var/lib/node_exporter/textfile/mq.prom": "writes outside its folder (/var/lib)",
  "MQ_UI_TOKEN=s3cret-token mq ui --host 0.0.0.0": "listens on every interface, not loopback",
  'curl -H "Authorization: Bearer $T" http://127.0.0.1:8977/api/overview':
    "needs a running mq ui and its token (tests/ui covers the API)",
  ...Object.fromEntries(
    exampleLines().filter((l) => /^mq bridge .*(redis|mqtt|amqp|kafka):\/\//.test(l)).map((
      l,
    ) => [l, OWN_BROKER]),
  ),
  ...(has("zsh") ? {} : { 'eval "$(mq completions zsh)"': "needs zsh, not installed" }),
  ...(has("fish") ? {} : { "mq completions fish | source": "needs fish, not installed" }),
  ...(has("python3")
    ? {}
    : { "mq work jobs -c 4 -e -- python3 job.py": "needs python3, not installed" }),
  ...(has("jq") ? {} : Object.fromEntries(
    exampleLines().filter((l) => l.includes("| jq ")).map((l) => [l, "needs jq, not installed"]),
  )),
};

/** Every example line of the definitions (and of `mq --help`). */
function exampleLines(): string[] {
  return [
    ...(PROGRAM.examples ?? []),
    ...walk(PROGRAM.commands).flatMap(([, examples]) => examples),
  ].map(([line]) => line);
}

/** Commands whose examples make their own topics and exchanges: they start from an empty store. */
const FROM_SCRATCH = new Set(["topics", "topics create", "exchange", "exchange create", "help"]);

/** Commands whose examples use contexts: dev, prod and old are added first. */
const WITH_CONTEXTS = (path: string) => path.startsWith("context") || path === "info";

const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

function walk(list: readonly CommandDefinition[], prefix: string[] = []): [string, Example[]][] {
  return list.flatMap((c) => [
    [[...prefix, c.name].join(" "), [...(c.examples ?? [])]] as [string, Example[]],
    ...walk(c.subcommands ?? [], [...prefix, c.name]),
  ]);
}

/** The store and files every command's examples start from. */
async function prepare(dir: string, scratch: boolean): Promise<void> {
  const exe = (name: string, body: string) =>
    Deno.writeTextFile(`${dir}/${name}`, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  await Deno.writeTextFile(`${dir}/events.log`, "e1\ne2\ne3\n");
  await Deno.writeFile(`${dir}/photo.jpg`, new Uint8Array([0xff, 0xd8, 0xff, 0, 1, 2]));
  await Deno.writeTextFile(`${dir}/job.py`, "import sys\nsys.stdin.read()\n");
  await Deno.writeTextFile(`${dir}/mq.json`, '{"environments": {"prod": "file:./prod-data"}}');
  for (const name of ["handle", "handle.sh", "send.sh", "slow.sh"]) {
    await exe(name, "cat >/dev/null");
  }
  await exe("answer.sh", "tr a-z A-Z");
  await exe("clean.sh", "tr -d ' '");
  if (scratch) return;
  const run = async (...args: string[]) => {
    const r = await mq(dir, args);
    // A work run that dead-letters exits 1 (as xargs does): that is what it is here for.
    const want = args[0] === "work" && args.includes("false") ? 1 : 0;
    eq(r.code, want, `${args.join(" ")}: ${r.err}`);
  };
  await run("pub", "orders", "o1", "o2", "-q");
  await run("pub", "a", "a1", "-q");
  await run("pub", "demo", "d1", "-q");
  await run("pub", "raw", " r 1", "r 2 ", "-q");
  await run("pub", "payments", "p1", "-q");
  await run("pub", "logs", "error: disk full", "ok", "-q");
  await run("pub", "logs", "noisy", "-H", "level=debug", "-q");
  await run("pub", "tmp-1", "x", "-q");
  await run("topics", "create", "jobs", "--max-attempts", "1");
  await run("pub", "jobs", "dead", "-q");
  await run("work", "jobs", "-e", "-q", "--", "false");
  await run("pub", "jobs", "j1", "j2", "j3", "j4", "j5", "-q");
  await run("take", "orders", "-g", "billing");
  await run("take", "jobs", "-g", "billing");
  await run("exchange", "create", "events", "--type", "topic");
  await run("exchange", "create", "by-kind", "--type", "headers");
  await run("bind", "events", "audit", "--key", "#");
  await run("bind", "events", "audit", "--key", "orders.#");
}

Deno.test({
  name: "cli: every example line of every --help text runs",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withHome(async (h) => {
      const template = `${h}/template`, scratch = `${h}/scratch`;
      await Deno.mkdir(template);
      await Deno.mkdir(scratch);
      await prepare(template, false);
      await prepare(scratch, true);
      const commands: [string, Example[]][] = [
        ["(mq)", [...(PROGRAM.examples ?? [])]],
        ...walk(PROGRAM.commands),
      ];
      const skipped: string[] = [];
      const failures: string[] = [];
      let ran = 0;
      /** Runs the examples of one command in a shell of their own. */
      const runCommand = async ([path, examples]: [string, Example[]]) => {
        const dir = `${h}/run-${path.replace(/\W+/g, "_")}`;
        const from = FROM_SCRATCH.has(path) ? scratch : template;
        const cp = await new Deno.Command("cp", { args: ["-a", from, dir] }).output();
        eq(cp.code, 0);
        const lines: string[] = ["cd " + q(dir)];
        if (WITH_CONTEXTS(path)) {
          lines.push(
            "mq context add dev file:./data >/dev/null 2>&1",
            "mq context add old memory: >/dev/null 2>&1",
            "mq context add prod 'nats://app:secret@nats.internal:4222' >/dev/null 2>&1",
          );
        }
        const run = examples.map(([line]) => line).filter((line) => {
          if (Object.hasOwn(NOT_RUN, line)) {
            skipped.push(line);
            return false;
          }
          return true;
        });
        run.forEach((line, i) => {
          if (FOLLOWS.has(line)) {
            lines.push(
              `printf '%s\\n' ${q(line)} > line.${i}.sh`,
              `timeout -s TERM 3 bash line.${i}.sh </dev/null >out.${i} 2>err.${i}; echo $? > status.${i}`,
            );
          } else {
            lines.push(`{ ${line}\n} </dev/null >out.${i} 2>err.${i}; echo $? > status.${i}`);
          }
        });
        lines.push("kill $(jobs -p) 2>/dev/null; wait");
        const env = await mqOnPath(dir);
        const shell = await new Deno.Command("bash", {
          args: ["-c", lines.join("\n")],
          env,
          clearEnv: true,
          stdout: "piped",
          stderr: "piped",
        }).output();
        eq(shell.code, 0, new TextDecoder().decode(shell.stderr));
        for (const [i, line] of run.entries()) {
          ran++;
          const status = Number((await Deno.readTextFile(`${dir}/status.${i}`)).trim());
          const err = await Deno.readTextFile(`${dir}/err.${i}`);
          const want = FOLLOWS.has(line) ? 124 : 0;
          if (status !== want || err.includes("mq: error")) {
            failures.push(`${path}: ${line}: exit ${status} (want ${want}) ${err.trim()}`);
          }
        }
      };
      // A few commands at once: their followers' timeouts overlap.
      for (let k = 0; k < commands.length; k += 3) {
        await Promise.all(commands.slice(k, k + 3).map(runCommand));
      }
      console.log(
        `ran ${ran} example lines; not run: ${
          skipped.map((l) => `${l} (${NOT_RUN[l]})`).join("; ")
        }`,
      );
      eq(failures, []);
      eq(skipped.sort(), Object.keys(NOT_RUN).sort(), "every line listed as not run exists");
    }),
});
