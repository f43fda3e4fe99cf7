/** `mq reply`: answer requests with a command's output. */
import { type CommandDefinition, load, wholeNumber } from "../definition.ts";
import type * as Request from "../commands/request.ts";

const impl = () => load<typeof Request>(import.meta.url, "../commands/request.ts");

/** `mq reply`, as a definition. */
export const command: CommandDefinition = {
  name: "reply",
  summary: "answer requests with a command's output",
  description: "Answer each request of a topic with COMMAND's stdout (the request on its stdin).",
  arguments: [
    { name: "topic", required: true, complete: "topic" },
    {
      name: "command",
      required: true,
      variadic: true,
      help: "the command and its arguments (after --)",
      complete: "file",
    },
  ],
  options: [
    {
      long: "group",
      short: "g",
      value: "group",
      help: "the group of repliers",
      default: "default",
      complete: "group",
    },
    {
      long: "concurrency",
      short: "c",
      value: "n",
      help: "commands running at once",
      parse: wholeNumber("--concurrency", 1),
      default: 1,
    },
    { long: "exit", short: "e", help: "exit when no request is waiting" },
  ],
  examples: [
    ["mq reply rpc.upper -- tr a-z A-Z", "answer with the command's stdout"],
    ["mq reply rpc.upper -c 4 -e -- ./answer.sh", "four at a time, exit when none waits"],
  ],
  run: async (call) =>
    (await impl()).replyCommand(call.args.topic, call.args.command, call.options as never, call),
};
