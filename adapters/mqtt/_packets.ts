/**
 * The MQTT 3.1.1 and 5 packets the connector speaks, as bytes: CONNECT,
 * PUBLISH (many into one buffer), PUBACK, PUBREL, SUBSCRIBE, PINGREQ and
 * DISCONNECT written; CONNACK, PUBLISH, PUBACK, PUBREC, PUBCOMP, SUBACK,
 * PINGRESP and DISCONNECT read from a buffer in one loop.
 *
 * @module
 */

/** MQTT 5 user properties: name to value (a repeated name keeps its last value). */
export type Properties = Record<string, string>;

/** Packet types (the high nibble of the first byte). */
export const CONNACK = 2,
  PUBLISH = 3,
  PUBACK = 4,
  PUBREC = 5,
  PUBREL = 6,
  PUBCOMP = 7,
  SUBACK = 9,
  PINGRESP = 13,
  DISCONNECT = 14;

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A growable byte buffer that packets are written into. */
export class Writer {
  buf: Uint8Array;
  at = 0;
  #view: DataView;

  constructor(size = 65536) {
    this.buf = new Uint8Array(size);
    this.#view = new DataView(this.buf.buffer);
  }

  /** Makes room for `n` more bytes. */
  room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const grown = new Uint8Array(Math.max(this.buf.length * 2, this.at + n));
    grown.set(this.buf.subarray(0, this.at));
    this.buf = grown;
    this.#view = new DataView(grown.buffer);
  }

  /** One byte (room must have been made). */
  u8(v: number): void {
    this.buf[this.at++] = v;
  }

  /** A 16-bit big-endian integer. */
  u16(v: number): void {
    this.#view.setUint16(this.at, v);
    this.at += 2;
  }

  /** A 32-bit big-endian integer. */
  u32(v: number): void {
    this.#view.setUint32(this.at, v);
    this.at += 4;
  }

  /** A variable byte integer (remaining lengths, property lengths). */
  varint(v: number): void {
    do {
      let b = v & 127;
      v = Math.floor(v / 128);
      if (v > 0) b |= 128;
      this.buf[this.at++] = b;
    } while (v > 0);
  }

  /** Raw bytes. */
  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.at);
    this.at += b.length;
  }

  /** A UTF-8 string or binary data with its 16-bit length. */
  str(s: string | Uint8Array): void {
    if (typeof s !== "string") {
      this.room(2 + s.length);
      this.u16(s.length);
      this.bytes(s);
      return;
    }
    this.room(2 + s.length * 3);
    const { written } = enc.encodeInto(s, this.buf.subarray(this.at + 2));
    this.u16(written);
    this.at += written;
  }

  /** The bytes written so far, and a fresh start (the buffer is handed over). */
  take(): Uint8Array {
    const out = this.buf.subarray(0, this.at);
    this.buf = new Uint8Array(Math.max(4096, Math.min(this.buf.length, 1 << 20)));
    this.#view = new DataView(this.buf.buffer);
    this.at = 0;
    return out;
  }
}

/** How many bytes a variable byte integer takes. */
function varintSize(v: number): number {
  return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4;
}

/** Writes a whole packet: its first byte, then `body` (written into a scratch buffer). */
function packet(w: Writer, first: number, body: (b: Writer) => void): void {
  const b = new Writer(256);
  body(b);
  w.room(5 + b.at);
  w.u8(first);
  w.varint(b.at);
  w.bytes(b.buf.subarray(0, b.at));
}

/** What a CONNECT says. */
export interface ConnectPacket {
  version: 4 | 5;
  clientId: string;
  clean: boolean;
  keepaliveS: number;
  username?: string;
  password?: string;
  /** MQTT 5: seconds the broker keeps the session. */
  sessionExpiryS?: number;
  /** MQTT 5: unacknowledged QoS 1 and 2 PUBLISHes the broker may send. */
  receiveMaximum?: number;
}

/** Writes a CONNECT. */
export function writeConnect(w: Writer, c: ConnectPacket): void {
  packet(w, 0x10, (b) => {
    b.str("MQTT");
    b.room(4);
    b.u8(c.version);
    b.u8(
      (c.username !== undefined ? 0x80 : 0) | (c.password !== undefined ? 0x40 : 0) |
        (c.clean ? 0x02 : 0),
    );
    b.u16(c.keepaliveS);
    if (c.version === 5) {
      const props = new Writer(16);
      props.room(8);
      if (c.sessionExpiryS) {
        props.u8(0x11);
        props.u32(Math.min(c.sessionExpiryS, 0xffffffff));
      }
      if (c.receiveMaximum) {
        props.u8(0x21);
        props.u16(c.receiveMaximum);
      }
      b.room(4 + props.at);
      b.varint(props.at);
      b.bytes(props.buf.subarray(0, props.at));
    }
    b.str(c.clientId);
    if (c.username !== undefined) b.str(c.username);
    if (c.password !== undefined) b.str(enc.encode(c.password));
  });
}

/**
 * Writes one PUBLISH to the topic `topic` (its UTF-8 bytes), with the user
 * properties `props` when `v5` (an empty property section when none).
 */
export function writePublish(
  w: Writer,
  v5: boolean,
  topic: Uint8Array,
  qos: number,
  id: number,
  payload: Uint8Array,
  props: Properties | undefined,
): void {
  let propsLen = 0;
  let scratch: Writer | undefined;
  if (v5 && props) {
    scratch = propWriter;
    scratch.at = 0;
    for (const name in props) {
      scratch.room(1);
      scratch.u8(0x26);
      scratch.str(name);
      scratch.str(props[name]);
    }
    propsLen = scratch.at;
  }
  const remaining = 2 + topic.length + (qos > 0 ? 2 : 0) +
    (v5 ? varintSize(propsLen) + propsLen : 0) + payload.length;
  w.room(5 + remaining);
  w.u8(0x30 | (qos << 1));
  w.varint(remaining);
  w.u16(topic.length);
  w.buf.set(topic, w.at);
  w.at += topic.length;
  if (qos > 0) w.u16(id);
  if (v5) {
    w.varint(propsLen);
    if (scratch) {
      w.buf.set(scratch.buf.subarray(0, propsLen), w.at);
      w.at += propsLen;
    }
  }
  w.buf.set(payload, w.at);
  w.at += payload.length;
}
/** The scratch buffer of a PUBLISH's properties (one at a time: no await in between). */
const propWriter = new Writer(1024);

/** Writes a 2-byte acknowledgement (PUBACK 0x40, PUBREL 0x62) of packet `id`. */
export function writeAck(w: Writer, first: number, id: number): void {
  w.room(4);
  w.u8(first);
  w.u8(2);
  w.u16(id);
}

/** Writes a SUBSCRIBE of `filters` at `qos`. */
export function writeSubscribe(
  w: Writer,
  v5: boolean,
  id: number,
  filters: string[],
  qos: number,
): void {
  packet(w, 0x82, (b) => {
    b.room(3);
    b.u16(id);
    if (v5) b.u8(0);
    for (const f of filters) {
      b.str(f);
      b.room(1);
      b.u8(qos);
    }
  });
}

/** Writes a PINGREQ. */
export function writePing(w: Writer): void {
  w.room(2);
  w.u8(0xc0);
  w.u8(0);
}

/** Writes a DISCONNECT (normal disconnection). */
export function writeDisconnect(w: Writer): void {
  w.room(2);
  w.u8(0xe0);
  w.u8(0);
}

/** A packet read: its type, flags and body (`buf[start, end)`). */
export interface RawPacket {
  type: number;
  flags: number;
  buf: Uint8Array;
  start: number;
  end: number;
}

/**
 * Reads the whole packets of `buf[0, end)`, calling `each` on each in
 * order; returns where the first incomplete one starts and, when its
 * length is known, how many bytes it needs in all.
 *
 * @throws {Error} a malformed remaining length
 */
export function readPackets(
  buf: Uint8Array,
  end: number,
  each: (p: RawPacket) => void,
): { used: number; need: number } {
  let at = 0;
  const p: RawPacket = { type: 0, flags: 0, buf, start: 0, end: 0 };
  while (at + 2 <= end) {
    let len = 0, mul = 1, i = at + 1, complete = false;
    for (let k = 0; k < 4 && i < end; k++) {
      const b = buf[i++];
      len += (b & 127) * mul;
      mul *= 128;
      if (b < 128) {
        complete = true;
        break;
      }
      if (k === 3) throw new Error("malformed MQTT packet (remaining length)");
    }
    if (!complete) return { used: at, need: 0 };
    if (i + len > end) return { used: at, need: i + len - at };
    p.type = buf[at] >> 4;
    p.flags = buf[at] & 15;
    p.start = i;
    p.end = i + len;
    each(p);
    at = i + len;
  }
  return { used: at, need: 0 };
}

/** A 16-bit big-endian integer at `at`. */
export function u16(buf: Uint8Array, at: number): number {
  return (buf[at] << 8) | buf[at + 1];
}

/** Property ids by the size of their value (the rest are strings or pairs). */
const BYTE = new Set([0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2a]);
const TWO = new Set([0x13, 0x21, 0x22, 0x23]);
const FOUR = new Set([0x02, 0x11, 0x18, 0x27]);

/** What the property sections the connector reads may say. */
export interface ReadProperties {
  /** Receive Maximum (0x21). */
  receiveMaximum?: number;
  /** Reason String (0x1F). */
  reason?: string;
  /** User properties (0x26). */
  user?: Properties;
}

/**
 * Reads an MQTT 5 property section at `at`; returns what it says and where
 * it ends.
 *
 * @throws {Error} a property the connector does not know
 */
export function readProperties(buf: Uint8Array, at: number): [ReadProperties, number] {
  let len = 0, mul = 1;
  for (;;) {
    const b = buf[at++];
    len += (b & 127) * mul;
    mul *= 128;
    if (b < 128) break;
  }
  const end = at + len;
  const out: ReadProperties = {};
  while (at < end) {
    const id = buf[at++];
    if (BYTE.has(id)) at += 1;
    else if (TWO.has(id)) {
      if (id === 0x21) out.receiveMaximum = u16(buf, at);
      at += 2;
    } else if (FOUR.has(id)) at += 4;
    else if (id === 0x0b) { while (buf[at++] >= 128); }
    else if (id === 0x26) {
      const nl = u16(buf, at);
      const name = dec.decode(buf.subarray(at + 2, at + 2 + nl));
      at += 2 + nl;
      const vl = u16(buf, at);
      (out.user ??= {})[name] = dec.decode(buf.subarray(at + 2, at + 2 + vl));
      at += 2 + vl;
    } else if ([0x03, 0x08, 0x09, 0x12, 0x15, 0x16, 0x1a, 0x1c, 0x1f].includes(id)) {
      const l = u16(buf, at);
      if (id === 0x1f) out.reason = dec.decode(buf.subarray(at + 2, at + 2 + l));
      at += 2 + l;
    } else throw new Error(`malformed MQTT packet (property ${id})`);
  }
  return [out, end];
}

/** The words of CONNACK return codes (3.1.1) and reason codes (5), as mqtt.js says them. */
export const CONNACK_REASONS: Record<number, string> = {
  1: "Unacceptable protocol version",
  2: "Identifier rejected",
  3: "Server unavailable",
  4: "Bad username or password",
  5: "Not authorized",
  128: "Unspecified error",
  129: "Malformed Packet",
  130: "Protocol Error",
  131: "Implementation specific error",
  132: "Unsupported Protocol Version",
  133: "Client Identifier not valid",
  134: "Bad User Name or Password",
  135: "Not authorized",
  136: "Server unavailable",
  137: "Server busy",
  138: "Banned",
  140: "Bad authentication method",
  144: "Topic Name invalid",
  149: "Packet too large",
  151: "Quota exceeded",
  153: "Payload format invalid",
  154: "Retain not supported",
  155: "QoS not supported",
  156: "Use another server",
  157: "Server moved",
  159: "Connection rate exceeded",
};

/** Decodes a topic name, reusing the last string when the bytes are the same. */
export class TopicCache {
  #bytes = new Uint8Array(0);
  #text = "";

  /** The topic of `buf[start, end)`. */
  decode(buf: Uint8Array, start: number, end: number): string {
    const n = end - start;
    const last = this.#bytes;
    if (n === last.length) {
      let same = true;
      for (let i = 0; i < n; i++) {
        if (buf[start + i] !== last[i]) {
          same = false;
          break;
        }
      }
      if (same) return this.#text;
    }
    this.#bytes = buf.slice(start, end);
    return this.#text = dec.decode(this.#bytes);
  }
}
