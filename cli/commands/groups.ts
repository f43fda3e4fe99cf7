/** `mq groups`, `mq groups reset` and `mq groups rm`. */
import type { Call } from "../definition.ts";
import { parseStartFrom } from "../../connect.ts";
import { MqError } from "../../core/errors.ts";
import { note, openBackend, openResolved, print } from "../runtime.ts";
import { table } from "../format.ts";

/** `mq groups <topic>`: the groups of a topic with their counts. */
export async function groupsList(
  topic: string,
  opts: { json?: boolean },
  cmd: Call,
): Promise<void> {
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
}

/** `mq groups reset <topic> <group> --to WHERE`: a group moved in every partition. */
export async function groupsReset(
  topic: string,
  group: string,
  opts: { to: string; create?: boolean },
  cmd: Call,
): Promise<void> {
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
