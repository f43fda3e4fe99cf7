/**
 * CRC-32 (IEEE 802.3, as zlib's `crc32`), without loading `node:zlib` at
 * start-up: importing it costs a Deno process about 20 ms, more than a whole
 * `mq pub t x` may take. Small inputs are summed in JavaScript (slicing by 16,
 * ~0.5-0.9 GB/s); the first large one starts loading the native `crc32` in the
 * background, and large inputs use it once it is there (tens of GB/s).
 *
 * @module
 */

/** Inputs of at least this many bytes use the native crc32 once it is loaded. */
export const NATIVE_FROM_BYTES = 16 * 1024;

/** The byte-wise table (256 entries), cheap enough to build on import. */
const BYTE_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[i] = c;
  }
  return t;
})();

/** Inputs of at least this many bytes are summed 16 bytes at a time. */
const SLICED_FROM_BYTES = 64;

/**
 * The slicing-by-16 table (16 x 256 entries), built on the first input of
 * {@link SLICED_FROM_BYTES} or more: building it costs about 2 ms, which a
 * `mq pub t x` of a short message need not pay.
 */
let sliced: Uint32Array | undefined;

function slicedTable(): Uint32Array {
  if (sliced) return sliced;
  const t = new Uint32Array(16 * 256);
  t.set(BYTE_TABLE);
  for (let i = 0; i < 256; i++) {
    for (let s = 1; s < 16; s++) {
      t[s * 256 + i] = (t[(s - 1) * 256 + i] >>> 8) ^ t[t[(s - 1) * 256 + i] & 0xff];
    }
  }
  return sliced = t;
}

let native: ((data: Uint8Array) => number) | undefined;
let loading: Promise<void> | undefined;

/** CRC-32 of `bytes[start, end)`, as an unsigned 32-bit number. */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  if (end - start >= NATIVE_FROM_BYTES) {
    if (native) return native(bytes.subarray(start, end)) >>> 0;
    loading ??= import("node:zlib").then((m) => {
      native = m.crc32;
    }, () => {});
  }
  return crc32Js(bytes, start, end);
}

/** CRC-32 of `bytes[start, end)` in JavaScript: byte by byte when short, else slicing by 16. */
export function crc32Js(bytes: Uint8Array, start = 0, end = bytes.length): number {
  const b = bytes;
  let c = 0xffffffff, i = start;
  if (end - start < SLICED_FROM_BYTES) {
    const t = BYTE_TABLE;
    for (; i < end; i++) c = t[(c ^ b[i]) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  }
  const t = slicedTable();
  for (; i + 16 <= end; i += 16) {
    const a = (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) ^ c;
    c = t[3840 + (a & 0xff)] ^ t[3584 + ((a >>> 8) & 0xff)] ^ t[3328 + ((a >>> 16) & 0xff)] ^
      t[3072 + (a >>> 24)] ^ t[2816 + b[i + 4]] ^ t[2560 + b[i + 5]] ^ t[2304 + b[i + 6]] ^
      t[2048 + b[i + 7]] ^ t[1792 + b[i + 8]] ^ t[1536 + b[i + 9]] ^ t[1280 + b[i + 10]] ^
      t[1024 + b[i + 11]] ^ t[768 + b[i + 12]] ^ t[512 + b[i + 13]] ^ t[256 + b[i + 14]] ^
      t[b[i + 15]];
  }
  for (; i < end; i++) c = t[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
