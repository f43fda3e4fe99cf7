/**
 * The registry: URL scheme to adapter factory. Adding a backend is one entry.
 *
 * @module
 */
import type { AdapterFactory, StorageAdapter } from "./adapter.ts";
import { type BackendUrl, parseBackendUrl, redactUrl } from "./backend_url.ts";
import { MqError } from "./errors.ts";

/** How a backend is opened. */
export interface OpenOptions {
  /**
   * False: open only a store that exists, creating nothing (reading
   * commands); a backend whose opening would create its store (a Deno KV
   * file) fails with `IO` instead. Backends that create nothing on opening
   * ignore it.
   * @default true
   */
  create?: boolean;
}

/** A lazily loaded factory: the module is imported on first use. */
export type LazyFactory = () => Promise<
  (url: BackendUrl, options: OpenOptions) => Promise<StorageAdapter>
>;

/**
 * Maps schemes to adapters.
 *
 * @example
 * ```ts
 * import { Registry } from "./registry.ts";
 * import { MemoryAdapter } from "../adapters/memory/mod.ts";
 * const registry = new Registry().register("memory", async () => async () => new MemoryAdapter());
 * const adapter = await registry.open("memory:");
 * ```
 */
export class Registry {
  #factories = new Map<string, LazyFactory>();

  /** Registers `scheme` (without the colon). */
  register(scheme: string, factory: LazyFactory): this {
    this.#factories.set(scheme.toLowerCase(), factory);
    return this;
  }

  /** The registered schemes. */
  schemes(): string[] {
    return [...this.#factories.keys()];
  }

  /**
   * Opens the backend a URL names.
   *
   * @throws {MqError} `UNKNOWN_SCHEME`, `INVALID_URL`, or what the adapter throws
   */
  async open(href: string, options: OpenOptions = {}): Promise<StorageAdapter> {
    const url = parseBackendUrl(href);
    const load = this.#factories.get(url.scheme);
    if (!load) {
      throw new MqError(
        "UNKNOWN_SCHEME",
        `unknown backend ${JSON.stringify(url.scheme + ":")} in ${
          JSON.stringify(redactUrl(href))
        }: use one of ${this.schemes().map((s) => s + ":").join(", ")}`,
      );
    }
    const factory = await load();
    return await factory(url, options);
  }
}

export type { AdapterFactory };
