/** `mq doctor [TOPIC...] [--repair] [--json]`: check a store, and repair it. */
import { type CommandDefinition, load } from "../definition.ts";
import type * as Doctor from "../commands/doctor.ts";

/** `mq doctor`, as a definition. */
export const command: CommandDefinition = {
  name: "doctor",
  summary: "check a store (frames, offsets, indexes, state documents); repair it",
  description:
    "Check a store as PRAGMA integrity_check and kafka-dump-log do; --repair fixes what " +
    "can be fixed without losing an acknowledged message.",
  arguments: [{
    name: "topics",
    variadic: true,
    help: "the topics to check (default: all, with leftovers)",
    complete: "topic",
  }],
  options: [
    { long: "repair", help: "fix what can be fixed, and say what was done" },
    { long: "json", help: "print the report as JSON" },
  ],
  examples: [
    ["mq doctor", "check every topic, group and log of the store"],
    ["mq doctor orders --repair", "check one topic and repair what can be repaired"],
    ["mq doctor --json | jq '.findings[].problem'"],
  ],
  notes: `
Checks every frame's checksum, that offsets are dense and increasing, the index
against the segments, every state document's shape, groups pointing past the end,
and leftovers (*.tmp files, state of removed topics); on kv and nats, the checks
that apply. --repair loses no acknowledged message: corrupt bytes move to a side
file (<segment>.corrupt), indexes are rebuilt, leftovers removed, and a damaged
group document is reset to its last known position (a copy is kept).
Exit 0 when the store is clean (or every problem was repaired), 1 when not.`,
  run: async (call) => {
    const { runDoctor } = await load<typeof Doctor>(import.meta.url, "../commands/doctor.ts");
    await runDoctor({
      url: call.globals.url,
      context: call.globals.context,
      quiet: call.globals.quiet,
      topics: call.args.topics ?? [],
      repair: call.options.repair ?? false,
      json: call.options.json ?? false,
    });
  },
};
