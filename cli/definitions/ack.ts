/** `mq ack`: leased messages for scripts in any language. */
import { type CommandDefinition, load } from "../definition.ts";
import type * as Take from "../commands/take.ts";

const impl = () => load<typeof Take>(import.meta.url, "../commands/take.ts");

/** `mq ack`, as a definition. */
export const command: CommandDefinition = {
  name: "ack",
  summary: "settle a taken message as done",
  description: "Ack the message a receipt (from mq take) names.",
  arguments: [
    { name: "topic", required: true, complete: "topic" },
    { name: "receipt", required: true },
  ],
  examples: [
    [`r=$(mq take jobs 2>&1 >job.txt | sed -n 's/^receipt: //p')`],
    [`./handle < job.txt && mq ack jobs "$r"`, "done: never delivered again"],
  ],
  run: async (call) => (await impl()).ackCommand(call.args.topic, call.args.receipt, call),
};
