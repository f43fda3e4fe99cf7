/**
 * Exchanges and bindings as state documents (`["exchanges", name]`), and
 * publishing through them. Reached as `mq.exchanges` on a client.
 *
 * @module
 */
import type { StorageAdapter } from "./adapter.ts";
import { MqError } from "./errors.ts";
import { assertName } from "./names.ts";
import {
  assertBinding,
  assertExchangeType,
  assertRoutingKey,
  type Binding,
  type ExchangeDoc,
  type ExchangeType,
  Router,
} from "./routing.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** An exchange in a listing. */
export interface ExchangeInfo {
  name: string;
  type: ExchangeType;
  bindings: Binding[];
}

/** A binding that leads to a topic, as `mq topics info` shows it. */
export interface InboundBinding extends Binding {
  exchange: string;
}

/**
 * Exchange administration and routing.
 *
 * @example
 * ```ts ignore
 * await mq.exchanges.create("events", "topic");
 * await mq.exchanges.bind("events", { destination: "eu", destinationKind: "topic", key: "*.eu" });
 * await mq.publish("", "hello", { exchange: "events", routingKey: "orders.eu" });
 * ```
 */
export class ExchangeAdmin {
  #adapter: StorageAdapter;
  #now: () => number;

  constructor(adapter: StorageAdapter, now: () => number) {
    this.#adapter = adapter;
    this.#now = now;
  }

  /**
   * Creates an exchange.
   *
   * @throws {MqError} `INVALID_NAME`, `INVALID_ARGUMENT` (type), `TOPIC_EXISTS` (an exchange of that name exists)
   */
  async create(name: string, type: string): Promise<void> {
    assertName("exchange", name);
    assertExchangeType(type);
    const doc: ExchangeDoc = { type, createdAt: this.#now(), bindings: [] };
    if (
      !(await this.#adapter.compareAndSet(
        ["exchanges", name],
        null,
        enc.encode(JSON.stringify(doc)),
      ))
    ) {
      const cur = await this.get(name);
      if (cur?.type === type) return; // declaring the same exchange again is fine (AMQP)
      throw new MqError("TOPIC_EXISTS", `exchange "${name}" exists already with type ${cur?.type}`);
    }
  }

  /** An exchange, or undefined. */
  async get(name: string): Promise<ExchangeDoc | undefined> {
    assertName("exchange", name);
    const cur = await this.#adapter.getState(["exchanges", name]);
    return cur ? JSON.parse(dec.decode(cur.value)) as ExchangeDoc : undefined;
  }

  /** Every exchange with its bindings, by name. */
  async list(): Promise<ExchangeInfo[]> {
    const out: ExchangeInfo[] = [];
    for (const name of (await this.#adapter.listState(["exchanges"])).sort()) {
      const doc = await this.get(name);
      if (doc) out.push({ name, type: doc.type, bindings: doc.bindings });
    }
    return out;
  }

  /**
   * Removes an exchange (messages already routed stay in their topics).
   *
   * @throws {MqError} `INVALID_ARGUMENT` when it does not exist
   */
  async remove(name: string): Promise<void> {
    await this.#require(name);
    await this.#adapter.deleteState(["exchanges", name]);
  }

  /**
   * Adds a binding (the same binding twice is kept once).
   *
   * @throws {MqError} `INVALID_ARGUMENT` for an unknown exchange or a bad pattern
   */
  async bind(exchange: string, binding: Binding): Promise<void> {
    const doc = await this.#require(exchange);
    assertBinding(doc.type, binding);
    if (binding.destinationKind === "exchange") await this.#require(binding.destination);
    await this.#update(exchange, (d) => {
      if (!d.bindings.some((b) => sameBinding(b, binding))) d.bindings.push(clean(binding));
    });
  }

  /**
   * Removes the bindings to `destination` (only those with `key`, when given);
   * resolves to how many were removed.
   *
   * @throws {MqError} `INVALID_ARGUMENT` for an unknown exchange
   */
  async unbind(exchange: string, destination: string, key?: string): Promise<number> {
    await this.#require(exchange);
    let removed = 0;
    await this.#update(exchange, (d) => {
      const before = d.bindings.length;
      d.bindings = d.bindings.filter((b) =>
        !(b.destination === destination && (key === undefined || b.key === key))
      );
      removed = before - d.bindings.length;
    });
    return removed;
  }

  /** The bindings that lead to `topic`, from every exchange. */
  async bindingsTo(topic: string): Promise<InboundBinding[]> {
    const out: InboundBinding[] = [];
    for (const ex of await this.list()) {
      for (const b of ex.bindings) {
        if (b.destinationKind === "topic" && b.destination === topic) {
          out.push({ exchange: ex.name, ...b });
        }
      }
    }
    return out;
  }

  /**
   * The topics a message reaches through `exchange` (following
   * exchange-to-exchange bindings, each topic once, cycles ignored).
   *
   * @throws {MqError} `INVALID_ARGUMENT` for an unknown exchange
   */
  async route(
    exchange: string,
    routingKey: string,
    headers: Record<string, string> = {},
  ): Promise<string[]> {
    assertRoutingKey(routingKey);
    await this.#require(exchange);
    const topics = new Set<string>();
    const seen = new Set<string>();
    const visit = async (name: string) => {
      if (seen.has(name)) return;
      seen.add(name);
      const doc = await this.get(name);
      if (!doc) return;
      for (const b of new Router(doc.type, doc.bindings).route(routingKey, headers)) {
        if (b.destinationKind === "topic") topics.add(b.destination);
        else await visit(b.destination);
      }
    };
    await visit(exchange);
    return [...topics];
  }

  async #require(name: string): Promise<ExchangeDoc> {
    const doc = await this.get(name);
    if (!doc) {
      throw new MqError(
        "INVALID_ARGUMENT",
        `exchange "${name}" does not exist (mq exchange create ${name} --type ...)`,
      );
    }
    return doc;
  }

  async #update(name: string, change: (d: ExchangeDoc) => void): Promise<void> {
    for (let i = 0; i < 1000; i++) {
      const cur = await this.#adapter.getState(["exchanges", name]);
      if (!cur) throw new MqError("INVALID_ARGUMENT", `exchange "${name}" does not exist`);
      const doc = JSON.parse(dec.decode(cur.value)) as ExchangeDoc;
      change(doc);
      if (
        await this.#adapter.compareAndSet(
          ["exchanges", name],
          cur.version,
          enc.encode(JSON.stringify(doc)),
        )
      ) return;
    }
    throw new MqError("CONFLICT", `exchange "${name}" is too busy to update`);
  }
}

function clean(b: Binding): Binding {
  const out: Binding = { destination: b.destination, destinationKind: b.destinationKind };
  if (b.key !== undefined) out.key = b.key;
  if (b.headers) out.headers = b.headers;
  if (b.match) out.match = b.match;
  return out;
}

function sameBinding(a: Binding, b: Binding): boolean {
  return JSON.stringify(clean(a)) === JSON.stringify(clean(b));
}
