/**
 * The connection side of the RabbitMQ bridge: what an `amqp://` URL says
 * (`?exchange=`, `?prefetch=`, nothing else) and connecting with one clear
 * error when it cannot.
 *
 * @module
 */
import { AMQPClient } from "@cloudamqp/amqp-client";
import type { BackendUrl } from "../../core/backend_url.ts";
import { redactUrl } from "../../core/backend_url.ts";
import { MqError } from "../../core/errors.ts";

const OPTIONS = new Set(["exchange", "prefetch"]);

/** What an `amqp://` URL says. */
export interface AmqpTarget {
  /** The URL the client takes (no mq options). */
  client: string;
  /** Shown in messages (password hidden). */
  shown: string;
  exchange: string;
  prefetch: number;
}

/**
 * Reads an `amqp://` / `amqps://` URL.
 *
 * @throws {MqError} `INVALID_URL` for a malformed URL, a bad port or an unknown option
 */
export function parseAmqpUrl(url: BackendUrl): AmqpTarget {
  const shown = JSON.stringify(redactUrl(url.href));
  let u: URL;
  try {
    u = new URL(url.href);
  } catch {
    throw new MqError(
      "INVALID_URL",
      `invalid AMQP URL ${shown}: expected amqp://HOST:PORT/VHOST (credentials as USER:PASSWORD@HOST)`,
    );
  }
  if (!url.body.startsWith("//") || u.hostname === "") {
    throw new MqError(
      "INVALID_URL",
      `invalid AMQP URL ${shown}: expected amqp://HOST:PORT/VHOST (credentials as USER:PASSWORD@HOST)`,
    );
  }
  if (u.port !== "" && !(Number(u.port) > 0 && Number(u.port) < 65536)) {
    throw new MqError("INVALID_URL", `invalid AMQP URL ${shown}: bad port`);
  }
  for (const k of url.params.keys()) {
    if (!OPTIONS.has(k)) {
      throw new MqError(
        "INVALID_URL",
        `unknown ${url.scheme}: URL option ${JSON.stringify(k)} (known: exchange, prefetch)`,
      );
    }
  }
  const p = url.params.get("prefetch") ?? "2048";
  const prefetch = Number(p);
  if (!/^\d+$/.test(p) || prefetch < 1 || prefetch > 65535) {
    throw new MqError("INVALID_URL", `prefetch must be 1 to 65535, not ${JSON.stringify(p)}`);
  }
  u.search = "";
  return {
    client: u.href,
    shown: redactUrl(url.href),
    exchange: url.params.get("exchange") ?? "",
    prefetch,
  };
}

/**
 * Connects, in one clear error when it cannot.
 *
 * @throws {MqError} `UNREACHABLE` (refused, timed out, authentication failed, no such vhost)
 */
export async function connect(t: AmqpTarget): Promise<AMQPClient> {
  const client = new AMQPClient(t.client, undefined, null);
  try {
    await withTimeout(client.connect(), 10_000, "timed out");
    return client;
  } catch (e) {
    client.closed = true;
    try {
      client.socket?.destroy();
    } catch { /* gone */ }
    const msg = (e as Error).message ?? String(e);
    const why = /ACCESS_REFUSED|403|auth/i.test(msg)
      ? "authentication failed (check user and password)"
      : /vhost/i.test(msg)
      ? `no such vhost (${msg})`
      : msg;
    throw new MqError("UNREACHABLE", `cannot connect to RabbitMQ at ${t.shown}: ${why}`, {
      cause: e,
    });
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, why: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => timer = setTimeout(() => reject(new Error(why)), ms)),
  ]).finally(() => clearTimeout(timer));
}

/** True when an AMQP error says something does not exist (404, NOT_FOUND). */
export function notFound(e: unknown): boolean {
  return /NOT_FOUND|\b404\b/.test((e as Error)?.message ?? "");
}
