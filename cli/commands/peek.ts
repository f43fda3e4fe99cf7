/** `mq peek` and `mq cancel`. */
import type { Command } from "commander";
import { MqError } from "../../core/errors.ts";
import { assertName } from "../../core/names.ts";
import { formatterFor } from "../message_format.ts";
import { toEnvelope } from "../envelope.ts";
import { note, openBackend, print, wholeNumber } from "../runtime.ts";

/** Adds `peek` and `cancel` to the program. */
export function registerPeek(program: Command): void {
  program
    .command("peek")
    .summary("show the next messages a group would get, without taking them")
    .description("Show the next messages a group would get, without taking them.")
    .argument("<topic>")
    .option("-g, --group <group>", "the group", "default")
    .option("-n, --count <n>", "how many", wholeNumber("--count", 1), 10)
    .option("-f, --format <format>", "raw, json (one envelope a line), or a template", "raw")
    .option("--json", "print one JSON array of envelopes")
    .addHelpText(
      "after",
      "\nExamples:\n  mq peek jobs                          the next 10 for the group \"default\"\n  mq peek jobs -g billing -n 3 --format '{offset} {attempt} {payload}'\n  mq peek jobs --json | jq '.[].offset'",
    )
    .action(
      async (
        topic: string,
        opts: { group: string; count: number; format: string; json?: boolean },
        cmd: Command,
      ) => {
        assertName("topic", topic);
        const format = formatterFor(opts.format);
        const { mq } = await openBackend(cmd);
        try {
          const messages = await mq.peek(topic, { group: opts.group, count: opts.count });
          if (opts.json) {
            return await print(`[${messages.map((m) => toEnvelope(m)).join(",")}]\n`);
          }
          const dec = new TextDecoder();
          await print(
            messages.map((m) => (format ? format(m) : dec.decode(m.payload)) + "\n").join(""),
          );
        } finally {
          await mq.close();
        }
      },
    );

  program
    .command("cancel")
    .summary("remove a delayed message before it is delivered")
    .description("Remove a delayed message (mq pub --delay) that has not been delivered yet.")
    .argument("<topic>")
    .argument("<id>", "the message id (mq pub --id)")
    .addHelpText(
      "after",
      "\nExamples:\n  mq pub reminders --delay 1h --id r-42 'call back'\n  mq cancel reminders r-42",
    )
    .action(async (topic: string, id: string, _opts: unknown, cmd: Command) => {
      assertName("topic", topic);
      const { mq } = await openBackend(cmd);
      try {
        if (!(await mq.cancel(topic, id))) {
          throw new MqError(
            "TOPIC_NOT_FOUND",
            `no delayed message with id ${JSON.stringify(id)} waits in "${topic}"`,
          );
        }
        note(`mq: cancelled ${JSON.stringify(id)} in "${topic}"`);
      } finally {
        await mq.close();
      }
    });
}
