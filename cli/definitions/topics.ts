/** `mq topics`: list, create, info, purge, rm. */
import {
  type CommandDefinition,
  load,
  oneOf,
  type OptionDefinition,
  wholeNumber,
} from "../definition.ts";
import type * as Topics from "../commands/topics.ts";

const impl = () => load<typeof Topics>(import.meta.url, "../commands/topics.ts");

const JSON_OPTION: OptionDefinition = { long: "json", help: "print JSON" };

/** `mq topics ls` (also plain `mq topics`). */
const ls: CommandDefinition = {
  name: "ls",
  reads: true,
  summary: "list topics with partitions and message counts",
  options: [JSON_OPTION],
  examples: [
    ["mq topics ls", "TOPIC, PARTITIONS, MESSAGES"],
    ["mq topics ls --json", "the same as JSON"],
  ],
  run: async (call) => (await impl()).topicsList(call.options, call),
};

const create: CommandDefinition = {
  name: "create",
  summary: "create a topic with settings",
  description: "Create a topic with settings (a publish creates one with defaults).",
  arguments: [{ name: "topic", required: true }],
  options: [
    {
      long: "partitions",
      value: "n",
      help: "partitions (a key's hash picks one)",
      parse: wholeNumber("--partitions", 1),
    },
    { long: "retention-age", value: "dur", help: "remove messages older than this" },
    {
      long: "max-messages",
      value: "n",
      help: "keep at most N messages per partition",
      parse: wholeNumber("--max-messages", 1),
    },
    {
      long: "max-bytes",
      value: "n",
      help: "keep at most N bytes per partition (as stored)",
      parse: wholeNumber("--max-bytes", 1),
    },
    {
      long: "overflow",
      value: "policy",
      help: "when full: drop-oldest or reject",
      parse: oneOf("--overflow", ["drop-oldest", "reject"]),
      default: "drop-oldest",
      complete: ["drop-oldest", "reject"],
    },
    {
      long: "dedup-window",
      value: "dur",
      help: "drop a repeated message id within this window",
      default: "2m",
    },
    {
      long: "max-attempts",
      value: "n",
      help: "deliveries before a message is dead-lettered",
      parse: wholeNumber("--max-attempts", 1),
    },
    { long: "dlq", value: "topic", help: "dead-letter topic (default <topic>.dlq)" },
    { long: "dlq-expired", help: "move expired messages (pub --ttl) to the dead-letter topic too" },
    {
      long: "max-message-bytes",
      value: "n",
      help: "largest message accepted",
      parse: wholeNumber("--max-message-bytes", 1),
    },
    {
      long: "replicas",
      value: "n",
      help:
        "copies of each message on different servers, 1 to 5 (a NATS cluster; default ?replicas= of the URL)",
      parse: wholeNumber("--replicas", 1),
    },
  ],
  examples: [
    ["mq topics create orders --partitions 4", "keys spread over four partitions"],
    ["mq --url nats://h1:4222,h2:4222,h3:4222 topics create orders --replicas 3"],
    ["mq topics create logs --retention-age 7d --max-bytes 1000000000"],
    ["mq topics create jobs --max-attempts 3 --dlq jobs.failed"],
    ["mq topics create feed --max-messages 1000 --overflow reject", "full: pub fails (exit 1)"],
  ],
  run: async (call) => (await impl()).topicsCreate(call.args.topic, call.options, call),
};

const info: CommandDefinition = {
  name: "info",
  reads: true,
  summary: "show a topic's settings, offsets, sizes and groups",
  description: "Show a topic's settings, offsets, sizes and groups (lag, in flight).",
  arguments: [{ name: "topic", required: true, complete: "topic" }],
  options: [JSON_OPTION],
  examples: [
    ["mq topics info orders", "settings, offsets, groups with lag"],
    ["mq topics info orders --json | jq '.groups[] | {name, lag}'"],
  ],
  run: async (call) => (await impl()).topicsInfo(call.args.topic, call.options, call),
};

const purge: CommandDefinition = {
  name: "purge",
  summary: "remove every message of a topic",
  description: "Remove every message of a topic; offsets go on from where they were.",
  arguments: [{ name: "topic", required: true, complete: "topic" }],
  examples: [["mq topics purge orders", "empty it; settings and groups stay"]],
  run: async (call) => (await impl()).topicsPurge(call.args.topic, call),
};

const rm: CommandDefinition = {
  name: "rm",
  summary: "delete a topic with its messages and groups",
  description: "Delete a topic with its messages and groups.",
  arguments: [{ name: "topic", required: true, complete: "topic" }],
  examples: [
    ["mq topics rm orders", "gone, with its messages and groups"],
    ["mq topics --json | jq -r '.[].name' | grep '^tmp-' | xargs -n1 mq topics rm"],
  ],
  run: async (call) => (await impl()).topicsRemove(call.args.topic, call),
};

/** `mq topics`, as a definition. */
export const command: CommandDefinition = {
  name: "topics",
  reads: true,
  summary: "list and manage topics",
  description:
    "List topics with message counts; subcommands create, inspect, purge and remove them.",
  options: [JSON_OPTION],
  subcommands: [ls, create, info, purge, rm],
  examples: [
    ["mq topics", "list topics with message counts"],
    ["mq topics create orders --partitions 4", "a topic with four partitions"],
    ["mq topics create logs --retention-age 7d --max-bytes 1000000000"],
    ["mq topics info orders", "offsets, sizes, groups with lag"],
    ["mq topics purge orders", "remove every message (offsets go on)"],
    ["mq topics rm orders", "delete the topic, its messages and groups"],
  ],
  run: async (call) => (await impl()).topicsList(call.options, call),
};
