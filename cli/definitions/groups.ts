/** `mq groups <topic>`, `mq groups reset` and `mq groups rm`. */
import { type CommandDefinition, load } from "../definition.ts";
import type * as Groups from "../commands/groups.ts";

const impl = () => load<typeof Groups>(import.meta.url, "../commands/groups.ts");

const reset: CommandDefinition = {
  name: "reset",
  summary: "move a group to a position in every partition",
  description: "Move a group to a position in every partition (its leases are dropped).",
  arguments: [
    { name: "topic", required: true, complete: "topic" },
    { name: "group", required: true, complete: "group" },
  ],
  options: [{
    long: "to",
    value: "where",
    help: "beginning, end, an offset, an ISO time or -DUR",
    required: true,
    complete: ["beginning", "end"],
  }, { long: "create", help: "create the group if it does not exist (else exit 2)" }],
  examples: [
    ["mq groups reset orders billing --to beginning", "process everything again"],
    ["mq groups reset orders billing --to end", "skip the backlog"],
    ["mq groups reset orders billing --to -1h", "from an hour ago"],
    ["mq groups reset orders billing --to 2024-05-01T00:00:00Z"],
    ["mq groups reset orders audit --to -1d --create", "a new group, from a day ago"],
  ],
  notes: "\nA group that does not exist is exit 2 unless --create.",
  run: async (call) =>
    (await impl()).groupsReset(
      call.args.topic,
      call.args.group,
      call.options as { to: string; create?: boolean },
      call,
    ),
};

const rm: CommandDefinition = {
  name: "rm",
  summary: "delete a group's state with its leases",
  description:
    "Delete a group's state with its leases (also a damaged document); its consumers start it afresh.",
  arguments: [
    { name: "topic", required: true, complete: "topic" },
    { name: "group", required: true, complete: "group" },
  ],
  examples: [["mq groups rm orders billing", 'forget the group "billing" of "orders"']],
  run: async (call) =>
    (await impl()).removeGroup({
      ...call.globals,
      topic: call.args.topic,
      group: call.args.group,
    }),
};

/** `mq groups`, as a definition. */
export const command: CommandDefinition = {
  name: "groups",
  reads: true,
  summary: "list a topic's groups; move one",
  description:
    "List the groups of a topic with lag, in-flight, retrying, delayed and dead-lettered counts.",
  arguments: [{ name: "topic", required: true, complete: "topic" }],
  options: [{ long: "json", help: "print JSON" }],
  subcommands: [reset, rm],
  examples: [
    ["mq groups jobs", "GROUP, LAG, IN-FLIGHT, RETRYING, DELAYED, DEAD-LETTERED, EXPIRED"],
    ["mq groups reset jobs billing --to beginning"],
    ["mq groups reset jobs billing --to -1h"],
    ["mq groups rm jobs billing"],
  ],
  run: async (call) => (await impl()).groupsList(call.args.topic, call.options, call),
};
