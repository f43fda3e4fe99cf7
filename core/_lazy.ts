/**
 * Loads a module of the core when it is first needed, so that a client that
 * only publishes never loads subscriptions, transactions or request/reply.
 *
 * The specifier is computed on purpose: Deno reads every module a literal
 * `import("./x.ts")` names when the program starts, used or not. A test
 * (`tests/shape_test.ts`) reads the `lazy(import.meta.url, "./x.ts")` calls
 * as imports when it looks for cycles.
 *
 * @module
 */

/** Imports `path` relative to `base` (a module's `import.meta.url`). */
export function lazy<T>(base: string, path: string): Promise<T> {
  return import(new URL(path, base).href);
}
