/**
 * Exchanges and bindings as state documents, and routing through them.
 * Reached as `mq.exchanges` on a client.
 *
 * An exchange is `["exchanges", name]` (its type and a generation that every
 * change of its bindings moves on) and its bindings are spread over
 * {@link BINDING_SHARDS} documents `["exchanges", name, "b<i>"]` by the hash
 * of their destination, so that 10,000 bindings make small documents on every
 * backend. Routers are built once per generation and cached.
 *
 * @module
 */
import type { StorageAdapter } from "./adapter.ts";
import { MqError } from "./errors.ts";
import { assertName } from "./names.ts";
import { partitionOf } from "./_partitioner.ts";
import {
  assertBinding,
  assertExchangeType,
  assertRoutingKey,
  type Binding,
  type ExchangeType,
  Router,
} from "./routing.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Documents an exchange's bindings are spread over. */
export const BINDING_SHARDS = 16;

/** An exchange in a listing. */
export interface ExchangeInfo {
  /** Its name. */
  name: string;
  /** Its type. */
  type: ExchangeType;
  /** Its bindings. */
  bindings: Binding[];
}

/** A binding that leads to a topic, as `mq topics info` shows it. */
export interface InboundBinding extends Binding {
  /** The exchange it belongs to. */
  exchange: string;
}

/** Routing through an exchange, as {@link ExchangeAdmin.resolver} gives it. */
export interface ExchangeResolver {
  /** The topics a message with `routingKey` and `headers` reaches. */
  topicsOf(routingKey: string, headers?: Record<string, string>): string[];
  /** Whether headers change the outcome (a headers exchange is on the way). */
  usesHeaders: boolean;
}

/** The head document of an exchange. */
interface ExchangeHead {
  type: ExchangeType;
  createdAt: number;
  /** Moves on with every change of the bindings (routers are cached by it). */
  generation: number;
}

/** A router of one exchange, as of one generation of one incarnation. */
interface CachedRouter {
  /** When the exchange was created (one removed and made again starts over). */
  createdAt: number;
  generation: number;
  router: Router;
}

const headKey = (name: string) => ["exchanges", name];
const shardKey = (name: string, shard: number) => ["exchanges", name, `b${shard}`];
const shardOf = (b: Binding) =>
  partitionOf(`${b.destinationKind}:${b.destination}`, BINDING_SHARDS);

/**
 * Exchange administration and routing.
 *
 * @example
 * ```ts ignore
 * await mq.exchanges.create("events", "topic");
 * await mq.exchanges.bind("events", { destination: "eu", destinationKind: "topic", key: "*.eu" });
 * await mq.publishVia("events", "orders.eu", ["hello"]);
 * ```
 */
export class ExchangeAdmin {
  #adapter: StorageAdapter;
  #now: () => number;
  #routers = new Map<string, CachedRouter>();

  /** Administers the exchanges stored in `adapter`. */
  constructor(adapter: StorageAdapter, now: () => number) {
    this.#adapter = adapter;
    this.#now = now;
  }

  /**
   * Creates an exchange; declaring an existing one with the same type again is
   * fine (as in AMQP).
   *
   * @throws {MqError} `INVALID_NAME`, `INVALID_ARGUMENT` (type), `TOPIC_EXISTS` (an exchange of that name with another type)
   */
  async create(name: string, type: string): Promise<void> {
    assertName("exchange", name);
    assertExchangeType(type);
    const head: ExchangeHead = { type, createdAt: this.#now(), generation: 0 };
    if (!(await this.#adapter.compareAndSet(headKey(name), null, encode(head)))) {
      const cur = await this.#head(name);
      if (cur?.type === type) return;
      throw new MqError("TOPIC_EXISTS", `exchange "${name}" exists already with type ${cur?.type}`);
    }
  }

  /** An exchange with its bindings, or undefined. */
  async get(name: string): Promise<ExchangeInfo | undefined> {
    assertName("exchange", name);
    const head = await this.#head(name);
    if (!head) return undefined;
    return { name, type: head.type, bindings: await this.#bindings(name) };
  }

  /** Every exchange with its bindings, by name. */
  async list(): Promise<ExchangeInfo[]> {
    const out: ExchangeInfo[] = [];
    for (const name of (await this.#adapter.listState(["exchanges"])).sort()) {
      const x = await this.get(name);
      if (x) out.push(x);
    }
    return out;
  }

  /**
   * Removes an exchange, and the bindings of other exchanges that lead to it
   * (messages already routed stay in their topics).
   *
   * @throws {MqError} `INVALID_ARGUMENT` when it does not exist
   */
  async remove(name: string): Promise<void> {
    await this.#require(name);
    await this.#adapter.deleteState(headKey(name));
    this.#routers.delete(name);
    await this.removeBindingsTo("exchange", name);
  }

  /**
   * Adds a binding (the same binding twice is kept once).
   *
   * @throws {MqError} `INVALID_ARGUMENT` for an unknown exchange or a bad pattern
   */
  bind(exchange: string, binding: Binding): Promise<void> {
    return this.bindMany(exchange, [binding]);
  }

  /**
   * Adds many bindings at once: one write per binding document touched, so
   * 10,000 bindings cost a few dozen writes. Every binding is checked before
   * anything is written.
   *
   * @example
   * ```ts ignore
   * await mq.exchanges.bindMany("events", regions.map((r) => ({
   *   destination: `orders-${r}`, destinationKind: "topic", key: `orders.*.${r}`,
   * })));
   * ```
   * @throws {MqError} `INVALID_ARGUMENT` for an unknown exchange or a bad binding
   */
  async bindMany(exchange: string, bindings: Binding[]): Promise<void> {
    const head = await this.#require(exchange);
    for (const b of bindings) assertBinding(head.type, b);
    const exchanges = new Set(
      bindings.filter((b) => b.destinationKind === "exchange").map((b) => b.destination),
    );
    for (const x of exchanges) await this.#require(x);
    const byShard = new Map<number, Binding[]>();
    for (const b of bindings) {
      const s = shardOf(b);
      const xs = byShard.get(s);
      if (xs) xs.push(clean(b));
      else byShard.set(s, [clean(b)]);
    }
    for (const [shard, add] of byShard) {
      await this.#updateShard(exchange, shard, (list) => {
        const have = new Set(list.map(bindingId));
        for (const b of add) {
          const id = bindingId(b);
          if (!have.has(id)) (list.push(b), have.add(id));
        }
        return list;
      });
    }
    await this.#bump(exchange);
  }

  /**
   * Removes the bindings to `destination` (only those with `key`, when given);
   * resolves to how many were removed.
   *
   * @throws {MqError} `INVALID_ARGUMENT` for an unknown exchange
   */
  async unbind(
    exchange: string,
    destination: string,
    key?: string,
    kind?: Binding["destinationKind"],
  ): Promise<number> {
    await this.#require(exchange);
    const kinds = kind ? [kind] : ["topic", "exchange"] as const;
    let removed = 0;
    for (const k of kinds) {
      const shard = shardOf({ destination, destinationKind: k });
      await this.#updateShard(exchange, shard, (list) => {
        const keep = list.filter((b) =>
          !(b.destination === destination && b.destinationKind === k &&
            (key === undefined || b.key === key))
        );
        removed += list.length - keep.length;
        return keep;
      });
    }
    if (removed > 0) await this.#bump(exchange);
    return removed;
  }

  /**
   * Removes every binding that leads to a topic or exchange, from every
   * exchange (when the topic or exchange is removed, as RabbitMQ does).
   */
  async removeBindingsTo(kind: Binding["destinationKind"], destination: string): Promise<void> {
    for (const name of await this.#adapter.listState(["exchanges"])) {
      if (await this.#head(name)) await this.unbind(name, destination, undefined, kind);
    }
  }

  /** The bindings that lead to `topic`, from every exchange. */
  async bindingsTo(topic: string): Promise<InboundBinding[]> {
    const out: InboundBinding[] = [];
    const shard = shardOf({ destination: topic, destinationKind: "topic" });
    for (const name of (await this.#adapter.listState(["exchanges"])).sort()) {
      for (const b of await this.#shard(name, shard)) {
        if (b.destinationKind === "topic" && b.destination === topic) {
          out.push({ exchange: name, ...b });
        }
      }
    }
    return out;
  }

  /**
   * The topics a message reaches through `exchange` (following
   * exchange-to-exchange bindings, each topic once, cycles ignored).
   *
   * @throws {MqError} `INVALID_ARGUMENT` for an unknown exchange or routing key
   */
  async route(
    exchange: string,
    routingKey: string,
    headers: Record<string, string> = {},
  ): Promise<string[]> {
    return (await this.resolver(exchange)).topicsOf(routingKey, headers);
  }

  /**
   * Routing through `exchange` as it is now, as a function: the routers of the
   * exchange and of every exchange bound to it are loaded once, so that a
   * batch of messages is routed without a read per message.
   *
   * @example
   * ```ts ignore
   * const { topicsOf } = await mq.exchanges.resolver("events");
   * topicsOf("orders.eu"); // ["eu-orders", "audit"]
   * ```
   * @throws {MqError} `INVALID_ARGUMENT` for an unknown exchange; `topicsOf`
   * throws it for a bad routing key
   */
  async resolver(exchange: string): Promise<ExchangeResolver> {
    const routers = new Map<string, Router>();
    const load = async (name: string) => {
      if (routers.has(name)) return;
      const router = await this.router(name);
      if (!router) return;
      routers.set(name, router);
      for (const b of router.bindings) {
        if (b.destinationKind === "exchange") await load(b.destination);
      }
    };
    await load(exchange);
    if (!routers.has(exchange)) await this.#require(exchange);
    const usesHeaders = [...routers.values()].some((r) => r.type === "headers");
    const topicsOf = (routingKey: string, headers: Record<string, string> = {}) => {
      assertRoutingKey(routingKey);
      const topics = new Set<string>();
      const seen = new Set<string>();
      const visit = (name: string) => {
        if (seen.has(name)) return;
        seen.add(name);
        for (const b of routers.get(name)?.route(routingKey, headers) ?? []) {
          if (b.destinationKind === "topic") topics.add(b.destination);
          else visit(b.destination);
        }
      };
      visit(exchange);
      return [...topics];
    };
    return { topicsOf, usesHeaders };
  }

  /**
   * The router of an exchange as it is now (built once per change of its
   * bindings), or undefined when it does not exist.
   */
  async router(name: string): Promise<Router | undefined> {
    assertName("exchange", name);
    const head = await this.#head(name);
    if (!head) {
      this.#routers.delete(name);
      return undefined;
    }
    const cached = this.#routers.get(name);
    if (
      cached && cached.generation === head.generation && cached.createdAt === head.createdAt
    ) return cached.router;
    const router = new Router(head.type, await this.#bindings(name));
    this.#routers.set(name, { createdAt: head.createdAt, generation: head.generation, router });
    return router;
  }

  async #head(name: string): Promise<ExchangeHead | undefined> {
    const cur = await this.#adapter.getState(headKey(name));
    return cur ? JSON.parse(dec.decode(cur.value)) as ExchangeHead : undefined;
  }

  async #shard(name: string, shard: number): Promise<Binding[]> {
    const cur = await this.#adapter.getState(shardKey(name, shard));
    return cur ? JSON.parse(dec.decode(cur.value)) as Binding[] : [];
  }

  async #bindings(name: string): Promise<Binding[]> {
    const shards = await Promise.all(
      Array.from({ length: BINDING_SHARDS }, (_, i) => this.#shard(name, i)),
    );
    return shards.flat();
  }

  async #require(name: string): Promise<ExchangeHead> {
    assertName("exchange", name);
    const head = await this.#head(name);
    if (!head) {
      throw new MqError(
        "INVALID_ARGUMENT",
        `exchange "${name}" does not exist (mq exchange create ${name} --type ...)`,
      );
    }
    return head;
  }

  async #updateShard(
    name: string,
    shard: number,
    change: (list: Binding[]) => Binding[],
  ): Promise<void> {
    const key = shardKey(name, shard);
    for (let i = 0; i < 1000; i++) {
      const cur = await this.#adapter.getState(key);
      const list = cur ? JSON.parse(dec.decode(cur.value)) as Binding[] : [];
      const next = change(list);
      if (
        await this.#adapter.compareAndSet(
          key,
          cur?.version ?? null,
          enc.encode(JSON.stringify(next)),
        )
      ) {
        return;
      }
    }
    throw new MqError("CONFLICT", `exchange "${name}" is too busy to update`);
  }

  /** Moves the exchange's generation on, so that cached routers are rebuilt. */
  async #bump(name: string): Promise<void> {
    for (let i = 0; i < 1000; i++) {
      const cur = await this.#adapter.getState(headKey(name));
      if (!cur) throw new MqError("INVALID_ARGUMENT", `exchange "${name}" does not exist`);
      const head = JSON.parse(dec.decode(cur.value)) as ExchangeHead;
      head.generation++;
      if (await this.#adapter.compareAndSet(headKey(name), cur.version, encode(head))) return;
    }
    throw new MqError("CONFLICT", `exchange "${name}" is too busy to update`);
  }
}

function encode(head: ExchangeHead): Uint8Array {
  return enc.encode(JSON.stringify(head));
}

function clean(b: Binding): Binding {
  const out: Binding = { destination: b.destination, destinationKind: b.destinationKind };
  if (b.key !== undefined) out.key = b.key;
  if (b.headers) out.headers = b.headers;
  if (b.match) out.match = b.match;
  return out;
}

function bindingId(b: Binding): string {
  return JSON.stringify(clean(b));
}
