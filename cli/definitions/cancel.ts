/** `mq cancel`: a delayed message removed before it is delivered. */
import { type CommandDefinition, load } from "../definition.ts";
import type * as Peek from "../commands/peek.ts";

const impl = () => load<typeof Peek>(import.meta.url, "../commands/peek.ts");

/** `mq cancel`, as a definition. */
export const command: CommandDefinition = {
  name: "cancel",
  summary: "remove a delayed message before it is delivered",
  description: "Remove a delayed message (mq pub --delay) that has not been delivered yet.",
  arguments: [
    { name: "topic", required: true, complete: "topic" },
    { name: "id", required: true, help: "the message id (mq pub --id)" },
  ],
  examples: [
    ["mq pub reminders --delay 1h --id r-42 'call back'"],
    ["mq cancel reminders r-42"],
  ],
  run: async (call) => (await impl()).cancelCommand(call.args.topic, call.args.id, call),
};
