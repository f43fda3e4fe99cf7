/**
 * Connecting to NATS from a `nats://` URL: servers, user and password, token,
 * nkey seed or creds file, TLS, and a connect timeout; errors say what failed
 * without printing secrets. Also: one line per change of a connection's state.
 */
import { checkServerIdentity, type PeerCertificate } from "node:tls";
import { isIP } from "node:net";
import {
  connect,
  credsAuthenticator,
  type NatsConnection,
  nkeyAuthenticator,
} from "@nats-io/transport-node";
import type { BackendUrl } from "../../core/backend_url.ts";
import { redactUrl } from "../../core/backend_url.ts";
import { MqError } from "../../core/errors.ts";

const KNOWN = new Set([
  "token",
  "creds",
  "nkey",
  "tls",
  "tls_ca",
  "tls_cert",
  "tls_key",
  "timeout",
  "name",
  "replicas",
]);

/** One `host[:port]` of a server list: a name, an IPv4 address or a bracketed IPv6 one. */
const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::(\d{1,5}))?$/;

/**
 * The servers of a `nats://` URL body (`//[userinfo@]host:port[,host:port]`),
 * checked, with the user information apart.
 *
 * @throws {MqError} `INVALID_URL` naming the part that is wrong
 */
export function parseNatsServers(url: BackendUrl): { userinfo?: string; servers: string[] } {
  const m = /^\/\/(?:([^@/]*)@)?([^/?#@]+)\/?$/.exec(url.body);
  const shown = JSON.stringify(redactUrl(url.href));
  if (!m) {
    throw new MqError("INVALID_URL", `invalid NATS URL ${shown}: expected nats://host:port`);
  }
  const servers = m[2].split(",");
  for (const s of servers) {
    const hp = HOST_PORT.exec(s);
    const port = hp?.[2] === undefined ? 4222 : Number(hp[2]);
    if (!hp || port < 1 || port > 65535) {
      throw new MqError(
        "INVALID_URL",
        `invalid NATS URL ${shown}: ${JSON.stringify(s)} is not host:port (port 1 to 65535)`,
      );
    }
  }
  return { userinfo: m[1], servers };
}

/**
 * The copies of each stream and of the state bucket a `nats://` URL asks for
 * (`?replicas=N`, 1 to 5); undefined when it does not say.
 *
 * @example
 * ```ts
 * import { parseBackendUrl } from "../../core/backend_url.ts";
 * import { replicasOf } from "./connection.ts";
 * replicasOf(parseBackendUrl("nats://h1:4222,h2:4222,h3:4222?replicas=3")); // 3
 * ```
 * @throws {MqError} `INVALID_URL` for anything but a whole number from 1 to 5
 */
export function replicasOf(url: BackendUrl): number | undefined {
  const v = url.params.get("replicas");
  if (v === null) return undefined;
  if (!/^[1-5]$/.test(v)) {
    throw new MqError(
      "INVALID_URL",
      `nats: replicas must be a whole number from 1 to 5, not ${JSON.stringify(v)}`,
    );
  }
  return Number(v);
}

/**
 * Opens a connection for `url` (`nats://[user:pass@]host:port[,host:port]?token=&creds=&nkey=&tls=1&timeout=5s&replicas=N`).
 * With several servers the client picks one and fails over to the others.
 *
 * @throws {MqError} `INVALID_URL`, `UNREACHABLE` (refused, timed out, bad credentials)
 */
export async function connectNats(url: BackendUrl): Promise<NatsConnection> {
  for (const k of url.params.keys()) {
    if (!KNOWN.has(k)) {
      throw new MqError("INVALID_URL", `unknown nats: URL option ${JSON.stringify(k)}`);
    }
  }
  replicasOf(url);
  const { userinfo, servers } = parseNatsServers(url);
  const hosts = servers.join(",");
  const opts: Record<string, unknown> = {
    servers,
    timeout: parseTimeout(url.params.get("timeout")),
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    // A server cut off without a word (a partition) is taken for lost within about 10 s.
    pingInterval: 5000,
    maxPingOut: 2,
    name: url.params.get("name") ?? "mq",
  };
  if (userinfo) {
    const colon = userinfo.indexOf(":");
    if (colon < 0) opts.token = decodeURIComponent(userinfo);
    else {
      opts.user = decodeURIComponent(userinfo.slice(0, colon));
      opts.pass = decodeURIComponent(userinfo.slice(colon + 1));
    }
  }
  const token = url.params.get("token");
  if (token) opts.token = token;
  const creds = url.params.get("creds");
  if (creds) opts.authenticator = credsAuthenticator(await readFile(creds, "creds"));
  const nkey = url.params.get("nkey");
  if (nkey) opts.authenticator = nkeyAuthenticator(new TextEncoder().encode(await readSeed(nkey)));
  const tls = url.params.get("tls");
  if (tls !== null && !["1", "true", "0", "false"].includes(tls)) {
    throw new MqError(
      "INVALID_URL",
      `nats: tls must be 1, true, 0 or false, not ${JSON.stringify(tls)}`,
    );
  }
  if (
    tls === "1" || tls === "true" || url.params.has("tls_ca") || url.params.has("tls_cert")
  ) {
    opts.tls = {
      ...(url.params.get("tls_ca") ? { caFile: url.params.get("tls_ca") } : {}),
      ...(url.params.get("tls_cert") ? { certFile: url.params.get("tls_cert") } : {}),
      ...(url.params.get("tls_key") ? { keyFile: url.params.get("tls_key") } : {}),
      checkServerIdentity: identityCheck(servers),
    };
  }
  try {
    return await connect(opts);
  } catch (cause) {
    const msg = (cause as Error).message ?? String(cause);
    const why = /authori[sz]ation|auth/i.test(msg)
      ? "authorization failed (check user, password, token, nkey or creds)"
      : msg;
    throw new MqError("UNREACHABLE", `cannot connect to NATS at ${hosts}: ${why}`, { cause });
  }
}

/**
 * The server certificate check. Connecting by IP address, the TLS layer has no
 * server name to check against (it falls back to "localhost"), so a
 * certificate that names the address (an IP SAN) would be refused: where the
 * usual check fails, one of the addresses the URL names is accepted too.
 */
function identityCheck(
  servers: string[],
): (host: string, cert: PeerCertificate) => Error | undefined {
  const ips = servers.map((s) => s.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1"))
    .filter((h) => isIP(h) !== 0);
  return (host, cert) => {
    const err = checkServerIdentity(host, cert);
    if (!err) return undefined;
    return ips.some((ip) => checkServerIdentity(ip, cert) === undefined) ? undefined : err;
  };
}

async function readFile(path: string, what: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (cause) {
    throw new MqError(
      "INVALID_URL",
      `nats: cannot read the ${what} file ${JSON.stringify(path)}: ${(cause as Error).message}`,
      { cause },
    );
  }
}

async function readSeed(v: string): Promise<string> {
  if (v.startsWith("SU")) return v;
  return new TextDecoder().decode(await readFile(v, "nkey seed")).trim();
}

function parseTimeout(v: string | null): number {
  if (!v) return 5000;
  const m = /^(\d+)(ms|s)?$/.exec(v);
  if (!m) {
    throw new MqError(
      "INVALID_URL",
      `nats: timeout must be like 5s or 500ms, not ${JSON.stringify(v)}`,
    );
  }
  return Number(m[1]) * (m[2] === "s" ? 1000 : 1);
}

/**
 * Reports a connection's state as it changes, one line per change
 * ("disconnected from NATS at ...", "reconnecting to NATS",
 * "reconnected to NATS at ..."), until the connection closes.
 */
export function watchConnection(nc: NatsConnection, onState: (line: string) => void): void {
  let state = "connected";
  const set = (next: string, line: string) => {
    if (next === state) return;
    state = next;
    onState(line);
  };
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") set("disconnected", `disconnected from NATS at ${s.server}`);
      else if (s.type === "reconnecting") set("reconnecting", "reconnecting to NATS");
      else if (s.type === "reconnect") set("connected", `reconnected to NATS at ${s.server}`);
    }
  })().catch(() => {});
}
