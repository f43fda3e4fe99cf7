/**
 * MQTT URLs (`mqtt://[user:pass@]host:port[?options]`, `mqtts://` for TLS)
 * and connections through mq's own client (`_client.ts`): MQTT 5 unless the
 * URL says `?version=3.1.1` or the broker refuses 5, a first connection
 * that fails is an error, later losses reconnect with backoff, one line per
 * change.
 *
 * @module
 */
import { ConnackError, type Incoming, MqttClient } from "./_client.ts";
import type { BackendUrl } from "../../core/backend_url.ts";
import { redactUrl } from "../../core/backend_url.ts";
import { MqError } from "../../core/errors.ts";
import { checkUrlOptions, hostUrl } from "../_broker_url.ts";
import { parseDuration } from "../../core/duration.ts";

/** What an MQTT URL says. */
export interface MqttUrl {
  host: string;
  port: number;
  tls: boolean;
  username?: string;
  password?: string;
  /** `?qos=0|1|2`: out, the QoS of each publish; in, of each subscription (at most 1). @default 1 */
  qos: 0 | 1 | 2;
  /** `?version=5|3.1.1`: the protocol; unset, 5 with a fallback to 3.1.1. */
  version?: 4 | 5;
  /** `?session_expiry=DUR`: in, how long the broker keeps the session. @default 7d */
  sessionExpiryMs: number;
  /** `?idle=DUR`: in with `-e`, how long without a message means drained. @default 2s */
  idleMs: number;
  /** `?timeout=DUR`: connect timeout. @default 5s */
  timeoutMs: number;
  /** `host:port`, for messages. */
  where: string;
}

const OPTIONS = new Set(["qos", "version", "session_expiry", "idle", "timeout"]);

/**
 * Parses an `mqtt://` or `mqtts://` URL.
 *
 * @example
 * ```ts
 * import { parseMqttUrl } from "./_connection.ts";
 * import { parseBackendUrl } from "../../core/backend_url.ts";
 * parseMqttUrl(parseBackendUrl("mqtt://127.0.0.1:1884?qos=0")).qos; // 0
 * ```
 * @throws {MqError} `INVALID_URL`
 */
export function parseMqttUrl(url: BackendUrl): MqttUrl {
  const shown = JSON.stringify(redactUrl(url.href));
  const bad = (why: string) => new MqError("INVALID_URL", `invalid MQTT URL ${shown}: ${why}`);
  checkUrlOptions(url, OPTIONS);
  const u = hostUrl(url, bad, "expected mqtt://[user:pass@]host:port");
  if (u.pathname !== "" && u.pathname !== "/") throw bad("a path has no meaning here");
  const tls = url.scheme === "mqtts";
  const port = u.port === "" ? (tls ? 8883 : 1883) : Number(u.port);
  if (!(port >= 1 && port <= 65535)) throw bad("the port must be 1 to 65535");
  const qosText = url.params.get("qos") ?? "1";
  if (!/^[012]$/.test(qosText)) {
    throw new MqError(
      "INVALID_URL",
      `${url.scheme}: qos must be 0, 1 or 2, not ${JSON.stringify(qosText)}`,
    );
  }
  const versionText = url.params.get("version");
  if (versionText !== null && !["5", "3.1.1"].includes(versionText)) {
    throw new MqError(
      "INVALID_URL",
      `${url.scheme}: version must be 5 or 3.1.1, not ${JSON.stringify(versionText)}`,
    );
  }
  const duration = (name: string, fallback: number) => {
    const v = url.params.get(name);
    if (v === null) return fallback;
    try {
      return parseDuration(v);
    } catch {
      throw new MqError(
        "INVALID_URL",
        `${url.scheme}: ${name} must be a duration like 30s or 500ms, not ${JSON.stringify(v)}`,
      );
    }
  };
  return {
    host: u.hostname.replace(/^\[(.*)\]$/, "$1"),
    port,
    tls,
    username: u.username === "" ? undefined : decodeURIComponent(u.username),
    password: u.password === "" ? undefined : decodeURIComponent(u.password),
    qos: Number(qosText) as 0 | 1 | 2,
    version: versionText === null ? undefined : versionText === "5" ? 5 : 4,
    sessionExpiryMs: duration("session_expiry", 7 * 24 * 3600_000),
    idleMs: duration("idle", 2000),
    timeoutMs: duration("timeout", 5000),
    where: `${u.hostname}:${port}`,
  };
}

/** How a connection is made. */
export interface ConnectOptions {
  /** The client id. @default a random one */
  clientId?: string;
  /** Keep the session (clean start off, session expiry set). @default false */
  persistent?: boolean;
  /** MQTT 5: how many unacknowledged QoS 1 messages the broker may send us. */
  receiveMaximum?: number;
  /** Most PUBLISHes awaiting their acknowledgement at once. @default 1024 */
  window?: number;
  /** Told of each change of the connection's state, as one line. */
  onState?: (line: string) => void;
  /** Each PUBLISH that comes in (set before the CONNACK: a session's messages may follow it at once). */
  onMessage?: (m: Incoming) => void;
}

/** CONNACK codes that say the broker does not speak the protocol version asked for. */
const WRONG_VERSION = new Set([1, 132]);
/** CONNACK codes of a refused identity (3.1.1: 4, 5; 5: 134, 135, 138). */
const AUTH = new Set([4, 5, 134, 135, 138]);

/** One connection attempt: the client once connected, or the reason it failed. */
async function attempt(
  conf: MqttUrl,
  version: 4 | 5,
  options: ConnectOptions,
): Promise<{ client: MqttClient } | { error: Error & { code?: number } }> {
  try {
    const client = await MqttClient.connect({
      host: conf.host,
      port: conf.port,
      tls: conf.tls,
      where: conf.where,
      timeoutMs: conf.timeoutMs,
      window: options.window ?? 1024,
      version,
      clientId: options.clientId ?? `mq-${crypto.randomUUID().slice(0, 18)}`,
      clean: !options.persistent,
      keepaliveS: 30,
      username: conf.username,
      password: conf.password,
      sessionExpiryS: options.persistent ? Math.round(conf.sessionExpiryMs / 1000) : undefined,
      receiveMaximum: options.receiveMaximum,
      onMessage: options.onMessage,
      onState: options.onState,
    });
    return { client };
  } catch (e) {
    if (e instanceof ConnackError) return { error: e };
    if (e instanceof Deno.errors.ConnectionRefused) {
      return { error: new Error(`connect ECONNREFUSED ${conf.host}:${conf.port}`, { cause: e }) };
    }
    return { error: e as Error };
  }
}

/**
 * Connects to an MQTT broker; MQTT 5 unless `conf.version` says 3.1.1 or
 * the broker refuses 5 (then 3.1.1, and `onState` is told). Once connected,
 * a lost connection is retried with backoff (250 ms doubling to 5 s), one
 * line per change of state.
 *
 * @example
 * ```ts ignore
 * const client = await connectMqtt(parseMqttUrl(parseBackendUrl("mqtt://127.0.0.1:1883")));
 * ```
 * @throws {MqError} `UNREACHABLE` (refused, timed out, not authorised)
 */
export async function connectMqtt(
  conf: MqttUrl,
  options: ConnectOptions = {},
): Promise<MqttClient> {
  let r = await attempt(conf, conf.version ?? 5, options);
  if ("error" in r && conf.version === undefined && WRONG_VERSION.has(r.error.code ?? -1)) {
    r = await attempt(conf, 4, options);
    if ("client" in r) {
      options.onState?.(
        `the MQTT broker at ${conf.where} speaks 3.1.1, not 5: only payloads travel (no keys, headers or ids; name them in --target)`,
      );
    }
  }
  if ("error" in r) {
    const code = r.error.code;
    const why = AUTH.has(code ?? -1)
      ? `not authorised (check user and password): ${r.error.message}`
      : r.error.message;
    throw new MqError("UNREACHABLE", `cannot connect to the MQTT broker at ${conf.where}: ${why}`, {
      cause: r.error,
    });
  }
  return r.client;
}
