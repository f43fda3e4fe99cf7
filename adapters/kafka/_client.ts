/**
 * The Kafka connector's client (kafkajs, imported only when a bridge uses a
 * `kafka://` URL): `kafka://` URLs, the client made from one, and what a
 * failure to connect says; with the two patches kafkajs 2.2.4 needs here
 * (a warning Deno's Node layer prints for each of its negative timers, and
 * the controller lookup of an idempotent producer on librdkafka's mock).
 *
 * @module
 */
import process from "node:process";
import { Kafka } from "kafkajs";
// @ts-ignore: kafkajs ships no types for its internals
import Cluster from "kafkajs/src/cluster/index.js";
import type { BackendUrl } from "../../core/backend_url.ts";
import { MqError } from "../../core/errors.ts";

// kafkajs 2.2.4 schedules a timer with a negative delay when it is not
// throttled (harmless); Node's compatibility layer would print a warning
// for each, so that warning alone is dropped.
const emitWarning = process.emitWarning.bind(process) as (...args: unknown[]) => void;
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  const type = typeof warning === "string"
    ? (typeof rest[0] === "string" ? rest[0] : (rest[0] as { type?: string } | undefined)?.type)
    : warning.name;
  if (type !== "TimeoutNegativeWarning") emitWarning(warning, ...rest);
}) as typeof process.emitWarning;

// An idempotent producer asks the controller for its producer id; a cluster
// whose metadata names a controller it does not list (librdkafka's mock
// cluster says 0) cannot answer that, though any broker may serve
// InitProducerId without a transactional id: then the first listed broker is asked.
const findController = Cluster.prototype.findControllerBroker;
Cluster.prototype.findControllerBroker = async function (this: any) {
  try {
    return await findController.call(this);
  } catch (e) {
    const meta = this.brokerPool?.metadata;
    const listed = meta?.brokers?.some((b: { nodeId: number }) => b.nodeId === meta.controllerId);
    if ((e as Error).name !== "KafkaJSBrokerNotFound" || listed || !meta?.brokers?.length) throw e;
    return await this.findBroker({ nodeId: meta.brokers[0].nodeId });
  }
};

/** What a `kafka://` URL says. */
export interface KafkaTarget {
  brokers: string[];
  clientId: string;
  shown: string;
}

/**
 * Reads a `kafka://` URL.
 *
 * @example
 * ```ts
 * import { parseKafkaUrl } from "./_client.ts";
 * import { parseBackendUrl } from "../../core/backend_url.ts";
 * parseKafkaUrl(parseBackendUrl("kafka://127.0.0.1:9092")).brokers; // ["127.0.0.1:9092"]
 * ```
 *
 * @throws {MqError} `INVALID_URL` for a malformed host list or an unknown option
 */
export function parseKafkaUrl(url: BackendUrl): KafkaTarget {
  const shown = JSON.stringify(url.href);
  const hosts = url.body.startsWith("//") ? url.body.slice(2).replace(/\/$/, "") : "";
  const brokers = hosts.split(",");
  for (const b of brokers) {
    const m = /^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\]):(\d{1,5})$/.exec(b);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) {
      throw new MqError(
        "INVALID_URL",
        `invalid Kafka URL ${shown}: expected kafka://host:port[,host:port...]`,
      );
    }
  }
  for (const k of url.params.keys()) {
    if (k !== "client_id") {
      throw new MqError(
        "INVALID_URL",
        `unknown kafka: URL option ${JSON.stringify(k)} (known: client_id)`,
      );
    }
  }
  return { brokers, clientId: url.params.get("client_id") ?? "mq", shown: url.href };
}

/** A kafkajs client of the brokers `t` names (quiet, short timeouts and retries). */
export function kafkaOf(t: KafkaTarget): Kafka {
  return new Kafka({
    brokers: t.brokers,
    clientId: t.clientId,
    logLevel: 0,
    connectionTimeout: 3000,
    retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2000 },
  });
}

/** A failure to connect to the brokers `t` names, as mq says it. */
export function unreachable(t: KafkaTarget, e: unknown): MqError {
  const why = (e as Error)?.message ?? String(e);
  return new MqError("UNREACHABLE", `cannot connect to Kafka at ${t.brokers.join(",")}: ${why}`, {
    cause: e,
  });
}
