/** `mq request` and `mq reply`. */
import type { Call } from "../definition.ts";
import { assertName, parseDuration } from "../../connect.ts";
import { globals, headerFlags, note, openBackend } from "../runtime.ts";
import { rideThroughFailures } from "../reconnect.ts";
import { requireExecutable } from "../process_tree.ts";

/** `mq request <topic> [payload]`: a request published, the first reply printed. */
export async function requestCommand(
  topic: string,
  payload: string | undefined,
  opts: { timeout: string; header: string[] },
  cmd: Call,
): Promise<void> {
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
}

/** `mq reply <topic> -- COMMAND...`: each request answered with COMMAND's stdout. */
export async function replyCommand(
  topic: string,
  command: string[],
  opts: { group: string; concurrency: number; exit?: boolean },
  cmd: Call,
): Promise<void> {
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
}
