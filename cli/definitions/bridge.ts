/** `mq bridge`: mirror topics to another backend or broker, or bring subjects in. */
import { type CommandDefinition, load } from "../definition.ts";
import type * as Bridge from "../commands/bridge.ts";

/** `mq bridge`, as a definition. */
export const command: CommandDefinition = {
  name: "bridge",
  summary: "mirror topics to another backend or broker, or bring subjects in",
  description:
    "Mirror local topics to another backend or broker (--to), or bring broker subjects into a topic (--from).",
  options: [
    { long: "to", value: "url", help: "where to mirror to" },
    {
      long: "topics",
      value: "pattern",
      help: "topics to mirror (* one word, # any; repeatable; default all)",
      repeatable: true,
      complete: "topic",
    },
    {
      long: "target",
      value: "template",
      help:
        "with --to: where each message goes ({topic} {key} {partition} {header.NAME}; default {topic})",
    },
    { long: "from", value: "url", help: "a broker to bring messages from" },
    {
      long: "subjects",
      value: "subject",
      help: "with --from: subjects to bring in (repeatable)",
      repeatable: true,
    },
    {
      long: "into",
      value: "topic",
      help: "with --from: the topic to store them in",
      complete: "topic",
    },
    {
      long: "group",
      short: "g",
      value: "name",
      help: "the group that keeps the bridge's position",
      default: "bridge",
    },
    {
      long: "bind",
      value: "exchange:pattern",
      help: "with --from amqp://: bind the --group queue (repeatable)",
      repeatable: true,
    },
    {
      long: "allow-unroutable",
      help: "with --to amqp://: drop messages no queue takes instead of failing",
    },
    { long: "exit", short: "e", help: "drain what is there, then exit" },
    {
      long: "visibility",
      value: "dur",
      help: "with --to: after a crash, a batch in flight is forwarded again this long after",
      default: "30s",
    },
  ],
  examples: [
    ["mq bridge --to nats://127.0.0.1:4222 --topics 'orders.#'", "mirror topics to NATS subjects"],
    ["mq bridge --to kv:./mirror.sqlite -e", "copy every topic to Deno KV, then exit"],
    ["mq bridge --from nats://127.0.0.1:4222 --subjects 'events.>' --into events"],
    ["mq bridge --to redis://127.0.0.1:6379 --target 'mq:{topic}'", "XADD to Redis streams"],
    ["mq bridge --from redis://127.0.0.1:6379 --subjects orders --into orders -g copier"],
    ["mq bridge --to mqtt://127.0.0.1:1883 --target 'site/{header.site}/{topic}'"],
    ["mq bridge --from mqtt://127.0.0.1:1883 --subjects 'sensors/#' --into sensors"],
    [
      "mq bridge --to 'amqp://guest:guest@127.0.0.1:5672/?exchange=events' --target 'orders.{key}'",
    ],
    [
      "mq bridge --from amqp://guest:guest@127.0.0.1:5672 --bind 'events:orders.#' -g orders --into orders",
    ],
    ["mq bridge --to kafka://127.0.0.1:9092 --topics 'orders.#' -e"],
    ["mq bridge --from kafka://127.0.0.1:9092 --subjects orders -g mq --into orders"],
  ],
  notes: `
A bridge keeps its position as a group (--group, default "bridge") on the
source and moves it only after the target has stored a batch, so it resumes
after a crash or a broker restart and loses nothing. To NATS, a topic goes to
the subject of its name: through JetStream when a stream covers it, with the
message id as Nats-Msg-Id (so a resend within the stream's duplicate window is
a no-op; a message published without --id goes as <topic>:<partition>-<offset>,
as the offsets of two topics in one stream would collide), else as core NATS.
From NATS (--from), each subject a stream covers is read by a durable consumer
of its own (named by the group and the subject), acked only after the messages
are stored, each with the id nats:<stream>:<seq> (a redelivery is dropped as a
duplicate); the subject and the NATS headers are kept as headers. Other
subjects are subscribed to (core NATS: only messages from then on; not with
-e). Redis: each message an XADD (fields payload, mq-key, mq-id, headers);
--from reads by the consumer group --group, XACK after the store, ids
redis:<stream>:<entry-id>. MQTT: QoS 1 publishes (MQTT 5 user properties for
key, id and headers); --from takes topic filters in a persistent session
(client id mq-bridge-<group>), PUBACK after the store. RabbitMQ: persistent,
mandatory, confirmed publishes to ?exchange= with the routing key of --target;
a message no queue takes stops the bridge (exit 1) unless --allow-unroutable;
queues come in with manual acks after the store and message-id as the id.
Kafka: the idempotent producer (acks=all), the record key is the mq key; in, a
consumer group with commits after the store and the id
kafka:<topic>:<partition>:<offset>. --target names each message's subject,
stream, topic or routing key from {topic} {key} {partition} {header.NAME}.
Broker outages are retried with backoff. Without -e it runs until stopped and
says on stderr when its state changes (one line per change).`,
  run: async (call) => {
    const { bridgeCommand } = await load<typeof Bridge>(import.meta.url, "../commands/bridge.ts");
    await bridgeCommand(call.options as Bridge.BridgeOptions, call);
  },
};
