/** `mq exchange create|ls|rm`. */
import { type CommandDefinition, load } from "../definition.ts";
import type * as Exchange from "../commands/exchange.ts";

const impl = () => load<typeof Exchange>(import.meta.url, "../commands/exchange.ts");

/** The types of exchanges. */
export const EXCHANGE_TYPES: readonly string[] = ["direct", "fanout", "topic", "headers"];

const create: CommandDefinition = {
  name: "create",
  summary: "create an exchange",
  arguments: [{ name: "name", required: true }],
  options: [{
    long: "type",
    value: "type",
    help: "direct, fanout, topic or headers",
    required: true,
    complete: EXCHANGE_TYPES,
  }],
  examples: [
    ["mq exchange create events --type topic", "route by pattern: orders.*, #.error"],
    ["mq exchange create all --type fanout", "every bound topic gets every message"],
  ],
  run: async (call) => (await impl()).exchangeCreate(call.args.name, call.options as never, call),
};

const ls: CommandDefinition = {
  name: "ls",
  reads: true,
  summary: "list exchanges with their bindings",
  options: [{ long: "json", help: "print JSON" }],
  examples: [["mq exchange ls", "name, type, bindings"], ["mq exchange ls --json"]],
  run: async (call) => (await impl()).exchangeList(call.options, call),
};

const rm: CommandDefinition = {
  name: "rm",
  summary: "remove an exchange and its bindings",
  arguments: [{ name: "name", required: true, complete: "exchange" }],
  examples: [["mq exchange rm events", "the exchange and its bindings (topics stay)"]],
  run: async (call) => (await impl()).exchangeRemove(call.args.name, call),
};

/** `mq exchange`, as a definition. */
export const command: CommandDefinition = {
  name: "exchange",
  summary: "create, list and remove exchanges",
  description: "Exchanges route a published message to the topics bound to them.",
  subcommands: [create, ls, rm],
  examples: [
    ["mq exchange create events --type topic"],
    ["mq bind events eu-orders --key 'orders.*.eu'"],
    ["mq bind events audit --key '#'"],
    [`mq pub --exchange events --routing-key orders.new.eu '{"id":1}'`],
    ["mq exchange create by-kind --type headers"],
    ["mq bind by-kind images --match any -H type=png -H type=jpg"],
    ["mq exchange ls"],
  ],
  notes: `
Types follow AMQP: direct (routing key equals binding key), fanout (every bound
topic), topic (words split by ".", * is one word, # zero or more), headers
(all or any of the -H headers match).`,
};
