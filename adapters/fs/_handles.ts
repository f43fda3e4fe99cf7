/**
 * A bound on the files one fs backend keeps open: partition writers and
 * segment readers register here as they use their files, and past the
 * bound the least recently used one that is idle closes its files (it
 * reopens them itself on its next use).
 */

/** Something that holds open files it can let go of while idle. */
export interface Releasable {
  /** Closes its files unless busy; false (nothing closed) while busy. */
  release(): boolean;
}

/**
 * Holders of open files, least recently used first, at most `max` of them
 * idle: {@link HandleLru.touch} marks one used and releases the oldest idle
 * ones past the bound (busy ones stay, so the bound is passed while more
 * than `max` are busy at once).
 *
 * @example
 * ```ts
 * import { HandleLru } from "./_handles.ts";
 * const closed: string[] = [];
 * const holder = (name: string) => ({ release: () => (closed.push(name), true) });
 * const lru = new HandleLru(1);
 * const a = holder("a"), b = holder("b");
 * lru.touch(a);
 * lru.touch(b);
 * console.log(closed); // ["a"]
 * ```
 */
export class HandleLru {
  #max: number;
  #used = new Set<Releasable>();

  /** A bound of `max` holders (at least 1). */
  constructor(max: number) {
    this.#max = Math.max(1, Math.floor(max));
  }

  /** How many holders may hold files now. */
  get size(): number {
    return this.#used.size;
  }

  /** Marks `h` as the most recently used, releasing the oldest idle ones past the bound. */
  touch(h: Releasable): void {
    this.#used.delete(h);
    this.#used.add(h);
    if (this.#used.size <= this.#max) return;
    for (const old of this.#used) {
      if (this.#used.size <= this.#max) break;
      if (old !== h && old.release()) this.#used.delete(old);
    }
  }

  /** Forgets `h` (it closed its files itself). */
  forget(h: Releasable): void {
    this.#used.delete(h);
  }

  /** Forgets every holder. */
  clear(): void {
    this.#used.clear();
  }
}
