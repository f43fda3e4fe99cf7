/** `mq request`: send a request and print the first reply. */
import { type CommandDefinition, load } from "../definition.ts";
import type * as Request from "../commands/request.ts";

const impl = () => load<typeof Request>(import.meta.url, "../commands/request.ts");

/** `mq request`, as a definition. */
export const command: CommandDefinition = {
  name: "request",
  summary: "send a request and print the first reply",
  description:
    "Publish a request with reply-to and correlation-id headers and print the first reply.",
  arguments: [
    { name: "topic", required: true, complete: "topic" },
    { name: "payload", help: "the request (default: all of stdin)" },
  ],
  options: [
    {
      long: "timeout",
      value: "dur",
      help: "how long to wait for the reply (exit 3 after)",
      default: "5s",
    },
    {
      long: "header",
      short: "H",
      value: "name=value",
      help: "a header (repeatable)",
      repeatable: true,
    },
  ],
  examples: [
    ["mq reply rpc.upper -- tr a-z A-Z &"],
    ["mq request rpc.upper hello --timeout 2s", "prints HELLO"],
  ],
  run: async (call) =>
    (await impl()).requestCommand(call.args.topic, call.args.payload, call.options as never, call),
};
