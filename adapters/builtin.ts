/**
 * The built-in backends, each imported only when its scheme is used.
 *
 * @module
 */
import { Registry } from "../core/registry.ts";
import { MqError } from "../core/errors.ts";
import { type BackendUrl, parseBackendUrl } from "../core/backend_url.ts";
import type * as KvModule from "./kv/mod.ts";
import type * as NatsModule from "./nats/mod.ts";
import type * as NatsBridgeModule from "../adapters/nats/bridge.ts";

/**
 * Imports an adapter by a computed specifier: Deno reads a module named in a
 * literal `import()` (and resolves its npm packages) at every start, used or
 * not; this way the kv and nats adapters cost nothing until their scheme is.
 * Paths start from the project's root (`../adapters/...`), so that they
 * resolve the same from this file and from the bundle `cli/mq.js`.
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

/** A registry with memory:, file:, kv: and nats: (each loaded on first use). */
export function builtinRegistry(): Registry {
  return new Registry()
    .register("memory", async () => {
      const { MemoryAdapter } = await import("./memory/mod.ts");
      return (_url) => Promise.resolve(new MemoryAdapter());
    })
    .register("file", async () => {
      const { FsAdapter } = await import("./fs/mod.ts");
      return (url) => {
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
        return FsAdapter.open(fileUrlPath(url), { fsync });
      };
    })
    .register("kv", async () => {
      const { KvAdapter } = await importLazily<typeof KvModule>("../adapters/kv/mod.ts");
      return (url) => {
        if (url.body === "") {
          throw new MqError("INVALID_URL", "kv: needs a path, :memory: or an https:// URL");
        }
        const target = url.body.startsWith("https:") || url.body.startsWith("http:")
          ? url.href.slice(url.href.indexOf(":") + 1)
          : url.body;
        return KvAdapter.open(target);
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
 * Backends whose URL names a broker with subjects: a bridge goes to its
 * subjects (`--to`) and comes from them (`--from`), through the module named
 * here, loaded when used. Every other backend is bridged through its topics.
 */
const SUBJECT_BRIDGES: Record<string, () => Promise<typeof NatsBridgeModule>> = {
  nats: () => importLazily<typeof NatsBridgeModule>("../adapters/nats/bridge.ts"),
};

/**
 * The sink `mq bridge --to URL` writes to: the subjects of a broker (for
 * `nats://`, JetStream where a stream covers them), else the backend's topics.
 */
export async function bridgeSinkFor(href: string): Promise<import("../core/bridge.ts").BridgeSink> {
  const url = parseBackendUrl(href);
  const subjects = SUBJECT_BRIDGES[url.scheme];
  if (subjects) return (await subjects()).subjectSink(url);
  const { mqSink } = await import("../core/bridge.ts");
  const { Mq } = await import("../core/client.ts");
  return mqSink(new Mq(await builtinRegistry().open(href)));
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
  options: import("./nats/subject_bridge.ts").FromNatsOptions,
): Promise<number> {
  const url = parseBackendUrl(href);
  const subjects = SUBJECT_BRIDGES[url.scheme];
  if (!subjects) {
    const known = Object.keys(SUBJECT_BRIDGES).map((s) => `${s}://...`).join(", ");
    throw new MqError(
      "INVALID_URL",
      `--from needs a broker with subjects (${known}), not ${JSON.stringify(url.scheme + ":")}`,
    );
  }
  return (await subjects()).bridgeInto(url, target, options);
}
