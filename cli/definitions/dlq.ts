/** `mq dlq ls|replay|purge`: the dead letters of a topic. */
import { type CommandDefinition, load, wholeNumber } from "../definition.ts";
import type * as Dlq from "../commands/dlq.ts";

const impl = () => load<typeof Dlq>(import.meta.url, "../commands/dlq.ts");

const ls: CommandDefinition = {
  name: "ls",
  reads: true,
  summary: "list dead letters",
  description: "List dead letters: offset, attempts, reason, payload.",
  arguments: [{ name: "topic", required: true, complete: "topic" }],
  options: [{
    long: "format",
    short: "f",
    value: "format",
    help: "table, json (one envelope a line), or a template",
    default: "table",
    complete: ["table", "json"],
  }, {
    long: "json",
    help: "print one JSON array: each envelope with reason, attempts, stderr, ...",
  }],
  examples: [
    ["mq dlq ls jobs", "offset, attempts, reason, stderr, payload"],
    ["mq dlq ls jobs --json | jq -r '.[].stderr'", "what each failed command wrote to stderr"],
    ["mq dlq ls jobs --format json | jq .headers"],
  ],
  notes: `
A dead letter of mq work carries the last lines of the command's stderr (at
most 2 KiB) in its header mq-dlq-stderr. An unknown topic is exit 2.`,
  run: async (call) => (await impl()).dlqList(call.args.topic, call.options as never, call),
};

const replay: CommandDefinition = {
  name: "replay",
  summary: "publish dead letters back to their topic",
  description:
    "Publish dead letters back to the topic with their ids, keys and headers (attempts start again) and remove them from the dead-letter topic.",
  arguments: [{ name: "topic", required: true, complete: "topic" }],
  options: [{
    long: "count",
    short: "n",
    value: "n",
    help: "replay only the first N",
    parse: wholeNumber("--count", 1),
  }],
  examples: [
    ["mq dlq replay jobs", "every dead letter back to jobs"],
    ["mq dlq replay jobs -n 1", "try the oldest one again"],
  ],
  run: async (call) => (await impl()).dlqReplay(call.args.topic, call.options, call),
};

const purge: CommandDefinition = {
  name: "purge",
  summary: "remove every dead letter of a topic",
  description: "Remove every dead letter of a topic.",
  arguments: [{ name: "topic", required: true, complete: "topic" }],
  examples: [["mq dlq purge jobs", "drop them for good"]],
  run: async (call) => (await impl()).dlqPurge(call.args.topic, call),
};

/** `mq dlq`, as a definition. */
export const command: CommandDefinition = {
  name: "dlq",
  summary: "inspect, replay and purge dead letters",
  description: "The dead letters of a topic (messages that failed --max-attempts times).",
  subcommands: [ls, replay, purge],
  examples: [["mq dlq ls jobs"], ["mq dlq replay jobs -n 10"], ["mq dlq purge jobs"]],
};
