/**
 * Routing by AMQP rules: exchanges of type direct, fanout, topic and headers
 * route a message to the topics (or exchanges) bound to them. Topic patterns
 * are matched with a trie of words, so 10,000 bindings cost one walk, not a
 * scan.
 *
 * @module
 */
import { MqError } from "./errors.ts";
import { nameProblem } from "./names.ts";

/** The exchange types. */
export type ExchangeType = "direct" | "fanout" | "topic" | "headers";

/** One binding of an exchange. */
export interface Binding {
  /** Where matching messages go. */
  destination: string;
  /** Whether the destination is a topic or another exchange. */
  destinationKind: "topic" | "exchange";
  /** Binding key (direct) or pattern (topic). */
  key?: string;
  /**
   * Headers to match (headers exchanges). With `match: "any"` a name may
   * have several values (`{ type: ["png", "jpg"] }`): a message matches with
   * any one of them.
   */
  headers?: Record<string, string | string[]>;
  /** `all` (default) or `any` of the headers must match. */
  match?: "all" | "any";
}

const TYPES: ReadonlySet<string> = new Set(["direct", "fanout", "topic", "headers"]);
const WORD = /^[A-Za-z0-9_-]+$/;

/**
 * Throws `INVALID_ARGUMENT` unless `type` is an exchange type.
 *
 * @throws {MqError} `INVALID_ARGUMENT`
 */
export function assertExchangeType(type: string): asserts type is ExchangeType {
  if (!TYPES.has(type)) {
    throw new MqError(
      "INVALID_ARGUMENT",
      `unknown exchange type ${JSON.stringify(type)}: use direct, fanout, topic or headers`,
    );
  }
}

/**
 * Checks a topic-exchange pattern: words split by `.`, each `*`, `#` or of
 * `A-Z a-z 0-9 _ -`; no empty words.
 *
 * @example
 * ```ts
 * import { assertPattern } from "./routing.ts";
 * assertPattern("orders.*.eu.#"); // ok
 * ```
 * @throws {MqError} `INVALID_ARGUMENT`
 */
export function assertPattern(pattern: string): void {
  if (pattern === "") {
    throw new MqError(
      "INVALID_ARGUMENT",
      "a binding pattern must not be empty (use # for everything)",
    );
  }
  for (const w of pattern.split(".")) {
    if (w === "") {
      throw new MqError("INVALID_ARGUMENT", `pattern ${JSON.stringify(pattern)} has an empty word`);
    }
    if (w !== "*" && w !== "#" && !WORD.test(w)) {
      throw new MqError(
        "INVALID_ARGUMENT",
        `pattern ${JSON.stringify(pattern)} has the word ${
          JSON.stringify(w)
        }: words are *, # or A-Z a-z 0-9 _ -`,
      );
    }
  }
}

/** Checks a direct binding key or routing key: name characters, may be empty. */
export function assertRoutingKey(key: string): void {
  if (key === "") return;
  if (key.length > 255 || ![...key].every((c) => /[A-Za-z0-9._-]/.test(c))) {
    throw new MqError(
      "INVALID_ARGUMENT",
      `routing key ${JSON.stringify(key)} may contain only A-Z a-z 0-9 . _ - (at most 255)`,
    );
  }
}

/** Checks a binding for its exchange's type. */
export function assertBinding(type: ExchangeType, b: Binding): void {
  const problem = nameProblem(b.destination);
  if (problem) {
    throw new MqError(
      "INVALID_NAME",
      `${b.destinationKind} name ${JSON.stringify(b.destination)} ${problem}`,
    );
  }
  if (type === "topic") assertPattern(b.key ?? "#");
  if (type === "direct") assertRoutingKey(b.key ?? "");
  if (type === "headers") {
    if (!b.headers || Object.keys(b.headers).length === 0) {
      throw new MqError("INVALID_ARGUMENT", "a headers binding needs at least one -H NAME=VALUE");
    }
    if (b.match !== undefined && b.match !== "all" && b.match !== "any") {
      throw new MqError(
        "INVALID_ARGUMENT",
        `--match must be all or any, not ${JSON.stringify(b.match)}`,
      );
    }
    for (const [name, v] of Object.entries(b.headers)) {
      if (Array.isArray(v) && (v.length === 0 || b.match !== "any")) {
        throw new MqError(
          "INVALID_ARGUMENT",
          v.length === 0
            ? `header ${JSON.stringify(name)} of a binding needs a value`
            : `header ${
              JSON.stringify(name)
            } is given ${v.length} values: a message has one value per header, so several values need --match any`,
        );
      }
    }
  } else if (b.headers || b.match) {
    throw new MqError(
      "INVALID_ARGUMENT",
      `-H and --match are for headers exchanges; this one is ${type}`,
    );
  }
  if ((type === "fanout" || type === "headers") && b.key !== undefined) {
    throw new MqError(
      "INVALID_ARGUMENT",
      `a ${type} exchange ignores keys; --key is for direct and topic exchanges`,
    );
  }
}

interface TrieNode {
  /** Numbers the node, for the walk's memo. */
  id: number;
  words: Map<string, TrieNode>;
  star?: TrieNode;
  hash?: TrieNode;
  targets: Binding[];
}

/**
 * Routes messages for one exchange.
 *
 * @example
 * ```ts
 * import { Router } from "./routing.ts";
 * const r = new Router("topic", [{ destination: "eu", destinationKind: "topic", key: "orders.*.eu" }]);
 * r.route("orders.new.eu").map((b) => b.destination); // ["eu"]
 * ```
 */
export class Router {
  /** The exchange type it routes for. */
  readonly type: ExchangeType;
  /** The bindings it routes by. */
  readonly bindings: readonly Binding[];
  #all: Binding[];
  #direct = new Map<string, Binding[]>();
  #nodes = 0;
  #root: TrieNode;

  /** Builds the router of an exchange of `type` with `bindings`. */
  constructor(type: ExchangeType, bindings: Binding[]) {
    this.type = type;
    this.#all = bindings;
    this.bindings = bindings;
    this.#root = this.#node();
    if (type === "direct") {
      for (const b of bindings) {
        const k = b.key ?? "";
        const xs = this.#direct.get(k);
        if (xs) xs.push(b);
        else this.#direct.set(k, [b]);
      }
    } else if (type === "topic") {
      for (const b of bindings) this.#insert((b.key ?? "#").split("."), b);
    }
  }

  #node(): TrieNode {
    return { id: this.#nodes++, words: new Map(), targets: [] };
  }

  #insert(words: string[], b: Binding): void {
    let n = this.#root;
    for (let i = 0; i < words.length; i++) {
      const w = words[i];
      if (w === "#" && words[i - 1] === "#") continue; // `#.#` matches what `#` does
      if (w === "*") n = n.star ??= this.#node();
      else if (w === "#") n = n.hash ??= this.#node();
      else {
        let next = n.words.get(w);
        if (!next) n.words.set(w, next = this.#node());
        n = next;
      }
    }
    n.targets.push(b);
  }

  /** The bindings a message with `routingKey` and `headers` matches (each once). */
  route(routingKey: string, headers: Record<string, string> = {}): Binding[] {
    switch (this.type) {
      case "fanout":
        return this.#all;
      case "direct":
        return this.#direct.get(routingKey) ?? [];
      case "headers":
        return this.#all.filter((b) => headersMatch(b, headers));
      case "topic": {
        const out = new Set<Binding>();
        const words = routingKey === "" ? [] : routingKey.split(".");
        walk(this.#root, words, 0, out, new Set());
        return [...out];
      }
    }
  }
}

/**
 * Collects the targets `words[i..]` reaches from `n`. Each (node, position)
 * is visited once, so patterns with many `#` cost at most nodes x words steps.
 */
function walk(
  n: TrieNode,
  words: string[],
  i: number,
  out: Set<Binding>,
  seen: Set<number>,
): void {
  const at = n.id * (words.length + 1) + i;
  if (seen.has(at)) return;
  seen.add(at);
  if (n.hash) {
    // `#` takes zero or more words: try every split.
    for (let j = i; j <= words.length; j++) walk(n.hash, words, j, out, seen);
  }
  if (i === words.length) {
    for (const b of n.targets) out.add(b);
    return;
  }
  const exact = n.words.get(words[i]);
  if (exact) walk(exact, words, i + 1, out, seen);
  if (n.star) walk(n.star, words, i + 1, out, seen);
}

function headersMatch(b: Binding, headers: Record<string, string>): boolean {
  const want = Object.entries(b.headers ?? {});
  const fits = (k: string, v: string | string[]) =>
    Object.hasOwn(headers, k) && (Array.isArray(v) ? v.includes(headers[k]) : headers[k] === v);
  if (b.match === "any") return want.some(([k, v]) => fits(k, v));
  return want.every(([k, v]) => fits(k, v));
}
