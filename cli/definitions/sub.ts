/** `mq sub`: print messages of topics. */
import { type CommandDefinition, FORMATS, load, wholeNumber } from "../definition.ts";
import type * as Sub from "../commands/sub.ts";
import type * as Runtime from "../runtime.ts";

/** `mq sub`, as a definition. */
export const command: CommandDefinition = {
  name: "sub",
  // Without a group and with -e it only reads; following waits for a topic to be made.
  reads: (call) => call.options.exit === true && call.options.group === undefined,
  summary: "print messages of topics",
  description:
    "Print messages of topics (names or patterns), from a position or as a member of a group.",
  arguments: [{
    name: "topics",
    required: true,
    variadic: true,
    help: "topics to read, or patterns such as orders.* and logs.#",
    complete: "topic",
  }],
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
      complete: ["beginning", "end"],
    },
    {
      long: "last",
      value: "n",
      help: "start at the N most recent messages (by time)",
      parse: wholeNumber("--last"),
    },
    {
      long: "until",
      value: "where",
      help: "stop before this offset, ISO time or -DUR, and exit 0",
    },
    {
      long: "partition",
      value: "n",
      help: "read only this partition (repeatable)",
      parse: wholeNumber("--partition"),
      repeatable: true,
    },
    { long: "key", short: "k", value: "key", help: "only messages with this key" },
    {
      long: "header",
      short: "H",
      value: "name=value",
      help: "only messages with this header (repeatable)",
      repeatable: true,
    },
    {
      long: "grep",
      value: "regex",
      help: "only messages whose payload matches this regular expression",
    },
    { long: "invert", help: "keep the messages that do not match the filters" },
    { long: "idle", value: "dur", help: "exit 0 after this long with no new message" },
    { long: "all", help: "show cancelled and expired messages too" },
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
      help: "raw, json, or a template like '{offset}\\t{payload}'",
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
      help: "give up after this long in all (with -n: exit 3 if fewer came)",
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
    ["mq sub orders --last 10 -e", "the ten most recent messages"],
    ["mq sub orders --from -1h --until -10m", "a window: from an hour ago to ten minutes ago"],
    ["mq sub orders --partition 0 -e", "only partition 0"],
    ["mq sub orders payments 'logs.#' -e", "several topics and patterns (* one word, # any)"],
    ["mq sub logs --grep 'error|fatal' -e", "payloads that match a regular expression"],
    ["mq sub logs --header level=debug --invert -e", "all but the debug ones"],
    ["mq sub orders --key customer-7 -e", "one key's messages"],
    ["mq sub orders --idle 5s", "stop after 5s without a new message"],
    [
      "mq sub jobs --all -e --format json",
      "cancelled and expired ones too (deliver_at, expires_at)",
    ],
    ["mq sub orders -n 1 --timeout 5s", "wait up to 5s for one message (exit 3 if none)"],
    ["mq sub orders --format json -e", "one JSON envelope per line"],
    ["mq sub orders --format '{offset}\\t{key}\\t{payload} {header.trace}' -e"],
  ],
  notes: `
With --group the group's position moves only after a message was written to
stdout; messages that were not are delivered again. --last, --until,
--partition, --idle, --all, the filters (--key, --header, --grep, --invert)
and several topics are for reads without a group. --invert keeps the messages
that do not match all of --key, --header and --grep. --last takes the N most
recent over the partitions read, by time, before any filter. --timeout is a
total deadline; --idle ends the read once nothing new came for that long.
A plain read skips cancelled and expired messages (as groups do); --all shows
them too. Delayed messages keep their place (the envelope says when each is
due, deliver_at).`,
  run: async (call) => {
    const { runSub } = await load<typeof Sub>(import.meta.url, "../commands/sub.ts");
    const { openBackend } = await load<typeof Runtime>(import.meta.url, "../runtime.ts");
    await runSub(
      call.args.topics,
      { ...(call.options as Sub.SubOptions), quiet: call.globals.quiet },
      async () => (await openBackend(call)).mq,
    );
  },
};
