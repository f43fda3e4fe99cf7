/** `mq pub`: publish arguments, or stdin lines, as messages. */
import { type CommandDefinition, load, wholeNumber } from "../definition.ts";
import type * as Pub from "../commands/pub.ts";

/** `mq pub`, as a definition. */
export const command: CommandDefinition = {
  name: "pub",
  summary: "publish messages from arguments or stdin",
  description: "Publish each payload argument as one message; with none, each line of stdin.",
  arguments: [
    {
      name: "topic",
      help: "topic to publish to (created with defaults if missing); none with --exchange",
      complete: "topic",
    },
    { name: "payload", variadic: true, help: "messages; without them stdin is read" },
  ],
  options: [
    { long: "null", short: "0", help: "stdin messages are separated by NUL bytes, not newlines" },
    { long: "raw", help: "all of stdin is one message" },
    {
      long: "key",
      short: "k",
      value: "key",
      help: "key of every message (picks the partition, keeps order)",
    },
    { long: "key-delimiter", short: "K", value: "sep", help: 'each line is "key SEP payload"' },
    {
      long: "header",
      short: "H",
      value: "name=value",
      help: "a header on every message (repeatable)",
      repeatable: true,
    },
    { long: "id", value: "id", help: "message id, deduplicated within the topic's window" },
    { long: "delay", value: "dur", help: "not delivered to groups before this long from now" },
    { long: "ttl", value: "dur", help: "never delivered after this long from now" },
    {
      long: "partition",
      value: "n",
      help: "write to this partition",
      parse: wholeNumber("--partition"),
    },
    { long: "json-lines", help: "each line is a JSON envelope (as mq sub --format json prints)" },
    { long: "skip-invalid", help: "report and skip bad lines instead of stopping" },
    { long: "skip-empty", help: "drop empty lines" },
    { long: "json", help: "print the summary as JSON on stdout" },
    {
      long: "atomic",
      help:
        "all of stdin (or the arguments) is one transaction: on a bad line or a failure nothing is stored",
    },
    {
      long: "exchange",
      value: "exchange",
      help: "publish through an exchange instead of to a topic",
      complete: "exchange",
    },
    { long: "routing-key", value: "key", help: "with --exchange: the routing key", default: "" },
    {
      long: "allow-unroutable",
      help: "with --exchange: drop a message no binding takes instead of failing",
    },
  ],
  examples: [
    [`mq pub orders '{"id":1}' '{"id":2}'`, "two messages from arguments"],
    ["seq 1000 | mq pub numbers", "one message per stdin line"],
    ["mq pub events < events.log", "a file, line by line"],
    ["find . -print0 | mq pub files -0", "NUL-delimited input"],
    ["mq pub blobs --raw < photo.jpg", "all of stdin as one message"],
    [`printf 'k1 hello\\n' | mq pub t -K ' '`, '"key SEP payload" lines'],
    ["mq sub a --format json -e | mq pub b --json-lines", "copy a topic faithfully"],
    ["seq 100 | mq pub numbers --atomic", "all 100 lines or none of them"],
  ],
  notes: `
Lines end with LF or CRLF (the line ending is removed, every other byte is
kept); a last line without a newline is still a message; an empty line is an
empty message unless --skip-empty. On a bad line mq stops with exit 2, says
which line and how many messages were published before it, and publishes
nothing from that line on (--skip-invalid reports and skips it instead).
With --atomic all of stdin (or the arguments) is one transaction: a bad line,
a failure or a kill stores nothing (kv: up to one Deno KV commit, ~800 KiB).`,
  run: async (call) => {
    const { pubCommand } = await load<typeof Pub>(import.meta.url, "../commands/pub.ts");
    await pubCommand(call.args.topic, call.args.payload, call.options as Pub.PubOptions, call);
  },
};
