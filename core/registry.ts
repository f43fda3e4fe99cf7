/**
 * The registry: URL scheme to adapter factory. Adding a backend is one entry.
 *
 * @module
 */
import type { AdapterFactory, Capabilities, StorageAdapter } from "./adapter.ts";
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
 * A lazily loaded description of a backend: what it can do, known without
 * opening it (a constant, a look at a folder), or null when its store does
 * not exist yet. The module is imported on first use.
 */
export type LazyDescriber = () => Promise<
  (url: BackendUrl, options: OpenOptions) => Promise<Capabilities | null>
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
  #describers = new Map<string, LazyDescriber>();

  /**
   * Registers `scheme` (without the colon); `describe`, when given, says what
   * the backend can do without opening it (see {@link capabilities}).
   */
  register(scheme: string, factory: LazyFactory, describe?: LazyDescriber): this {
    this.#factories.set(scheme.toLowerCase(), factory);
    if (describe) this.#describers.set(scheme.toLowerCase(), describe);
    else this.#describers.delete(scheme.toLowerCase());
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
    const factory = await this.#factory(url, href);
    return await factory(url, options);
  }

  /**
   * What the backend a URL names can do, or null when its store does not
   * exist (and `options.create` is false): from the scheme's describer when
   * it has one, else by opening the backend (nothing is created when
   * `options.create` is false) and closing it again.
   *
   * @example
   * ```ts
   * import { Registry } from "./registry.ts";
   * import { MemoryAdapter } from "../adapters/memory/mod.ts";
   * const registry = new Registry().register("memory", async () => async () => new MemoryAdapter());
   * const caps = await registry.capabilities("memory:"); // { persistent: false, ... }
   * ```
   * @throws {MqError} `UNKNOWN_SCHEME`, `INVALID_URL`, or what the adapter throws
   */
  async capabilities(href: string, options: OpenOptions = {}): Promise<Capabilities | null> {
    const url = parseBackendUrl(href);
    const describe = this.#describers.get(url.scheme);
    if (describe) return await (await describe())(url, options);
    let adapter: StorageAdapter;
    try {
      adapter = await (await this.#factory(url, href))(url, options);
    } catch (e) {
      if (MqError.is(e, "IO") && e.message.includes("does not exist")) return null;
      throw e;
    }
    try {
      return { ...adapter.capabilities };
    } finally {
      await adapter.close();
    }
  }

  async #factory(
    url: BackendUrl,
    href: string,
  ): Promise<(url: BackendUrl, options: OpenOptions) => Promise<StorageAdapter>> {
    const load = this.#factories.get(url.scheme);
    if (!load) {
      throw new MqError(
        "UNKNOWN_SCHEME",
        `unknown backend ${JSON.stringify(url.scheme + ":")} in ${
          JSON.stringify(redactUrl(href))
        }: use one of ${this.schemes().map((s) => s + ":").join(", ")}`,
      );
    }
    return await load();
  }
}

export type { AdapterFactory };
