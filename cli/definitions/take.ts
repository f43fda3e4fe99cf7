/** `mq take`, `mq ack`, `mq nack`: leased messages for scripts in any language. */
import { type CommandDefinition, load } from "../definition.ts";
import type * as Take from "../commands/take.ts";

const impl = () => load<typeof Take>(import.meta.url, "../commands/take.ts");

/** `mq take`. */
export const take: CommandDefinition = {
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
      `job=$(mq take jobs 2>/tmp/r) && ./handle "$job" && mq ack jobs "$(sed 's/^receipt: //' /tmp/r)"`,
    ],
    ["mq take jobs --wait 30s --format json", 'the envelope, with its "receipt"'],
    ["mq nack jobs <receipt> --delay 1m", "deliver it again in a minute"],
  ],
  notes: "A lease not settled within --visibility is delivered again.",
  run: async (call) =>
    (await impl()).takeCommand(call.args.topic, call.options as Take.TakeOptions, call),
};

/** `mq ack`. */
export const ack: CommandDefinition = {
  name: "ack",
  summary: "settle a taken message as done",
  description: "Ack the message a receipt (from mq take) names.",
  arguments: [
    { name: "topic", required: true, complete: "topic" },
    { name: "receipt", required: true },
  ],
  examples: [
    [`r=$(mq take jobs 2>&1 >job.txt | sed -n 's/^receipt: //p')`],
    [`./handle < job.txt && mq ack jobs "$r"`, "done: never delivered again"],
  ],
  run: async (call) => (await impl()).ackCommand(call.args.topic, call.args.receipt, call),
};

/** `mq nack`. */
export const nack: CommandDefinition = {
  name: "nack",
  summary: "give a taken message back for another attempt",
  description:
    "Nack the message a receipt names: delivered again after --delay (default: backoff), dead-lettered on its last attempt.",
  arguments: [
    { name: "topic", required: true, complete: "topic" },
    { name: "receipt", required: true },
  ],
  options: [
    { long: "delay", value: "dur", help: "deliver it again after this long" },
    { long: "reason", value: "text", help: "why it failed (kept in the dead letter's headers)" },
  ],
  examples: [
    [`mq nack jobs "$r"`, "again after the backoff"],
    [`mq nack jobs "$r" --delay 5m --reason "upstream down"`],
  ],
  run: async (call) =>
    (await impl()).nackCommand(call.args.topic, call.args.receipt, call.options, call),
};
