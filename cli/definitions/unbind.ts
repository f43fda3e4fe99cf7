/** `mq unbind`: remove a binding. */
import { type CommandDefinition, load } from "../definition.ts";
import type * as Exchange from "../commands/exchange.ts";

const impl = () => load<typeof Exchange>(import.meta.url, "../commands/exchange.ts");

/** `mq unbind`, as a definition. */
export const command: CommandDefinition = {
  name: "unbind",
  summary: "remove a binding",
  description:
    "Remove the bindings of a topic (or exchange) to an exchange; with --key only that one.",
  arguments: [
    { name: "exchange", required: true, complete: "exchange" },
    { name: "topic", required: true, complete: "topic" },
  ],
  options: [{ long: "key", value: "pattern", help: "only the binding with this key" }],
  examples: [
    ["mq unbind events audit --key 'orders.#'", "only that one"],
    ["mq unbind events audit", "every binding of events to audit"],
  ],
  run: async (call) =>
    (await impl()).unbindCommand(call.args.exchange, call.args.topic, call.options, call),
};
