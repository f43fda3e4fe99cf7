import { deepStrictEqual as eq } from "node:assert/strict";
import { crc32 as zlibCrc32 } from "node:zlib";
import { crc32, crc32Js, NATIVE_FROM_BYTES } from "./_crc32.ts";

Deno.test("crc32: the IEEE check value, and zlib's sums for every small size and a large one", async () => {
  eq(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
  eq(crc32(new Uint8Array(0)), 0);
  const bytes = new Uint8Array(3 * NATIVE_FROM_BYTES + 7);
  crypto.getRandomValues(bytes.subarray(0, 65536));
  for (let i = 65536; i < bytes.length; i++) bytes[i] = (i * 31) & 0xff;
  for (let n = 0; n <= 100; n++) {
    eq(crc32(bytes, 3, 3 + n), zlibCrc32(bytes.subarray(3, 3 + n)) >>> 0);
  }
  const want = zlibCrc32(bytes.subarray(5)) >>> 0;
  eq(crc32Js(bytes, 5), want);
  eq(crc32(bytes, 5), want); // in JavaScript while the native one loads
  await new Promise((r) => setTimeout(r, 50));
  eq(crc32(bytes, 5), want); // native by now
  eq(crc32(bytes, 5, bytes.length - 1), zlibCrc32(bytes.subarray(5, bytes.length - 1)) >>> 0);
});
