/** `mq exchange create|ls|rm`, `mq bind`, `mq unbind`. */
import type { Command } from "commander";
import { MqError } from "../../core/errors.ts";
import type { Binding } from "../../core/routing.ts";
import { collect, headerFlags, note, openBackend, print } from "../runtime.ts";
import { table } from "./topics.ts";

const EXAMPLES = `
Examples:
  mq exchange create events --type topic
  mq bind events eu-orders --key 'orders.*.eu'
  mq bind events audit --key '#'
  mq pub --exchange events --routing-key orders.new.eu '{"id":1}'
  mq exchange create by-kind --type headers
  mq bind by-kind images --match any -H type=png -H type=jpg
  mq exchange ls

Types follow AMQP: direct (routing key equals binding key), fanout (every bound
topic), topic (words split by ".", * is one word, # zero or more), headers
(all or any of the -H headers match).`;

interface BindOptions {
  key?: string;
  match?: string;
  header: string[];
  toExchange?: boolean;
}

/** Adds `exchange`, `bind` and `unbind` to the program. */
export function registerExchange(program: Command): void {
  const ex = program
    .command("exchange")
    .summary("create, list and remove exchanges")
    .description("Exchanges route a published message to the topics bound to them.")
    .addHelpText("after", EXAMPLES);

  ex.command("create")
    .description("Create an exchange.")
    .argument("<name>")
    .requiredOption("--type <type>", "direct, fanout, topic or headers")
    .addHelpText(
      "after",
      `
Examples:
  mq exchange create events --type topic     route by pattern: orders.*, #.error
  mq exchange create all --type fanout        every bound topic gets every message`,
    )
    .action(async (name: string, opts: { type: string }, cmd: Command) => {
      const { mq } = await openBackend(cmd);
      try {
        await mq.exchanges.create(name, opts.type);
        note(`mq: exchange "${name}" (${opts.type}) is there`);
      } finally {
        await mq.close();
      }
    });

  ex.command("ls")
    .description("List exchanges with their bindings.")
    .option("--json", "print JSON")
    .addHelpText(
      "after",
      `
Examples:
  mq exchange ls                             name, type, bindings
  mq exchange ls --json`,
    )
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const { mq } = await openBackend(cmd);
      try {
        const list = await mq.exchanges.list();
        if (opts.json) return await print(JSON.stringify(list) + "\n");
        if (list.length === 0) {
          return note("mq: no exchanges yet (mq exchange create NAME --type TYPE)");
        }
        const rows: (string | number)[][] = [];
        for (const e of list) {
          if (e.bindings.length === 0) rows.push([e.name, e.type, "-", "-"]);
          for (const b of e.bindings) {
            rows.push([e.name, e.type, describe(b), `${b.destinationKind} ${b.destination}`]);
          }
        }
        await print(table(["EXCHANGE", "TYPE", "BINDING", "TO"], rows));
      } finally {
        await mq.close();
      }
    });

  ex.command("rm")
    .description("Remove an exchange and its bindings.")
    .argument("<name>")
    .addHelpText(
      "after",
      `
Examples:
  mq exchange rm events                      the exchange and its bindings (topics stay)`,
    )
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { mq } = await openBackend(cmd);
      try {
        await mq.exchanges.remove(name);
        note(`mq: removed exchange "${name}"`);
      } finally {
        await mq.close();
      }
    });

  const bindOptions = (c: Command) =>
    c.option(
      "--key <pattern>",
      "binding key (direct) or pattern (topic: * one word, # zero or more)",
    )
      .option("--match <all|any>", "headers exchanges: all (default) or any of the -H headers")
      .option(
        "-H, --header <name=value>",
        "headers exchanges: a header to match (repeatable)",
        collect,
        [],
      )
      .option("--to-exchange", "the destination is another exchange, not a topic");

  bindOptions(
    program
      .command("bind")
      .summary("bind a topic (or exchange) to an exchange")
      .description("Bind a topic (or with --to-exchange another exchange) to an exchange.")
      .argument("<exchange>")
      .argument("<topic>"),
  )
    .addHelpText(
      "after",
      "\nExamples:\n  mq bind events eu-orders --key 'orders.*.eu'\n  mq bind by-kind images --match any -H type=png",
    )
    .action(async (exchange: string, destination: string, opts: BindOptions, cmd: Command) => {
      const binding: Binding = {
        destination,
        destinationKind: opts.toExchange ? "exchange" : "topic",
        key: opts.key,
        headers: headerFlags(opts.header),
        match: opts.match as Binding["match"],
      };
      const { mq } = await openBackend(cmd);
      try {
        await mq.exchanges.bind(exchange, binding);
        note(
          `mq: bound ${binding.destinationKind} "${destination}" to "${exchange}" (${
            describe(binding)
          })`,
        );
      } finally {
        await mq.close();
      }
    });

  program
    .command("unbind")
    .summary("remove a binding")
    .description(
      "Remove the bindings of a topic (or exchange) to an exchange; with --key only that one.",
    )
    .argument("<exchange>")
    .argument("<topic>")
    .option("--key <pattern>", "only the binding with this key")
    .addHelpText(
      "after",
      `
Examples:
  mq unbind events audit                     every binding of events to audit
  mq unbind events audit --key 'orders.#'    only that one`,
    )
    .action(async (exchange: string, destination: string, opts: { key?: string }, cmd: Command) => {
      const { mq } = await openBackend(cmd);
      try {
        const n = await mq.exchanges.unbind(exchange, destination, opts.key);
        if (n === 0) {
          throw new MqError(
            "INVALID_ARGUMENT",
            `"${destination}" is not bound to "${exchange}"${
              opts.key ? ` with key ${JSON.stringify(opts.key)}` : ""
            }`,
          );
        }
        note(`mq: removed ${n} binding${n === 1 ? "" : "s"} of "${destination}" to "${exchange}"`);
      } finally {
        await mq.close();
      }
    });
}

/** A binding in one short line. */
export function describe(b: Binding): string {
  if (b.headers) {
    return `${b.match ?? "all"} of ${
      Object.entries(b.headers).map(([k, v]) => `${k}=${v}`).join(",")
    }`;
  }
  return b.key === undefined ? "(any)" : `key ${b.key}`;
}
