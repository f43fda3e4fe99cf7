/**
 * Loads a module when it is first needed, by a computed specifier: Deno reads
 * every module a literal `import("./x.ts")` names when the program starts,
 * used or not, and this one it does not. The price: the importing program
 * needs read access to the file (and `--allow-import` for a remote one), so
 * only code that needs that access anyway uses it (the fs backend, for its
 * doctor and transaction journal); the client uses literal dynamic imports,
 * so that the library needs no permission of its own. A test
 * (`tests/shape_test.ts`) reads the `lazy(import.meta.url, "./x.ts")` calls
 * as imports when it looks for cycles.
 *
 * @module
 */

/** Imports `path` relative to `base` (a module's `import.meta.url`). */
export function lazy<T>(base: string, path: string): Promise<T> {
  return import(new URL(path, base).href);
}
