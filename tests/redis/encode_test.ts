/**
 * The XADDs of the outgoing side as bytes: the fast encoding of plain
 * messages (`xaddEncoder`) writes the very bytes of the general one
 * (`xaddArgs` through `Encoder.command`), for every shape of message.
 */
import { deepStrictEqual as eq } from "node:assert/strict";
import { xaddArgs, xaddEncoder } from "../../adapters/redis/_mapping.ts";
import { Encoder } from "../../adapters/redis/_resp.ts";
import { ReceivedMessage } from "../../core/message.ts";
import type { RecordMeta } from "../../core/record.ts";

const enc = new TextEncoder();

function message(partition: number, offset: number, payload: Uint8Array, meta: RecordMeta = {}) {
  return new ReceivedMessage("orders", partition, { offset, timestamp: 0, payload, ...meta }, 1);
}

const messages = [
  message(0, 0, enc.encode("hello")),
  message(0, 9, new Uint8Array(0)),
  message(3, 10, new Uint8Array([0xff, 0x00, 0x0d, 0x0a])),
  message(12, 1234567890123, enc.encode("x".repeat(70_000))),
  message(1, 99, enc.encode("k"), { key: "κλειδί" }),
  message(1, 100, enc.encode("i"), { id: "own-id" }),
  message(2, 7, enc.encode("h"), { headers: { trace: "t-1", payload: "taken" } }),
  message(2, 8, enc.encode("e"), { headers: {} }),
];

for (const maxlen of [undefined, 1000]) {
  for (const stream of ["orders", "στρήμα:{x}"]) {
    Deno.test(`redis encode: plain XADDs are the bytes of the general encoding (stream ${stream}, maxlen ${maxlen})`, () => {
      const fast = new Encoder(64), general = new Encoder(64);
      const encode = xaddEncoder(fast, stream, "orders", maxlen);
      for (const m of messages) {
        encode(m);
        general.command(xaddArgs(stream, "orders", m, maxlen));
      }
      eq(fast.length, general.length);
      eq(fast.bytes.subarray(0, fast.length), general.bytes.subarray(0, general.length));
    });
  }
}
