/**
 * mq's varint writer for kafkajs (`adapters/kafka/_encoder.ts`) writes the
 * bytes kafkajs's own writes, value by value, and a whole record encodes to
 * the same bytes with it as without it.
 */
import { deepStrictEqual as eq } from "node:assert/strict";
import { Buffer } from "node:buffer";
import { Encoder, installFastVarints, original } from "../../adapters/kafka/_encoder.ts";
// @ts-ignore: kafkajs ships no types for its internals
import Record from "kafkajs/src/protocol/recordBatch/record/v0/index.js";
// @ts-ignore: kafkajs ships no types for its internals
import Long from "kafkajs/src/utils/long.js";

/** Values around every varint length boundary, both signs, and the 32-bit edges. */
function values(): number[] {
  const out = [0, 1, -1, 2, -2, 63, -64, 64, -65, 127, 128, 255, 256, 300, -300];
  for (let bits = 7; bits <= 31; bits += 7) {
    for (const d of [-1, 0, 1]) out.push(2 ** bits + d, -(2 ** bits) + d);
  }
  out.push(2 ** 31 - 1, -(2 ** 31), 2 ** 30, -(2 ** 30) - 1, 1234567, -7654321);
  return out;
}

/** The bytes `write` puts into a fresh encoder. */
function bytesOf(write: (e: any) => void): number[] {
  const e = new Encoder();
  write(e);
  return [...e.buffer];
}

/** The bytes of one record encoded by kafkajs, with or without the faster methods. */
function record(fast: boolean, timestampDelta: unknown, offsetDelta: number): number[] {
  const saved = [
    Encoder.prototype.writeUVarInt,
    Encoder.prototype.writeVarLong,
    Encoder.sizeOfVarLong,
  ];
  if (!fast) {
    Encoder.prototype.writeUVarInt = original.writeUVarInt;
    Encoder.prototype.writeVarLong = original.writeVarLong;
    Encoder.sizeOfVarLong = original.sizeOfVarLong;
  }
  try {
    return [
      ...Record({
        offsetDelta,
        timestampDelta,
        key: Buffer.from("k-1"),
        value: Buffer.from("x".repeat(300)),
        headers: { "mq-id": "orders/0/17", kind: "a" },
      }).buffer,
    ];
  } finally {
    [Encoder.prototype.writeUVarInt, Encoder.prototype.writeVarLong, Encoder.sizeOfVarLong] = saved;
  }
}

Deno.test("kafka encoder: varints, varlongs and their sizes are kafkajs's bytes", () => {
  installFastVarints();
  for (const v of values()) {
    eq(
      bytesOf((e) => e.writeVarInt(v)),
      bytesOf((e) => original.writeUVarInt.call(e, Encoder.encodeZigZag(v))),
      `varint ${v}`,
    );
    eq(
      bytesOf((e) => e.writeUVarInt(v >>> 0)),
      bytesOf((e) => original.writeUVarInt.call(e, v >>> 0)),
      `uvarint ${v >>> 0}`,
    );
    eq(
      bytesOf((e) => e.writeVarLong(v)),
      bytesOf((e) => original.writeVarLong.call(e, v)),
      `varlong ${v}`,
    );
    eq(Encoder.sizeOfVarLong(v), original.sizeOfVarLong(v), `size of varlong ${v}`);
  }
  // Beyond 32 bits, and as Longs and strings, kafkajs's own path is taken.
  for (
    const v of [2 ** 31, -(2 ** 31) - 1, 2 ** 40 + 3, -(2 ** 45), Long.fromNumber(5), "70000000000"]
  ) {
    eq(
      bytesOf((e) => e.writeVarLong(v)),
      bytesOf((e) => original.writeVarLong.call(e, v)),
      `varlong ${v}`,
    );
    eq(Encoder.sizeOfVarLong(v), original.sizeOfVarLong(v), `size of varlong ${v}`);
  }
  // Writes after a varint land after it, and the buffer grows as needed.
  const e = new Encoder(1);
  for (let i = 0; i < 1000; i++) e.writeVarInt(i * 1000).writeInt8(7);
  const back = new Encoder(1);
  for (let i = 0; i < 1000; i++) {
    (original.writeUVarInt.call(back, Encoder.encodeZigZag(i * 1000)) as any).writeInt8(7);
  }
  eq([...e.buffer], [...back.buffer]);
});

Deno.test("kafka encoder: a record encodes to the same bytes with the faster methods", () => {
  installFastVarints();
  for (const [ts, off] of [[0, 0], [5, 3], [1_000_000, 1023], [-1, 4], [2 ** 33, 70000]] as const) {
    eq(record(true, ts, off), record(false, ts, off), `record ts ${ts} offset ${off}`);
  }
});
