/** `mq peek` and `mq cancel`. */
import type { Call } from "../definition.ts";
import { MqError } from "../../core/errors.ts";
import { assertName } from "../../connect.ts";
import { formatterFor } from "../message_format.ts";
import { toEnvelope } from "../envelope.ts";
import { note, openBackend, print } from "../runtime.ts";

/** `mq peek <topic>`: the next messages a group would get, not taken. */
export async function peekCommand(
  topic: string,
  opts: { group: string; count: number; format: string; json?: boolean },
  cmd: Call,
): Promise<void> {
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
}

/** `mq cancel <topic> <id>`: a delayed message removed before it is delivered. */
export async function cancelCommand(topic: string, id: string, cmd: Call): Promise<void> {
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
}
