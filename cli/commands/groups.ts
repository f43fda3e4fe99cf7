/** `mq groups` and `mq groups reset`. */
import type { Command } from "commander";
import { parseStartFrom } from "../../core/start_position.ts";
import { MqError } from "../../core/errors.ts";
import { note, openBackend, print } from "../runtime.ts";
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
      "\nExamples:\n  mq groups jobs\n  mq groups reset jobs billing --to beginning\n  mq groups reset jobs billing --to -1h",
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
    .option("--create", "create the group if it does not exist (else exit 2)")
    .addHelpText(
      "after",
      `
Examples:
  mq groups reset orders billing --to beginning     process everything again
  mq groups reset orders billing --to end           skip the backlog
  mq groups reset orders billing --to -1h           from an hour ago
  mq groups reset orders billing --to 2024-05-01T00:00:00Z
  mq groups reset orders audit --to -1d --create     a new group, from a day ago

A group that does not exist is exit 2 unless --create.`,
    )
    .action(async (
      topic: string,
      group: string,
      opts: { to: string; create?: boolean },
      cmd: Command,
    ) => {
      const to = parseStartFrom(opts.to);
      const { mq } = await openBackend(cmd);
      try {
        await mq.topics.resetGroup(topic, group, to, { create: opts.create === true }).catch(
          (e) => {
            if (!MqError.is(e, "INVALID_ARGUMENT") || opts.create) throw e;
            throw new MqError("INVALID_ARGUMENT", `${e.message} (--create makes it)`);
          },
        );
        note(`mq: group "${group}" of "${topic}" moved to ${opts.to}`);
      } finally {
        await mq.close();
      }
    });
}
