/** `mq groups`, `mq groups reset` and `mq groups rm`. */
import type { Command } from "commander";
import { parseStartFrom } from "../../core/start_position.ts";
import { globals, note, openBackend, openResolved, print } from "../runtime.ts";
import { table } from "./topics.ts";

/** Adds `groups` to the program. */
export function registerGroups(program: Command): void {
  const groups = program
    .command("groups")
    .summary("list a topic's groups; move one")
    .description(
      "List the groups of a topic with lag, in-flight, retrying, delayed and dead-lettered counts.",
    )
    .argument("<topic>")
    .option("--json", "print JSON")
    .addHelpText(
      "after",
      "\nExamples:\n  mq groups jobs\n  mq groups reset jobs billing --to beginning\n  mq groups reset jobs billing --to -1h\n  mq groups rm jobs billing",
    )
    .action(async (topic: string, opts: { json?: boolean }, cmd: Command) => {
      const { mq } = await openBackend(cmd);
      try {
        const list = await mq.topics.groups(topic);
        if (opts.json) return await print(JSON.stringify(list) + "\n");
        if (list.length === 0) return note(`mq: "${topic}" has no groups yet`);
        await print(
          table(
            ["GROUP", "LAG", "IN-FLIGHT", "RETRYING", "DELAYED", "DEAD-LETTERED", "EXPIRED"],
            list.map((
              g,
            ) => [g.name, g.lag, g.inFlight, g.retrying, g.delayed, g.deadLettered, g.expired]),
          ),
        );
      } finally {
        await mq.close();
      }
    });

  groups
    .command("reset")
    .description("Move a group to a position in every partition (its leases are dropped).")
    .argument("<topic>")
    .argument("<group>")
    .requiredOption("--to <where>", "beginning, end, an offset, an ISO time or -DUR")
    .addHelpText(
      "after",
      `
Examples:
  mq groups reset orders billing --to beginning     process everything again
  mq groups reset orders billing --to end           skip the backlog
  mq groups reset orders billing --to -1h           from an hour ago
  mq groups reset orders billing --to 2024-05-01T00:00:00Z`,
    )
    .action(async (topic: string, group: string, opts: { to: string }, cmd: Command) => {
      const to = parseStartFrom(opts.to);
      const { mq } = await openBackend(cmd);
      try {
        await mq.topics.resetGroup(topic, group, to);
        note(`mq: group "${group}" of "${topic}" moved to ${opts.to}`);
      } finally {
        await mq.close();
      }
    });

  groups
    .command("rm")
    .description(
      "Delete a group's state with its leases (also a damaged document); its consumers start it afresh.",
    )
    .argument("<topic>")
    .argument("<group>")
    .addHelpText(
      "after",
      `
Examples:
  mq groups rm orders billing          forget the group "billing" of "orders"`,
    )
    .action(async (topic: string, group: string, _opts: unknown, cmd: Command) => {
      await removeGroup({ ...globals(cmd), topic, group });
    });
}

/** The options of `mq groups rm`, as plain values. */
export interface RemoveGroupOptions {
  /** Backend URL (`--url`). */
  url?: string;
  /** Context name (`--context`). */
  context?: string;
  /** The topic. */
  topic: string;
  /** The group. */
  group: string;
}

/**
 * Runs `mq groups rm`: deletes the group's state document (a damaged one too).
 *
 * @throws {MqError} `INVALID_ARGUMENT` (exit 2) when the topic has no such group
 */
export async function removeGroup(opts: RemoveGroupOptions): Promise<void> {
  const { mq } = await openResolved(opts);
  try {
    await mq.topics.removeGroup(opts.topic, opts.group);
    note(`mq: removed group "${opts.group}" of "${opts.topic}"`);
  } finally {
    await mq.close();
  }
}
