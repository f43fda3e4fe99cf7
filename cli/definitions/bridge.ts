/** `mq bridge`: mirror topics to another backend or broker, or bring subjects in. */
import { type CommandDefinition, load } from "../definition.ts";
import type * as Bridge from "../commands/bridge.ts";

/** `mq bridge`, as a definition. */
export const command: CommandDefinition = {
  name: "bridge",
  summary: "mirror topics to another backend or broker, or bring subjects in",
  description:
    "Mirror local topics to another backend or broker (--to), or bring broker subjects into a topic (--from).",
  options: [
    { long: "to", value: "url", help: "where to mirror to" },
    {
      long: "topics",
      value: "pattern",
      help: "topics to mirror (* one word, # any; repeatable; default all)",
      repeatable: true,
      complete: "topic",
    },
    { long: "from", value: "url", help: "a broker to bring messages from" },
    {
      long: "subjects",
      value: "subject",
      help: "with --from: subjects to bring in (repeatable)",
      repeatable: true,
    },
    {
      long: "into",
      value: "topic",
      help: "with --from: the topic to store them in",
      complete: "topic",
    },
    {
      long: "group",
      short: "g",
      value: "name",
      help: "the group that keeps the bridge's position",
      default: "bridge",
    },
    { long: "exit", short: "e", help: "drain what is there, then exit" },
    {
      long: "visibility",
      value: "dur",
      help: "with --to: after a crash, a batch in flight is forwarded again this long after",
      default: "30s",
    },
  ],
  examples: [
    ["mq bridge --to nats://127.0.0.1:4222 --topics 'orders.#'", "mirror topics to NATS subjects"],
    ["mq bridge --to kv:./mirror.sqlite -e", "copy every topic to Deno KV, then exit"],
    ["mq bridge --from nats://127.0.0.1:4222 --subjects 'events.>' --into events"],
  ],
  notes: `
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
and says on stderr when its state changes (one line per change).`,
  run: async (call) => {
    const { bridgeCommand } = await load<typeof Bridge>(import.meta.url, "../commands/bridge.ts");
    await bridgeCommand(call.options as Bridge.BridgeOptions, call);
  },
};
