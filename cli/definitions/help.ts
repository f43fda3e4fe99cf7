/** `mq help [command...]`. */
import type { CommandDefinition } from "../definition.ts";
import { load } from "../definition.ts";
import type * as Help from "../help.ts";

/** `mq help`: the help of a command or subcommand. */
export const command: CommandDefinition = {
  name: "help",
  summary: "show help for a command or subcommand",
  description: "Show help for a command or subcommand.",
  arguments: [{
    name: "command",
    variadic: true,
    help: "a command and its subcommand, e.g. topics create",
    complete: "command",
  }],
  examples: [
    ["mq help pub", "same as mq pub --help"],
    ["mq help topics create", "help for a subcommand"],
  ],
  run: async (call) => {
    if (!call.helpOf) throw new Error("mq help: run through main.ts, which gives helpOf");
    const { printText } = await load<typeof Help>(import.meta.url, "../help.ts");
    await printText(await call.helpOf(call.args.command));
  },
};
