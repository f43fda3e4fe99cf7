/**
 * A stand-in for an object whose methods are all async, made before its
 * module is loaded: the first call imports the module (through `make`) and
 * every call goes to the one real object. `Mq` keeps `mq.topics` and
 * `mq.exchanges` this way, so that a program that only publishes or reads
 * never evaluates topic administration, group state, exchanges or routing.
 *
 * @module
 */

/**
 * An object whose every method call resolves `make()` once and calls the
 * method of that name on what it gave. Only methods returning promises may go
 * through it (a stand-in cannot answer synchronously); `then` is not
 * forwarded, so the stand-in is not mistaken for a promise.
 *
 * @example
 * ```ts
 * import { deferred } from "./_deferred.ts";
 * const admin = deferred(() => Promise.resolve({ list: () => Promise.resolve(["a"]) }));
 * await admin.list(); // ["a"]
 * ```
 */
export function deferred<T extends object>(make: () => Promise<T>): T {
  let real: Promise<T> | undefined;
  const methods = new Map<string, (...args: unknown[]) => Promise<unknown>>();
  return new Proxy({} as T, {
    get(_, key) {
      if (typeof key !== "string" || key === "then") return undefined;
      let method = methods.get(key);
      if (!method) {
        method = async (...args: unknown[]) => {
          const target = await (real ??= make());
          const fn = (target as Record<string, unknown>)[key];
          if (typeof fn !== "function") throw new TypeError(`${key} is not a method`);
          return await fn.apply(target, args);
        };
        methods.set(key, method);
      }
      return method;
    },
  });
}
