/** `mq peek`: the next messages a group would get, without taking them. */
import { type CommandDefinition, load, wholeNumber } from "../definition.ts";
import type * as Peek from "../commands/peek.ts";
import { FORMATS } from "../definition.ts";

const impl = () => load<typeof Peek>(import.meta.url, "../commands/peek.ts");

/** `mq peek`, as a definition. */
export const command: CommandDefinition = {
  name: "peek",
  reads: true,
  summary: "show the next messages a group would get, without taking them",
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
    {
      long: "count",
      short: "n",
      value: "n",
      help: "how many",
      parse: wholeNumber("--count", 1),
      default: 10,
    },
    {
      long: "format",
      short: "f",
      value: "format",
      help: "raw, json (one envelope a line), or a template",
      default: "raw",
      complete: FORMATS,
    },
    { long: "json", help: "print one JSON array of envelopes" },
  ],
  examples: [
    ["mq peek jobs", 'the next 10 for the group "default"'],
    ["mq peek jobs -g billing -n 3 --format '{offset} {attempt} {payload}'"],
    ["mq peek jobs --json | jq '.[].offset'"],
  ],
  run: async (call) => (await impl()).peekCommand(call.args.topic, call.options as never, call),
};
