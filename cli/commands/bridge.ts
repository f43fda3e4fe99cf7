/** `mq bridge`: mirror topics to another backend or broker, or bring subjects in. */
import type { Command } from "commander";
import { MqError } from "../../core/errors.ts";
import { assertName } from "../../core/names.ts";
import { redactUrl } from "../../core/backend_url.ts";
import { runBridge } from "../../core/bridge.ts";
import { bridgeFrom, bridgeSinkFor } from "../../adapters/builtin.ts";
import { collect, globals, note, openBackend } from "../runtime.ts";
import { Progress } from "../progress.ts";
import { rideThroughFailures } from "../reconnect.ts";

interface BridgeOptions {
  to?: string;
  from?: string;
  topics: string[];
  subjects: string[];
  into?: string;
  group: string;
  exit?: boolean;
}

const EXAMPLES = `
Examples:
  mq bridge --to nats://127.0.0.1:4222 --topics 'orders.#'     mirror topics to NATS subjects
  mq bridge --to kv:./mirror.sqlite -e                          copy every topic to Deno KV, then exit
  mq bridge --from nats://127.0.0.1:4222 --subjects 'events.>' --into events

A bridge keeps its position as a group (--group, default "bridge") on the
source and moves it only after the target has stored a batch, so it resumes
after a crash or a broker restart and loses nothing. To NATS, a topic goes to
the subject of its name: through JetStream when a stream covers it, with the
message id as Nats-Msg-Id (so a resend within the stream's duplicate window is
a no-op; a message published without --id goes as <topic>:<partition>-<offset>,
as the offsets of two topics in one stream would collide), else as core NATS.
From NATS (--from), each subject a stream covers is read by a durable consumer
of its own (named by the group and the subject), acked only after the messages
are stored, each with the id nats:<stream>:<seq> (a redelivery is dropped as a
duplicate); the subject and the NATS headers are kept as headers. Other
subjects are subscribed to (core NATS: only messages from then on; not with
-e). Broker outages are retried with backoff. Without -e it runs until stopped
and says on stderr when its state changes (one line per change).`;

/** Adds `bridge` to the program. */
export function registerBridge(program: Command): void {
  program
    .command("bridge")
    .summary("mirror topics to another backend or broker, or bring subjects in")
    .description(
      "Mirror local topics to another backend or broker (--to), or bring broker subjects into a topic (--from).",
    )
    .option("--to <url>", "where to mirror to")
    .option(
      "--topics <pattern>",
      "topics to mirror (* one word, # any; repeatable; default all)",
      collect,
      [],
    )
    .option("--from <url>", "a broker to bring messages from")
    .option("--subjects <subject>", "with --from: subjects to bring in (repeatable)", collect, [])
    .option("--into <topic>", "with --from: the topic to store them in")
    .option("-g, --group <name>", "the group that keeps the bridge's position", "bridge")
    .option("-e, --exit", "drain what is there, then exit")
    .addHelpText("after", EXAMPLES)
    .action(async (opts: BridgeOptions, cmd: Command) => {
      assertName("group", opts.group);
      if (!opts.to === !opts.from) {
        throw new MqError("INVALID_ARGUMENT", "give either --to URL or --from URL");
      }
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
          const sink = progress.countSends(await bridgeSinkFor(opts.to));
          try {
            say(`to ${redactUrl(opts.to)}`);
            const result = await runBridge(mq, sink, {
              topics: opts.topics,
              group: opts.group,
              follow: !opts.exit,
              signal: stop.signal,
              onState: say,
            });
            const n = Object.values(result).reduce((a, b) => a + b, 0);
            say(
              `forwarded ${n} message${n === 1 ? "" : "s"} from ${
                Object.keys(result).length
              } topic(s)`,
            );
          } finally {
            await sink.close().catch(() => {});
          }
        } else {
          if (!opts.into) throw new MqError("INVALID_ARGUMENT", "--from needs --into TOPIC");
          if (opts.subjects.length === 0) {
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
          });
          say(`stored ${n} message${n === 1 ? "" : "s"} in "${opts.into}"`);
        }
      } finally {
        progress.done();
        Deno.removeSignalListener("SIGINT", onSignal);
        Deno.removeSignalListener("SIGTERM", onSignal);
        await mq.close();
      }
    });
}
