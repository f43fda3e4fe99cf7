/**
 * The MQTT connector of `mq bridge` (`mqtt://[user:pass@]host:port`,
 * `mqtts://` for TLS), loaded only when a bridge uses it; a
 * `BrokerConnector` of core/bridge.ts, through mq's own MQTT client
 * (`_client.ts`: bytes and batches, no npm client).
 *
 * Going out (`--to`), each message is a PUBLISH to the topic `--target`
 * names (default: the local topic), at QoS `?qos=` (default 1); the local
 * position moves only once the broker acknowledged every message of a
 * batch (PUBACK; PUBCOMP at QoS 2; at QoS 0, once written).
 *
 * Coming in (`--from`), `--subjects` are topic filters (`+`, `#`),
 * subscribed at QoS 1 (or `?qos=0`) in a persistent session: the client id
 * is `mq-bridge-<group>`, clean start off and the session kept for
 * `?session_expiry=` (default 7d), so what is published while the bridge is
 * down arrives when it is back. Each PUBACK goes only after the local store
 * took the message. With `-e`, it stops once nothing arrived for `?idle=`
 * (default 2s).
 *
 * | mq | MQTT 5 |
 * | --- | --- |
 * | payload | the PUBLISH payload, bytes as they are |
 * | key | user property `mq-key` |
 * | message id | user property `mq-id` (out: the id published with, else `<topic>:<partition>-<offset>`; in: the message's id, none without it; not deduplicated) |
 * | header NAME | user property NAME |
 * | what cannot be a user property as it is | user property `mq-meta`, JSON `{ key?, id?, headers? }`: a header named `mq-key`, `mq-id` or `mq-meta`, a name or value with control characters (which MQTT refuses) |
 * | origin | in: header `mqtt-topic` |
 *
 * MQTT 3.1.1 (`?version=3.1.1`, or a broker that refuses 5) has no user
 * properties: only the payload travels, both ways; name what matters in the
 * topic with `--target` (`{key}`, `{header.NAME}`).
 *
 * At least once both ways. MQTT gives a message no stable id of its own:
 * coming in, a message the broker delivers again (the PUBACK of a run that
 * stopped never went, so it has the DUP flag) is stored again, and the
 * bridge says how many came so. Going out, a batch resent after a crash or an
 * outage is published again (`mq-id` tells the copies apart).
 *
 * @module
 */
import type { BridgeSink, IntoOptions, SinkOptions } from "../../core/bridge.ts";
import { groupByTarget } from "../../core/bridge.ts";
import { compileTarget } from "../../core/bridge_target.ts";
import type { BackendUrl } from "../../core/backend_url.ts";
import type { Mq, OutgoingMessage } from "../../core/client.ts";
import type { ReceivedMessage } from "../../core/message.ts";
import { MqError } from "../../core/errors.ts";
import { retrier, sleep, storeAsIs } from "../_bridge_in.ts";
import { connectMqtt, parseMqttUrl } from "./_connection.ts";
import type { Incoming } from "./_client.ts";
import { messageOf, mqttSafe, userPropertiesOf } from "./_mapping.ts";

export { parseMqttUrl } from "./_connection.ts";

/** Publishes awaiting their acknowledgement at once. */
const WINDOW = 1024;
/** Messages stored at once coming in. */
const BATCH = 512;
/**
 * MQTT 5: unacknowledged PUBLISHes the broker may send at once: more than a
 * batch, so that the next batch arrives while one is stored.
 */
const RECEIVE_MAXIMUM = 1024;
/**
 * Messages (or payload bytes) waiting for their store at which reading
 * stops until half are stored. Well above the Receive Maximum: mosquitto
 * 2.0 sends past it once PUBACKs flow (27,952 unacknowledged measured with
 * 1024 asked), and a bridge killed while the socket holds unread bytes
 * resets the connection, which drops the PUBACKs the broker had not read
 * yet (so pausing early makes a kill -9 store more again).
 */
const PAUSE_AT = 8192, PAUSE_BYTES = 16 << 20;

/**
 * Refuses a topic name MQTT does not take for a PUBLISH.
 *
 * @throws {MqError} `INVALID_ARGUMENT`
 */
function checkTopicName(name: string, topic: string): void {
  if (name === "" || /[+#]/.test(name) || !mqttSafe(name)) {
    throw new MqError(
      "INVALID_ARGUMENT",
      `MQTT topic ${
        JSON.stringify(name)
      } (for messages of ${topic}) must be non-empty, without + # or control characters`,
    );
  }
}

/**
 * A sink onto MQTT topics: each message a PUBLISH at the URL's QoS to the
 * topic `options.target` names (default `{topic}`), at most 1024 awaiting
 * their acknowledgement; `send` resolves once every one is acknowledged.
 *
 * @example
 * ```ts ignore
 * import { parseBackendUrl } from "../../core/backend_url.ts";
 * const sink = await subjectSink(parseBackendUrl("mqtt://127.0.0.1:1883?qos=1"), { target: "mq/{topic}" });
 * ```
 * @throws {MqError} `INVALID_URL`, `INVALID_ARGUMENT` (a bad template), `UNREACHABLE`
 */
export async function subjectSink(url: BackendUrl, options: SinkOptions = {}): Promise<BridgeSink> {
  const conf = parseMqttUrl(url);
  for (const name of ["session_expiry", "idle"]) {
    if (url.params.has(name)) {
      throw new MqError("INVALID_URL", `${url.scheme}: ${name} applies to bridge --from`);
    }
  }
  const targetOf = options.target === undefined || options.target === "{topic}"
    ? undefined
    : compileTarget(options.target);
  let onState = options.onState;
  const client = await connectMqtt(conf, { window: WINDOW, onState: (line) => onState?.(line) });
  const v5 = client.version === 5;
  const publish = (name: string, topic: string, messages: ReceivedMessage[]) =>
    client.publish(
      name,
      messages.map((m) => m.payload),
      v5 ? (i) => userPropertiesOf(topic, messages[i]) as Record<string, string> : undefined,
      conf.qos,
    );
  return {
    async send(topic, messages) {
      if (!targetOf) {
        checkTopicName(topic, topic);
        return await publish(topic, topic, messages);
      }
      const byName = groupByTarget(topic, messages, targetOf);
      for (const name of byName.keys()) checkTopicName(name, topic);
      // Every target's PUBLISHes share the window; the batch settles once all are acknowledged.
      await Promise.all([...byName].map(([name, list]) => publish(name, topic, list)));
    },
    watch(say) {
      onState = say;
    },
    close: () => client.end(),
  };
}

/**
 * Brings messages of the topic filters `options.subjects` into the topic
 * `options.into` through a persistent session (client id
 * `mq-bridge-<group>`), acknowledging each only after `publishBatch`
 * resolved. Without `follow`, it returns once nothing arrived for the URL's
 * `idle` time.
 *
 * @example
 * ```ts ignore
 * import { parseBackendUrl } from "../../core/backend_url.ts";
 * const n = await bridgeInto(parseBackendUrl("mqtt://127.0.0.1:1883"), mq, {
 *   subjects: ["sensors/#"], into: "sensors", group: "bridge", follow: false,
 * });
 * ```
 * @throws {MqError} `INVALID_URL`, `INVALID_ARGUMENT` (a bad filter), `UNREACHABLE`
 */
export async function bridgeInto(
  url: BackendUrl,
  target: Mq,
  options: IntoOptions,
): Promise<number> {
  const conf = parseMqttUrl(url);
  if (conf.qos === 2) {
    throw new MqError(
      "INVALID_URL",
      `${url.scheme}: qos=2 applies to bridge --to; --from subscribes at QoS 1 at most (it acknowledges after the store)`,
    );
  }
  if (options.bind?.length) {
    throw new MqError("INVALID_ARGUMENT", "--bind is for AMQP brokers, not MQTT");
  }
  for (const f of options.subjects) {
    if (f === "" || !mqttSafe(f) || /#./.test(f) || /[^/]#|\+[^/]|[^/]\+/.test(f)) {
      throw new MqError(
        "INVALID_ARGUMENT",
        `--subjects ${
          JSON.stringify(f)
        } is not an MQTT topic filter (+ and # stand alone between /, # last)`,
      );
    }
  }
  const say = (line: string) => options.onState?.(line);
  const signal = options.signal;
  const clientId = `mq-bridge-${options.group}`;
  const buffer: Incoming[] = [];
  let total = 0, redelivered = 0;
  let lastArrival = Date.now();
  let wake: (() => void) | undefined;
  let ready = false, bytes = 0;

  // Set before the connection: a session's messages may come right after the CONNACK.
  const onMessage = (m: Incoming) => {
    lastArrival = Date.now();
    if (m.dup) redelivered++;
    buffer.push(m);
    bytes += m.payload.length;
    // QoS 0 messages and 3.1.1 have no window: stop reading until the batch is stored
    // (not before the SUBACK, which comes after a session's first messages).
    // (The client's own flag: a lost connection resumes reading, and a full
    // buffer must pause it again.)
    if ((buffer.length >= PAUSE_AT || bytes >= PAUSE_BYTES) && ready && !client.paused) {
      client.pause(); // set by then: ready comes after the connection
    }
    wake?.();
  };
  const client = await connectMqtt(conf, {
    clientId,
    persistent: true,
    receiveMaximum: RECEIVE_MAXIMUM,
    onState: say,
    onMessage,
  });
  const v5 = client.version === 5;

  const subscribed = client.subscribe(options.subjects, conf.qos).then((codes) => {
    ready = true;
    const refused = codes.findIndex((c) => c >= 0x80 || c > 2);
    if (refused >= 0) {
      throw new MqError(
        "CONFLICT",
        `the MQTT broker at ${conf.where} refused the subscription to ${
          JSON.stringify(options.subjects[refused])
        }`,
      );
    }
  });

  const run = retrier({ signal, onState: say, recovered: "storing messages again" });
  try {
    // Stopping (SIGTERM) need not wait for a SUBACK that may never come.
    const stopped = new Promise<void>((resolve) => {
      if (signal?.aborted) resolve();
      signal?.addEventListener("abort", () => resolve(), { once: true });
    });
    subscribed.catch(() => {});
    await Promise.race([subscribed, stopped]);
    if (!ready) return 0;
    say(
      `subscribed to ${options.subjects.join(", ")} as ${clientId} (MQTT ${
        v5 ? "5" : "3.1.1"
      }, persistent session)`,
    );
    for (;;) {
      if (buffer.length === 0) {
        if (signal?.aborted) break;
        if (!options.follow && Date.now() - lastArrival >= conf.idleMs) break;
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            signal?.removeEventListener("abort", done);
            wake = undefined;
            resolve();
          };
          const timer = setTimeout(done, options.follow ? 1000 : conf.idleMs);
          signal?.addEventListener("abort", done, { once: true });
          wake = done;
        });
        continue;
      }
      // A moment for more to arrive, so that a batch is stored at once.
      if (buffer.length < BATCH) await sleep(2);
      const batch = buffer.splice(0, BATCH);
      for (const m of batch) bytes -= m.payload.length;
      if (client.paused && buffer.length < PAUSE_AT / 2 && bytes < PAUSE_BYTES / 2) {
        client.resume();
      }
      const messages: OutgoingMessage[] = batch.map((m) =>
        messageOf(m.topic, m.payload, m.properties)
      );
      const r = await run(
        `storing into ${options.into}`,
        () => storeAsIs(target, options.into, messages),
      );
      if (!r) break;
      total += r.count;
      client.ack(batch);
      // The broker sends more only once it has the acks: idle counts from here.
      lastArrival = Date.now();
    }
  } finally {
    await client.end();
  }
  if (redelivered > 0) {
    say(
      `${redelivered} message${
        redelivered === 1 ? "" : "s"
      } came again (DUP flag: delivered before, perhaps stored before); stored again`,
    );
  }
  return total;
}
