/** `mq top`: a live terminal view of topics and groups. */
import { type CommandDefinition, load } from "../definition.ts";
import type * as Top from "../commands/top.ts";

/** `mq top`, as a definition. */
export const command: CommandDefinition = {
  name: "top",
  reads: true,
  summary: "a live terminal view of topics and groups",
  description:
    "Topics and groups with rates, lag and dead letters, redrawn in place. Keys: r publish rate, c consume rate, m messages, l lag, d dead letters, n name, q quit.",
  options: [
    {
      long: "topics",
      value: "pattern",
      help: "only topics matching (repeatable; * one word, # any)",
      repeatable: true,
      complete: "topic",
    },
    { long: "interval", value: "dur", help: "time between refreshes", default: "1s" },
    { long: "once", help: "print one snapshot (rates over one interval) and exit" },
    { long: "json", help: "with --once: print JSON" },
  ],
  examples: [
    ["mq top", "every topic, refreshed each second"],
    ["mq top --topics 'orders.#' --interval 5s"],
    ["mq top --once --json | jq '.topics[] | {name, publishRate, maxLag}'"],
  ],
  run: async (call) => {
    const { topCommand } = await load<typeof Top>(import.meta.url, "../commands/top.ts");
    await topCommand(call.options as Parameters<typeof topCommand>[0], call);
  },
};
