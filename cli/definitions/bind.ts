/** `mq bind`: bind a topic (or exchange) to an exchange. */
import { type CommandDefinition, load, type OptionDefinition } from "../definition.ts";
import type * as Exchange from "../commands/exchange.ts";

const impl = () => load<typeof Exchange>(import.meta.url, "../commands/exchange.ts");

const BIND_OPTIONS: readonly OptionDefinition[] = [
  {
    long: "key",
    value: "pattern",
    help: "binding key (direct) or pattern (topic: * one word, # zero or more)",
  },
  {
    long: "match",
    value: "all|any",
    help: "headers exchanges: all (default) or any of the -H headers",
    complete: ["all", "any"],
  },
  {
    long: "header",
    short: "H",
    value: "name=value",
    help: "headers exchanges: a header to match (repeatable; with --match any a name may repeat)",
    repeatable: true,
  },
  { long: "to-exchange", help: "the destination is another exchange, not a topic" },
];

/** `mq bind`, as a definition. */
export const command: CommandDefinition = {
  name: "bind",
  summary: "bind a topic (or exchange) to an exchange",
  description: "Bind a topic (or with --to-exchange another exchange) to an exchange.",
  arguments: [
    { name: "exchange", required: true, complete: "exchange" },
    { name: "topic", required: true, complete: "topic" },
  ],
  options: BIND_OPTIONS,
  examples: [
    ["mq bind events eu-orders --key 'orders.*.eu'"],
    ["mq bind by-kind images --match any -H type=png -H type=jpg", "a png or a jpg"],
  ],
  run: async (call) =>
    (await impl()).bindCommand(call.args.exchange, call.args.topic, call.options as never, call),
};
