/** `mq bridge`: mirror topics to another backend or broker, or bring subjects in. */
import type { Call } from "../definition.ts";
import { assertName, compileTarget, parseDuration, runBridge } from "../../mod.ts";
import { MqError } from "../../core/errors.ts";
import { redactUrl } from "../../core/backend_url.ts";
import { bridgeFrom, bridgeSinkFor } from "../../adapters/builtin.ts";
import { globals, note, openBackend } from "../runtime.ts";
import { Progress } from "../progress.ts";
import { DRAIN_RETRY_MS, rideThroughFailures } from "../reconnect.ts";

/** The options of `mq bridge`, as parsed. */
export interface BridgeOptions {
  to?: string;
  from?: string;
  topics: string[];
  subjects: string[];
  into?: string;
  group: string;
  exit?: boolean;
  visibility: string;
  target?: string;
  bind: string[];
  allowUnroutable?: boolean;
}

/** `mq bridge --to URL` or `--from URL`, with its options as parsed (see `cli/definitions/bridge.ts`). */
export async function bridgeCommand(opts: BridgeOptions, cmd: Call): Promise<void> {
  assertName("group", opts.group);
  if (!opts.to === !opts.from) {
    throw new MqError("INVALID_ARGUMENT", "give either --to URL or --from URL");
  }
  // A bad template is refused before anything connects.
  if (opts.target !== undefined) compileTarget(opts.target);
  const quiet = globals(cmd).quiet;
  const say = (line: string) => {
    if (!quiet) note(`mq: bridge: ${line}`);
  };
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const { mq } = await openBackend(cmd);
  rideThroughFailures(mq, { follow: !opts.exit, quiet, prefix: "bridge: " });
  // Progress (messages forwarded or stored, rate) on a terminal.
  const progress = Progress.start("bridge", { quiet });
  try {
    if (opts.to) {
      const sink = progress.countSends(
        await bridgeSinkFor(opts.to, {
          target: opts.target,
          allowUnroutable: opts.allowUnroutable,
          onState: say,
        }),
      );
      try {
        say(`to ${redactUrl(opts.to)}`);
        const result = await runBridge(mq, sink, {
          topics: opts.topics,
          group: opts.group,
          follow: !opts.exit,
          signal: stop.signal,
          onState: say,
          visibilityMs: parseDuration(opts.visibility),
          // A drain gives up on a target gone for as long as on the local backend.
          retryForMs: opts.exit ? DRAIN_RETRY_MS : Infinity,
        });
        const n = Object.values(result).reduce((a, b) => a + b, 0);
        say(
          `forwarded ${n} message${n === 1 ? "" : "s"} from ${Object.keys(result).length} topic(s)`,
        );
      } finally {
        await sink.close().catch(() => {});
      }
    } else {
      if (opts.target !== undefined) {
        throw new MqError("INVALID_ARGUMENT", "--target goes with --to, not --from");
      }
      if (!opts.into) throw new MqError("INVALID_ARGUMENT", "--from needs --into TOPIC");
      if (opts.subjects.length === 0 && opts.bind.length === 0) {
        throw new MqError("INVALID_ARGUMENT", "--from needs at least one --subjects SUBJECT");
      }
      assertName("topic", opts.into);
      const n = await bridgeFrom(opts.from!, progress.countPublishes(mq), {
        subjects: opts.subjects,
        into: opts.into,
        group: opts.group,
        follow: !opts.exit,
        signal: stop.signal,
        onState: say,
        bind: opts.bind,
      });
      say(`stored ${n} message${n === 1 ? "" : "s"} in "${opts.into}"`);
    }
  } finally {
    progress.done();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    await mq.close();
  }
}
