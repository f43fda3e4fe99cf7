/** `mq ui`: the web dashboard (pages, JSON API, live updates, metrics) on loopback. */
import type { Call } from "../definition.ts";
import type { Mq } from "../../mod.ts";
import { MqError } from "../../core/errors.ts";
import { redactUrl } from "../../core/backend_url.ts";
import { createUiHandler } from "../ui_server.ts";
import { note, openBackend } from "../runtime.ts";
import { rideThroughFailures } from "../reconnect.ts";

/** Options of {@link runUi}. */
export interface UiCommandOptions {
  /** Address to listen on. @default "127.0.0.1" */
  host: string;
  /** Port (0: any free one). @default 8977 */
  port: number;
  /** Refuse and hide every writing action. */
  readOnly: boolean;
  /** The access token given by `--token` or `MQ_UI_TOKEN` (else a random one). */
  token?: string;
  /** The backend URL (shown to the page with its secrets as `***`). */
  url: string;
  /** Time between live updates, ms. @default 1000 */
  intervalMs?: number;
}

/** True for an address only this machine reaches. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h);
}

/** A random access token: 32 hex digits. */
export function randomToken(): string {
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}

/**
 * Checks the options of `mq ui`: another host than loopback needs an explicit
 * token; a token is 8 to 200 of `A-Z a-z 0-9 - _ . ~`.
 *
 * @throws {MqError} `INVALID_ARGUMENT`
 */
export function checkUiOptions(options: UiCommandOptions): void {
  if (!isLoopback(options.host) && options.token === undefined) {
    throw new MqError(
      "INVALID_ARGUMENT",
      `--host ${options.host} is reachable from other machines: give a token (--token or MQ_UI_TOKEN)`,
    );
  }
  if (options.token !== undefined && !/^[A-Za-z0-9._~-]{8,200}$/.test(options.token)) {
    throw new MqError(
      "INVALID_ARGUMENT",
      "the token must be 8 to 200 characters of A-Z a-z 0-9 . _ ~ -",
    );
  }
}

/**
 * Serves the dashboard until SIGINT or SIGTERM; the first line on stdout is
 * its address with the token. Resolves when the server stopped.
 *
 * @throws {MqError} `INVALID_ARGUMENT` (see {@link checkUiOptions}), `IO` when the port is taken
 */
export async function runUi(mq: Mq, options: UiCommandOptions): Promise<void> {
  checkUiOptions(options);
  const token = options.token ?? randomToken();
  const ui = createUiHandler(mq, {
    token,
    readOnly: options.readOnly,
    backend: redactUrl(options.url),
    intervalMs: options.intervalMs,
  });
  const stop = new AbortController();
  let server: Deno.HttpServer;
  try {
    server = Deno.serve({
      hostname: options.host,
      port: options.port,
      signal: stop.signal,
      onListen: ({ port }) => {
        const host = options.host.includes(":")
          ? `[${options.host.replace(/^\[|\]$/g, "")}]`
          : options.host;
        Deno.stdout.writeSync(new TextEncoder().encode(`http://${host}:${port}/?token=${token}\n`));
        note(
          `mq: serving ${redactUrl(options.url)}${
            options.readOnly ? " (read-only)" : ""
          }; Ctrl-C stops`,
        );
      },
    }, ui.handle);
  } catch (e) {
    if (e instanceof Deno.errors.AddrInUse) {
      throw new MqError("IO", `port ${options.port} on ${options.host} is in use (try --port)`);
    }
    if (e instanceof Deno.errors.AddrNotAvailable) {
      throw new MqError(
        "INVALID_ARGUMENT",
        `cannot listen on ${options.host}: not an address of this machine`,
      );
    }
    throw e;
  }
  const onSignal = () => {
    ui.close();
    stop.abort();
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    await server.finished;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}

/** `mq ui`, with its options as parsed (see `cli/definitions/ui.ts`). */
export async function uiCommand(
  opts: { host: string; port: number; readOnly?: boolean; token?: string },
  cmd: Call,
): Promise<void> {
  if (opts.port > 65535) throw new MqError("INVALID_ARGUMENT", "--port must be 0 to 65535");
  const env = Deno.env.get("MQ_UI_TOKEN");
  const options: UiCommandOptions = {
    host: opts.host,
    port: opts.port,
    readOnly: opts.readOnly ?? false,
    token: opts.token ?? (env === undefined || env === "" ? undefined : env),
    url: "",
  };
  checkUiOptions(options);
  const { mq, backend } = await openBackend(cmd);
  rideThroughFailures(mq, { follow: true, quiet: cmd.globals.quiet, prefix: "ui: " });
  try {
    await runUi(mq, { ...options, url: backend.url });
  } finally {
    await mq.close();
  }
}
