/** `mq nack`: leased messages for scripts in any language. */
import { type CommandDefinition, load } from "../definition.ts";
import type * as Take from "../commands/take.ts";

const impl = () => load<typeof Take>(import.meta.url, "../commands/take.ts");

/** `mq nack`, as a definition. */
export const command: CommandDefinition = {
  name: "nack",
  summary: "give a taken message back for another attempt",
  description:
    "Nack the message a receipt names: delivered again after --delay (default: backoff), dead-lettered on its last attempt.",
  arguments: [
    { name: "topic", required: true, complete: "topic" },
    { name: "receipt", required: true },
  ],
  options: [
    { long: "delay", value: "dur", help: "deliver it again after this long" },
    { long: "reason", value: "text", help: "why it failed (kept in the dead letter's headers)" },
  ],
  examples: [
    [`r=$(mq take jobs 2>&1 >job.txt | sed -n 's/^receipt: //p')`, "lease one, keep its receipt"],
    [`mq nack jobs "$r" --delay 5m --reason "upstream down"`, "again in 5 minutes, and why"],
  ],
  notes: "Without --delay the message is delivered again after the topic's backoff.",
  run: async (call) =>
    (await impl()).nackCommand(call.args.topic, call.args.receipt, call.options, call),
};
