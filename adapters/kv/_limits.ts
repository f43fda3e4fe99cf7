/**
 * Deno KV's limits per value and per atomic operation (denokv's `limits.rs`,
 * checked against Deno 2.9: a commit over any of them throws), and the byte
 * budgets the adapter plans its commits with.
 *
 * @module
 */

/** Bytes of one value. */
export const KV_VALUE_BYTES = 65_536;
/** Checks of one atomic operation. */
export const KV_CHECKS = 100;
/** Mutations of one atomic operation. */
export const KV_MUTATIONS = 1_000;
/** Bytes of the keys and values of one atomic operation's mutations. */
export const KV_COMMIT_BYTES = 819_200;
/** Bytes of the keys of one atomic operation. */
export const KV_COMMIT_KEY_BYTES = 81_920;
/** Keys one `getMany` may read. */
export const KV_GET_MANY = 10;

/**
 * Room kept in every commit for the small mutations besides the planned ones
 * (partition head, byte counter, lock): 8 KiB of bytes and 16 mutations.
 */
export const COMMIT_SLACK_BYTES = 8 * 1024;
/** Mutations kept free in every commit (see {@link COMMIT_SLACK_BYTES}). */
export const COMMIT_SLACK_MUTATIONS = 16;

const enc = new TextEncoder();

/**
 * An upper bound of a key's encoded size: a string part takes a type byte,
 * its UTF-8 bytes (a NUL escaped as two) and a terminator; a number nine.
 */
export function keyBytes(key: Deno.KvKey): number {
  let n = 0;
  for (const part of key) {
    if (typeof part === "string") {
      n += 2 + utf8Length(part);
      if (part.includes("\0")) n += part.split("\0").length - 1;
    } else if (part instanceof Uint8Array) n += 2 + part.length * 2;
    else n += 10;
  }
  return n;
}

/** UTF-8 length of `s` (exact; the ASCII case without encoding). */
export function utf8Length(s: string): number {
  let ascii = true;
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0x7f) {
      ascii = false;
      break;
    }
  }
  return ascii ? s.length : enc.encode(s).length;
}

/** Counts what goes into one atomic operation against KV's limits. */
export class CommitBudget {
  bytes = COMMIT_SLACK_BYTES;
  keyBytes = 0;
  mutations = COMMIT_SLACK_MUTATIONS;
  checks = 0;

  /** Whether a mutation of `key` with a value of `valueBytes` still fits. */
  fits(key: Deno.KvKey, valueBytes: number): boolean {
    const k = keyBytes(key);
    return this.mutations + 1 <= KV_MUTATIONS &&
      this.bytes + k + valueBytes <= KV_COMMIT_BYTES &&
      this.keyBytes + k + 1024 <= KV_COMMIT_KEY_BYTES;
  }

  /** Counts a mutation. */
  add(key: Deno.KvKey, valueBytes: number): void {
    const k = keyBytes(key);
    this.mutations++;
    this.bytes += k + valueBytes;
    this.keyBytes += k;
  }

  /** Whether nothing was added yet. */
  get empty(): boolean {
    return this.mutations === COMMIT_SLACK_MUTATIONS;
  }
}
