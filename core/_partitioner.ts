/**
 * Which partition a key belongs to: FNV-1a over the key's UTF-8 bytes.
 *
 * @module
 */
const enc = new TextEncoder();

/**
 * The partition of `key` among `partitions`.
 *
 * @example
 * ```ts
 * import { partitionOf } from "./_partitioner.ts";
 * partitionOf("customer-42", 4); // always the same partition for this key
 * ```
 */
export function partitionOf(key: string, partitions: number): number {
  if (partitions <= 1) return 0;
  const bytes = enc.encode(key);
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i];
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % partitions;
}
