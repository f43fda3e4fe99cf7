/** `mq take`: leased messages for scripts in any language. */
import { type CommandDefinition, load } from "../definition.ts";
import type * as Take from "../commands/take.ts";

const impl = () => load<typeof Take>(import.meta.url, "../commands/take.ts");

/** `mq take`, as a definition. */
export const command: CommandDefinition = {
  name: "take",
  summary: "lease one message and print it (settle it with mq ack / mq nack)",
  description:
    "Lease one message of a group, print its payload, and print `receipt: <R>` on stderr.",
  arguments: [{ name: "topic", required: true, complete: "topic" }],
  options: [
    {
      long: "group",
      short: "g",
      value: "group",
      help: "the group",
      default: "default",
      complete: "group",
    },
    { long: "visibility", value: "dur", help: "how long the lease lasts", default: "30s" },
    { long: "wait", value: "dur", help: "wait this long for a message (exit 3 if none)" },
    {
      long: "format",
      short: "f",
      value: "format",
      help: "raw or json",
      default: "raw",
      complete: ["raw", "json"],
    },
  ],
  examples: [
    [
      `job=$(mq take jobs 2>r.txt) && ./handle "$job" && mq ack jobs "$(sed 's/^receipt: //' r.txt)"`,
    ],
    ["mq take jobs --wait 30s --format json", 'the envelope, with its "receipt"'],
    [`r=$(mq take jobs 2>&1 >job.txt | sed -n 's/^receipt: //p')`, "lease one, keep its receipt"],
    [`mq nack jobs "$r" --delay 1m`, "deliver it again in a minute"],
  ],
  notes: "A lease not settled within --visibility is delivered again.",
  run: async (call) =>
    (await impl()).takeCommand(call.args.topic, call.options as Take.TakeOptions, call),
};
