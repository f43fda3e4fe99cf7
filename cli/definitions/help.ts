/** `mq help [command...]`. */
import type { CommandDefinition } from "../definition.ts";
import { load } from "../definition.ts";
import type * as Help from "../help.ts";
import type * as Registry from "../registry.ts";

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
    const [{ helpText, printText }, { loadProgram }] = await Promise.all([
      load<typeof Help>(import.meta.url, "../help.ts"),
      load<typeof Registry>(import.meta.url, "../registry.ts"),
    ]);
    await printText(helpText(await loadProgram(), call.args.command));
  },
};
