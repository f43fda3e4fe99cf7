/**
 * Connecting to NATS from a `nats://` URL: servers, user and password, token,
 * nkey seed or creds file, TLS, and a connect timeout; errors say what failed
 * without printing secrets.
 */
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
]);

/**
 * Opens a connection for `url` (`nats://[user:pass@]host:port[,host:port]?token=&creds=&nkey=&tls=1&timeout=5s`).
 *
 * @throws {MqError} `INVALID_URL`, `UNREACHABLE` (refused, timed out, bad credentials)
 */
export async function connectNats(url: BackendUrl): Promise<NatsConnection> {
  for (const k of url.params.keys()) {
    if (!KNOWN.has(k)) {
      throw new MqError("INVALID_URL", `unknown nats: URL option ${JSON.stringify(k)}`);
    }
  }
  const m = /^\/\/(?:([^@/]*)@)?([^/?#]+)\/?$/.exec(url.body);
  if (!m) {
    throw new MqError(
      "INVALID_URL",
      `invalid NATS URL ${JSON.stringify(redactUrl(url.href))}: expected nats://host:port`,
    );
  }
  const [, userinfo, hosts] = m;
  const opts: Record<string, unknown> = {
    servers: hosts.split(","),
    timeout: parseTimeout(url.params.get("timeout")),
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
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
  if (creds) opts.authenticator = credsAuthenticator(await Deno.readFile(creds));
  const nkey = url.params.get("nkey");
  if (nkey) opts.authenticator = nkeyAuthenticator(new TextEncoder().encode(await readSeed(nkey)));
  if (
    url.params.get("tls") === "1" || url.params.get("tls") === "true" || url.params.has("tls_ca")
  ) {
    opts.tls = {
      ...(url.params.get("tls_ca") ? { caFile: url.params.get("tls_ca") } : {}),
      ...(url.params.get("tls_cert") ? { certFile: url.params.get("tls_cert") } : {}),
      ...(url.params.get("tls_key") ? { keyFile: url.params.get("tls_key") } : {}),
    };
  }
  try {
    return await connect(opts);
  } catch (cause) {
    const msg = (cause as Error).message ?? String(cause);
    const why = /authori[sz]ation|auth/i.test(msg)
      ? "authorization failed (check user, password, token or creds)"
      : msg;
    throw new MqError("UNREACHABLE", `cannot connect to NATS at ${hosts}: ${why}`, { cause });
  }
}

async function readSeed(v: string): Promise<string> {
  return v.startsWith("SU") ? v : (await Deno.readTextFile(v)).trim();
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
