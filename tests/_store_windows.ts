/**
 * For the incoming bridges' window tests (tests/amqp, tests/kafka): a
 * `memory:` target that records each store it is asked for, and the check
 * that every one stayed within the bridge's window.
 */
import { deepStrictEqual as eq } from "node:assert/strict";
import { BRIDGE_WINDOW, connect, type Mq, type OutgoingMessage } from "../mod.ts";

/** A `memory:` client whose `publishBatch` records each store as [messages, payload bytes]. */
export async function recordingTarget(): Promise<{ target: Mq; stores: [number, number][] }> {
  const target = await connect("memory:");
  const stores: [number, number][] = [];
  const publish = target.publishBatch.bind(target);
  target.publishBatch = (topic, messages) => {
    let bytes = 0;
    for (const m of messages) bytes += (m as OutgoingMessage).payload.length;
    stores.push([messages.length, bytes]);
    return publish(topic, messages);
  };
  return { target, stores };
}

/**
 * That `stores` hold `total` messages in all, each store within
 * {@link BRIDGE_WINDOW} (or `messages` records, for a connector that stores
 * a whole fetch of small ones at once: the bound in bytes stays).
 */
export function assertWithinWindow(
  stores: [number, number][],
  total: number,
  messages = BRIDGE_WINDOW.messages,
): void {
  eq(stores.reduce((a, [m]) => a + m, 0), total);
  for (const [m, bytes] of stores) {
    eq(m <= messages && bytes <= BRIDGE_WINDOW.bytes, true, `${m} ${bytes}`);
  }
}
