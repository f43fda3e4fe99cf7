/** `mq sub`: print messages of a topic. */
import { type CommandDefinition, FORMATS, load, wholeNumber } from "../definition.ts";
import type * as Sub from "../commands/sub.ts";

/** `mq sub`, as a definition. */
export const command: CommandDefinition = {
  name: "sub",
  // Without a group and with -e it only reads; following waits for a topic to be made.
  reads: (call) => call.options.exit === true && call.options.group === undefined,
  summary: "print messages of a topic",
  description: "Print messages of a topic, from a position or as a member of a group.",
  arguments: [{ name: "topic", required: true, help: "topic to read", complete: "topic" }],
  options: [
    {
      long: "group",
      short: "g",
      value: "group",
      help: "consume as a member of this group (durable position, shared messages)",
      complete: "group",
    },
    {
      long: "from",
      value: "where",
      help: "beginning, end, an offset, an ISO time or -DUR (without --group, or for a new group)",
      default: "beginning",
      complete: ["beginning", "end"],
    },
    { long: "exit", short: "e", help: "stop at the end of what is there" },
    {
      long: "count",
      short: "n",
      value: "n",
      help: "stop after N messages",
      parse: wholeNumber("--count", 1),
    },
    {
      long: "format",
      short: "f",
      value: "format",
      help: "raw, json, or a template like '{offset} {payload}'",
      default: "raw",
      complete: FORMATS,
    },
    {
      long: "null",
      short: "0",
      help: "with raw: end each message with a NUL byte instead of a newline",
    },
    {
      long: "timeout",
      value: "dur",
      help: "with -n: give up after this long (exit 3 if fewer arrived)",
    },
    {
      long: "visibility",
      value: "dur",
      help: "with --group: how long a delivery is leased",
      default: "30s",
    },
  ],
  examples: [
    ["mq sub orders -e", "print every message there is, then exit"],
    ["mq sub orders", "... and keep following new ones"],
    ["mq sub orders --group billing", 'share work with other members of "billing"'],
    ["mq sub orders --from -10m", "what arrived in the last ten minutes"],
    ["mq sub orders -n 1 --timeout 5s", "wait up to 5s for one message (exit 3 if none)"],
    ["mq sub orders --format json -e", "one JSON envelope per line"],
    ["mq sub orders --format '{offset} {key} {payload} {header.trace}'"],
  ],
  notes: `
With --group the group's position moves only after a message was written to
stdout; messages that were not are delivered again.`,
  run: async (call) => {
    const { subCommand } = await load<typeof Sub>(import.meta.url, "../commands/sub.ts");
    await subCommand(call.args.topic, call.options as Sub.SubOptions, call);
  },
};
