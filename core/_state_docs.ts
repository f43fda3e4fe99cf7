/**
 * Validation of state documents (group state, topic settings) as they are
 * read: a damaged document is a `CORRUPT` error that names the document (its
 * file, where the backend has files) and what is wrong with it, never a raw
 * JavaScript error.
 *
 * @module
 */
import { MqError } from "./errors.ts";

const dec = new TextDecoder();

/**
 * What the state-document helpers use of a backend (a `StorageAdapter` is
 * one): named here so that they need not import the storage contract, which
 * imports the topic settings these helpers check.
 */
export interface LocatesState {
  /** Where a state document is kept, in words (a file's path, a KV key). */
  stateLocation?(key: string[]): string;
}

/** Where a state document lives, as a user can find it (a file path on fs). */
export function stateLocation(adapter: LocatesState, key: string[]): string {
  return adapter.stateLocation?.(key) ?? `state document ${key.join("/")}`;
}

/**
 * Parses a state document as JSON and checks its shape with `problem`
 * (which names the first thing wrong, or returns undefined).
 *
 * @example
 * ```ts
 * import { parseStateDoc } from "./_state_docs.ts";
 * import { MemoryAdapter } from "../adapters/memory/mod.ts";
 * const doc = parseStateDoc(new MemoryAdapter(), ["topics", "t"], "topic \"t\"",
 *   new TextEncoder().encode('{"partitions":1}'), (v) => typeof v === "object" ? undefined : "not an object");
 * ```
 * @throws {MqError} `CORRUPT` naming `what`, the document and the problem
 */
export function parseStateDoc<T>(
  adapter: LocatesState,
  key: string[],
  what: string,
  bytes: Uint8Array,
  problem: (value: unknown) => string | undefined,
): T {
  const where = stateLocation(adapter, key);
  if (bytes.length === 0) {
    throw new MqError("CORRUPT", `${what}: ${where} is damaged: it is empty`);
  }
  let value: unknown;
  try {
    value = JSON.parse(dec.decode(bytes));
  } catch (cause) {
    throw new MqError(
      "CORRUPT",
      `${what}: ${where} is damaged: not valid JSON (${(cause as Error).message})`,
      { cause },
    );
  }
  const why = problem(value);
  if (why) throw new MqError("CORRUPT", `${what}: ${where} is damaged: ${why}`);
  return value as T;
}

/** True for a plain object (not an array, not null). */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** True for a whole number of at least 0. */
export function isOffset(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/** What is wrong with a list of `{from, to}` ranges at `path`, if anything. */
export function rangesProblem(v: unknown, path: string, extra: string[] = []): string | undefined {
  if (!Array.isArray(v)) return `${path} is ${describe(v)}, not a list`;
  for (let i = 0; i < v.length; i++) {
    const r = v[i];
    if (!isObject(r)) return `${path}[${i}] is ${describe(r)}, not a range`;
    for (const f of ["from", "to", ...extra]) {
      if (!isOffset(r[f])) return `${path}[${i}].${f} is ${describe(r[f])}, not a whole number`;
    }
    if ((r.to as number) < (r.from as number)) return `${path}[${i}] ends before it starts`;
  }
  return undefined;
}

/** A short description of a JSON value for an error message. */
export function describe(v: unknown): string {
  if (v === undefined) return "missing";
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "string") return JSON.stringify(v.length > 20 ? v.slice(0, 17) + "..." : v);
  if (typeof v === "object") return "an object";
  return String(v);
}
