/** `mq request` and `mq reply`. */
import type { Command } from "commander";
import { assertName } from "../../core/names.ts";
import { parseDuration } from "../../core/duration.ts";
import { collect, globals, headerFlags, note, openBackend, wholeNumber } from "../runtime.ts";
import { rideThroughFailures } from "../reconnect.ts";
import { requireExecutable } from "../process_tree.ts";

/** Adds `request` and `reply` to the program. */
export function registerRequest(program: Command): void {
  program
    .command("request")
    .summary("send a request and print the first reply")
    .description(
      "Publish a request with reply-to and correlation-id headers and print the first reply.",
    )
    .argument("<topic>")
    .argument("[payload]", "the request (default: all of stdin)")
    .option("--timeout <dur>", "how long to wait for the reply (exit 3 after)", "5s")
    .option("-H, --header <name=value>", "a header (repeatable)", collect, [])
    .addHelpText(
      "after",
      "\nExamples:\n  mq reply rpc.upper -- tr a-z A-Z &\n  mq request rpc.upper hello --timeout 2s     prints HELLO",
    )
    .action(
      async (
        topic: string,
        payload: string | undefined,
        opts: { timeout: string; header: string[] },
        cmd: Command,
      ) => {
        assertName("topic", topic);
        const timeoutMs = parseDuration(opts.timeout);
        const headers = headerFlags(opts.header) ?? {};
        const body = payload ??
          new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer());
        const { mq } = await openBackend(cmd);
        try {
          const answer = await mq.request(topic, body, { timeoutMs, headers });
          const out = new Uint8Array(answer.payload.length + 1);
          out.set(answer.payload);
          out[answer.payload.length] = 10;
          let n = 0;
          while (n < out.length) n += await Deno.stdout.write(out.subarray(n));
        } finally {
          await mq.close();
        }
      },
    );

  program
    .command("reply")
    .summary("answer requests with a command's output")
    .description("Answer each request of a topic with COMMAND's stdout (the request on its stdin).")
    .argument("<topic>")
    .argument("<command...>", "the command and its arguments (after --)")
    .option("-g, --group <group>", "the group of repliers", "default")
    .option("-c, --concurrency <n>", "commands running at once", wholeNumber("--concurrency", 1), 1)
    .option("-e, --exit", "exit when no request is waiting")
    .addHelpText(
      "after",
      "\nExamples:\n  mq reply rpc.upper -- tr a-z A-Z          answer with the command's stdout\n  mq reply rpc.upper -c 4 -e -- ./answer.sh   four at a time, exit when none waits",
    )
    .action(
      async (
        topic: string,
        command: string[],
        opts: { group: string; concurrency: number; exit?: boolean },
        cmd: Command,
      ) => {
        assertName("topic", topic);
        const [program, ...args] = command;
        const path = await requireExecutable(program);
        const { mq } = await openBackend(cmd);
        rideThroughFailures(mq, { follow: !opts.exit, quiet: globals(cmd).quiet });
        const stop = new AbortController();
        const onSignal = () => stop.abort();
        Deno.addSignalListener("SIGINT", onSignal);
        Deno.addSignalListener("SIGTERM", onSignal);
        try {
          const result = await mq.reply(
            topic,
            {
              group: opts.group,
              concurrency: opts.concurrency,
              follow: !opts.exit,
              prefetch: opts.concurrency,
              signal: stop.signal,
            },
            async (m) => {
              const child = new Deno.Command(path, {
                args,
                stdin: "piped",
                stdout: "piped",
                stderr: "inherit",
              }).spawn();
              const w = child.stdin.getWriter();
              await w.write(m.payload).catch(() => {});
              await w.close().catch(() => {});
              const out = await child.output();
              if (!out.success) throw new Error(`exit code ${out.code}`);
              return out.stdout;
            },
          );
          if (!globals(cmd).quiet) {
            note(
              `mq: replied to ${result.acked} request${
                result.acked === 1 ? "" : "s"
              }, ${result.failed} failed`,
            );
          }
        } finally {
          Deno.removeSignalListener("SIGINT", onSignal);
          Deno.removeSignalListener("SIGTERM", onSignal);
          await mq.close();
        }
      },
    );
}
