/**
 * A faster varint writer for kafkajs 2.2.4's record encoder, installed by the
 * Kafka connector when it produces (the bridge's `--to`). kafkajs writes each
 * varint of a record (its length, timestamp and offset deltas, the lengths of
 * its key, value and headers: about eight a record) by building a JavaScript
 * array and then a Buffer from it, `Buffer.from(byteArray)`; under Deno's
 * Node layer each of those costs about 0.6 µs, and the timestamp's varlong
 * goes through BigInt arithmetic besides: a third of the bridge's CPU time
 * going out (measured with `--cpu-prof`). The patched methods write the same
 * bytes straight into the encoder's buffer; a value outside the 32-bit range
 * still takes kafkajs's own path. `tests/kafka/encoder_test.ts` checks, value
 * by value, that the bytes are kafkajs's.
 *
 * @module
 */
// @ts-ignore: kafkajs ships no types for its internals
import Encoder from "kafkajs/src/protocol/encoder.js";

interface EncoderInstance {
  buf: Uint8Array;
  offset: number;
  ensureAvailable(length: number): void;
}

const proto = Encoder.prototype;
/** kafkajs's own methods, for values the fast path does not take (and for the tests). */
export const original = {
  writeUVarInt: proto.writeUVarInt as (this: EncoderInstance, v: number) => EncoderInstance,
  writeVarLong: proto.writeVarLong as (this: EncoderInstance, v: unknown) => EncoderInstance,
  sizeOfVarLong: Encoder.sizeOfVarLong as (v: unknown) => number,
};

/** Whether `v` is a whole number whose zigzag fits 32 bits (the varint and varlong bytes agree). */
function small(v: unknown): v is number {
  return typeof v === "number" && (v | 0) === v;
}

/** Writes `value` (an unsigned 32-bit number, as kafkajs passes it) as a varint, in place. */
function writeUVarInt(this: EncoderInstance, value: number): EncoderInstance {
  this.ensureAvailable(5);
  const buf = this.buf;
  let o = this.offset;
  while ((value & 0xffffff80) !== 0) {
    buf[o++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  buf[o++] = value & 0x7f;
  this.offset = o;
  return this;
}

/** A varlong: for a 32-bit value the same bytes as a varint of its zigzag. */
function writeVarLong(this: EncoderInstance, value: unknown): EncoderInstance {
  if (!small(value)) return original.writeVarLong.call(this, value);
  return writeUVarInt.call(this, (value << 1) ^ (value >> 31));
}

/** The size of a varlong, without BigInt for a 32-bit value. */
function sizeOfVarLong(value: unknown): number {
  if (!small(value)) return original.sizeOfVarLong(value);
  return Encoder.sizeOfVarInt(value);
}

/**
 * Installs the faster methods on kafkajs's encoder (once; idempotent).
 *
 * @example
 * ```ts ignore
 * import { installFastVarints } from "./_encoder.ts";
 * installFastVarints(); // before the first produce
 * ```
 */
export function installFastVarints(): void {
  proto.writeUVarInt = writeUVarInt;
  proto.writeVarLong = writeVarLong;
  Encoder.sizeOfVarLong = sizeOfVarLong;
}

/** kafkajs's encoder class, for the tests. */
export { Encoder };
