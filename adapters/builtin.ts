/**
 * The built-in backends, each imported only when its scheme is used.
 *
 * @module
 */
import { Registry } from "../core/registry.ts";
import { MqError } from "../core/errors.ts";
import { type BackendUrl, parseBackendUrl } from "../core/backend_url.ts";
import type * as KvModule from "./kv/mod.ts";
import type * as BridgeModule from "../core/bridge.ts";
import type * as ClientModule from "../core/client.ts";
import type * as NatsModule from "./nats/mod.ts";
import type * as NatsConnection from "./nats/connection.ts";
import type { BridgeSink, BrokerConnector, IntoOptions, SinkOptions } from "../core/bridge.ts";

/**
 * Imports an adapter by a computed specifier: Deno reads a module named in a
 * literal `import()` (and resolves its npm packages) at every start, used or
 * not; this way the kv and nats adapters and the bridges (and their npm
 * packages) cost nothing until their scheme is used. The price: such an
 * import needs read access to the adapter's files, so a program that
 * connects to `kv:` or `nats://` (or bridges to a broker) through
 * `connect()` runs with `--allow-read` (kv needs it for its database
 * anyway). memory and fs are literal imports: `memory:` needs no permission.
 */
function importLazily<T>(path: string): Promise<T> {
  return import(new URL(path, import.meta.url).href);
}

/** Resolves the folder of a `file:` URL (`file:dir`, `file:///abs`, `file://localhost/abs`). */
export function fileUrlPath(url: BackendUrl): string {
  let body = url.body;
  if (body.startsWith("//")) {
    const rest = body.slice(2);
    const slash = rest.indexOf("/");
    const host = slash < 0 ? rest : rest.slice(0, slash);
    if (host !== "" && host !== "localhost") {
      throw new MqError(
        "INVALID_URL",
        `file URL ${JSON.stringify(url.href)} names a host; use file:///abs/dir or file:dir`,
      );
    }
    body = slash < 0 ? "/" : rest.slice(slash);
  }
  try {
    body = decodeURIComponent(body);
  } catch { /* keep as given */ }
  if (body === "") {
    throw new MqError("INVALID_URL", `file URL ${JSON.stringify(url.href)} names no folder`);
  }
  return body;
}

/** The sync policy a `file:` URL names; its other options are refused. */
function fileFsync(url: BackendUrl): "always" | "batch" | "never" {
  const fsync = url.params.get("fsync") ?? "batch";
  if (fsync !== "always" && fsync !== "batch" && fsync !== "never") {
    throw new MqError(
      "INVALID_URL",
      `fsync must be always, batch or never, not ${JSON.stringify(fsync)}`,
    );
  }
  for (const name of url.params.keys()) {
    if (name !== "fsync") {
      throw new MqError("INVALID_URL", `unknown file: URL option ${JSON.stringify(name)}`);
    }
  }
  return fsync;
}

/**
 * Checks a backend URL as opening it would (a file: URL's host and options,
 * a kv: path, a nats: URL's servers and ports), without opening anything:
 * for URLs saved for later (`mq context add`).
 *
 * @example
 * ```ts
 * import { checkUrlFully } from "./builtin.ts";
 * await checkUrlFully("file:./data?fsync=never");
 * ```
 * @throws {MqError} `INVALID_URL` naming what is wrong
 */
export async function checkUrlFully(href: string): Promise<void> {
  const url = parseBackendUrl(href);
  if (url.scheme === "file") {
    fileUrlPath(url);
    fileFsync(url);
  } else if (url.scheme === "kv" && url.body === "") {
    throw new MqError("INVALID_URL", "kv: needs a path, :memory: or an https:// URL");
  } else if (url.scheme === "nats") {
    const { parseNatsServers } = await importLazily<typeof NatsConnection>(
      "../adapters/nats/connection.ts",
    );
    parseNatsServers(url);
  }
}

/** A registry with memory:, file:, kv: and nats: (each loaded on first use). */
export function builtinRegistry(): Registry {
  return new Registry()
    .register("memory", async () => {
      const { MemoryAdapter } = await import("./memory/mod.ts");
      return (_url) => Promise.resolve(new MemoryAdapter());
    })
    .register(
      "file",
      async () => {
        const { FsAdapter } = await import("./fs/mod.ts");
        return (url) => FsAdapter.open(fileUrlPath(url), { fsync: fileFsync(url) });
      },
      // Known without loading the adapter: `mq info` stays quick.
      async () => {
        const { checkDataFolder, fsCapabilities } = await import("./fs/_data_folder.ts");
        return (url) => {
          fileFsync(url);
          checkDataFolder(fileUrlPath(url));
          return Promise.resolve(fsCapabilities());
        };
      },
    )
    .register("kv", async () => {
      const { KvAdapter } = await importLazily<typeof KvModule>("../adapters/kv/mod.ts");
      return (url, options) => {
        if (url.body === "") {
          throw new MqError("INVALID_URL", "kv: needs a path, :memory: or an https:// URL");
        }
        const target = url.body.startsWith("https:") || url.body.startsWith("http:")
          ? url.href.slice(url.href.indexOf(":") + 1)
          : url.body;
        return KvAdapter.open(target, { create: options.create });
      };
    })
    .register("nats", async () => {
      const { NatsAdapter, connectNats, replicasOf } = await importLazily<typeof NatsModule>(
        "../adapters/nats/mod.ts",
      );
      return async (url) => NatsAdapter.open(await connectNats(url), { replicas: replicasOf(url) });
    });
}

/**
 * Brokers a bridge goes to (`--to`) and comes from (`--from`), by URL scheme:
 * each a lazy import of `adapters/<broker>/_bridge.ts` (a connector of the
 * contract in core/bridge.ts), so a connector's npm client is loaded only
 * when its scheme is used. Every other backend is bridged through its topics.
 */
const SUBJECT_BRIDGES: Record<string, () => Promise<BrokerConnector>> = {
  nats: () => importLazily<BrokerConnector>("./nats/_bridge.ts"),
  redis: () => importLazily<BrokerConnector>("./redis/_bridge.ts"),
  rediss: () => importLazily<BrokerConnector>("./redis/_bridge.ts"),
  mqtt: () => importLazily<BrokerConnector>("./mqtt/_bridge.ts"),
  mqtts: () => importLazily<BrokerConnector>("./mqtt/_bridge.ts"),
  amqp: () => importLazily<BrokerConnector>("./amqp/_bridge.ts"),
  amqps: () => importLazily<BrokerConnector>("./amqp/_bridge.ts"),
  kafka: () => importLazily<BrokerConnector>("./kafka/_bridge.ts"),
};

/**
 * The sink `mq bridge --to URL` writes to: a broker (`nats://` subjects,
 * JetStream where a stream covers them; `redis://` streams; `mqtt://`
 * topics), else the backend's topics (there `options.target` names the topic).
 *
 * @example
 * ```ts ignore
 * const sink = await bridgeSinkFor("redis://127.0.0.1:6379", { target: "mq:{topic}" });
 * ```
 * @throws {MqError} `INVALID_URL`, `INVALID_ARGUMENT` (a bad template)
 */
export async function bridgeSinkFor(href: string, options: SinkOptions = {}): Promise<BridgeSink> {
  const url = parseBackendUrl(href);
  const connector = SUBJECT_BRIDGES[url.scheme];
  if (connector) return (await connector()).subjectSink(url, options);
  const { mqSink } = await importLazily<typeof BridgeModule>("../core/bridge.ts");
  const { Mq } = await importLazily<typeof ClientModule>("../core/client.ts");
  return mqSink(new Mq(await builtinRegistry().open(href)), options);
}

/**
 * Brings subjects of a broker into a local topic (`mq bridge --from URL`);
 * resolves to how many messages were stored.
 *
 * @throws {MqError} `INVALID_URL` for a backend that has no subjects
 */
export async function bridgeFrom(
  href: string,
  target: import("../core/client.ts").Mq,
  options: IntoOptions,
): Promise<number> {
  const url = parseBackendUrl(href);
  const connector = SUBJECT_BRIDGES[url.scheme];
  if (!connector) {
    const known = Object.keys(SUBJECT_BRIDGES).map((s) => `${s}://...`).join(", ");
    throw new MqError(
      "INVALID_URL",
      `--from needs a broker (${known}), not ${JSON.stringify(url.scheme + ":")}`,
    );
  }
  return (await connector()).bridgeInto(url, target, options);
}
