/**
 * RESP2 bytes for the Redis connector: commands encoded into one growable
 * buffer (no string built per argument); replies read off a connection,
 * each read bounded by a timeout, either only counted (`ReplyReader`, for
 * the XADDs going out, no string decoded but error texts) or decoded into
 * values whose bulk strings are views of the bytes read (`ValueReader`, for
 * the reads coming in).
 *
 * @module
 */

const enc = new TextEncoder();
const dec = new TextDecoder();
const CR = 0x0d;

/** An error reply of Redis (named so that `redisFailure` knows it for one). */
export class ErrorReply extends Error {}

/** One reply: an error reply's text, or `undefined` for any other (a value the pipe needs not). */
export type Reply = string | undefined;

/** How many decimal digits `n` (>= 0) has. */
function digitsOf(n: number): number {
  let d = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    d++;
  }
  return d;
}

/** A growable byte buffer that RESP commands are encoded into. */
export class Encoder {
  bytes: Uint8Array;
  length = 0;

  constructor(size = 320 * 1024) {
    this.bytes = new Uint8Array(size);
  }

  #room(n: number) {
    if (this.length + n <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.length + n));
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }

  /** Writes `kind` (`*` or `$`), `n` in decimal and CRLF at `at`; returns where it ended. */
  #head(kind: number, n: number, at: number): number {
    const b = this.bytes;
    b[at] = kind;
    const end = at + 1 + digitsOf(n);
    for (let i = end - 1; i > at; i--) {
      b[i] = 48 + (n % 10);
      n = Math.floor(n / 10);
    }
    b[end] = 0x0d;
    b[end + 1] = 0x0a;
    return end + 2;
  }

  /**
   * Appends `a` as a bulk string if it is ASCII (most names and ids are: a
   * loop here is cheaper than a call to the encoder); false (nothing
   * appended) if it is not.
   */
  #ascii(a: string): boolean {
    const n = a.length;
    this.#room(n + 16);
    const b = this.bytes;
    const start = this.length + 3 + digitsOf(n);
    for (let i = 0; i < n; i++) {
      const c = a.charCodeAt(i);
      if (c >= 0x80) return false;
      b[start + i] = c;
    }
    this.#head(0x24, n, this.length);
    b[start + n] = 0x0d;
    b[start + n + 1] = 0x0a;
    this.length = start + n + 2;
    return true;
  }

  /** Appends bytes as they are (the encoded start of a command, made once). */
  raw(bytes: Uint8Array) {
    this.#room(bytes.byteLength);
    this.bytes.set(bytes, this.length);
    this.length += bytes.byteLength;
  }

  /** Appends `b[from, to)` as they are (no view made of them). */
  rawRange(b: Uint8Array, from: number, to: number) {
    this.#room(to - from);
    const out = this.bytes;
    let at = this.length;
    for (let i = from; i < to; i++) out[at++] = b[i];
    this.length = at;
  }

  /** Appends a bulk string of `bytes`. */
  bulk(bytes: Uint8Array) {
    this.#room(bytes.byteLength + 32);
    this.length = this.#head(0x24, bytes.byteLength, this.length);
    this.bytes.set(bytes, this.length);
    this.length += bytes.byteLength;
    this.bytes[this.length] = 0x0d;
    this.bytes[this.length + 1] = 0x0a;
    this.length += 2;
  }

  /** Appends a bulk string of `head` (ASCII bytes) followed by `n` (>= 0) in decimal. */
  bulkWithNumber(head: Uint8Array, n: number) {
    const digits = digitsOf(n);
    this.#room(head.byteLength + digits + 32);
    this.length = this.#head(0x24, head.byteLength + digits, this.length);
    const b = this.bytes;
    b.set(head, this.length);
    const end = this.length + head.byteLength + digits;
    for (let i = end - 1; i >= end - digits; i--) {
      b[i] = 48 + (n % 10);
      n = Math.floor(n / 10);
    }
    b[end] = 0x0d;
    b[end + 1] = 0x0a;
    this.length = end + 2;
  }

  /** Appends one command: `*argc`, then each argument as a bulk string. */
  command(args: (string | Uint8Array)[]) {
    this.#room(16);
    this.length = this.#head(0x2a, args.length, this.length);
    for (const a of args) {
      if (typeof a === "string") {
        if (a.length < 256 && this.#ascii(a)) continue;
        // At most 3 bytes of UTF-8 per UTF-16 unit; the length is known once written.
        this.#room(a.length * 3 + 32);
        const room = digitsOf(a.length * 3);
        const at = this.length + 3 + room;
        const { written } = enc.encodeInto(a, this.bytes.subarray(at));
        const digits = digitsOf(written);
        // Fewer digits than the room left for them: move the bytes back.
        if (digits < room) this.bytes.copyWithin(at - (room - digits), at, at + written);
        this.length = this.#head(0x24, written, this.length) + written;
      } else {
        this.#room(a.byteLength + 32);
        this.length = this.#head(0x24, a.byteLength, this.length);
        this.bytes.set(a, this.length);
        this.length += a.byteLength;
      }
      this.bytes[this.length] = 0x0d;
      this.bytes[this.length + 1] = 0x0a;
      this.length += 2;
    }
  }
}

/**
 * Reads RESP replies (simple and bulk strings, integers, errors: what AUTH,
 * SELECT, PING and XADD answer) off a connection, keeping what a read cut
 * short for the next.
 */
export class ReplyReader {
  #buf = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;
  #conn: Deno.Conn;
  #timeoutMs: number;

  /** Reads off `conn`; a read that brings nothing for `timeoutMs` fails (and closes `conn`). */
  constructor(conn: Deno.Conn, timeoutMs: number) {
    this.#conn = conn;
    this.#timeoutMs = timeoutMs;
  }

  /**
   * The next complete reply in the buffer (an error's text, or undefined), or
   * `false` when the buffer does not hold one whole (then read more).
   */
  #parse(): Reply | false {
    const b = this.#buf, end = this.#end, at = this.#start;
    let eol = -1;
    for (let i = at + 1; i + 1 < end; i++) {
      if (b[i] === CR && b[i + 1] === 0x0a) {
        eol = i;
        break;
      }
    }
    if (eol < 0) return false;
    const kind = b[at];
    if (kind === 0x24 /* $ */) {
      let n = 0;
      if (b[at + 1] === 0x2d /* -1: nil */) n = -2;
      else for (let i = at + 1; i < eol; i++) n = n * 10 + (b[i] - 48);
      const next = eol + 2 + n + 2;
      if (n >= 0 && next > end) return false;
      this.#start = n < 0 ? eol + 2 : next;
      return undefined;
    }
    this.#start = eol + 2;
    if (kind === 0x2b /* + */ || kind === 0x3a /* : */) return undefined;
    if (kind === 0x2d /* - */) return dec.decode(b.subarray(at + 1, eol));
    throw new Error(
      `unexpected reply from Redis (type ${JSON.stringify(String.fromCharCode(kind))})`,
    );
  }

  /** Reads more bytes; fails when the connection ends or nothing comes within the timeout. */
  async #fill(): Promise<void> {
    if (this.#start > 0) {
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    if (this.#end === this.#buf.length) {
      const grown = new Uint8Array(this.#buf.length * 2);
      grown.set(this.#buf);
      this.#buf = grown;
    }
    this.#end += await readWithin(this.#conn, this.#buf.subarray(this.#end), this.#timeoutMs);
  }

  /** Reads `n` replies, giving each to `each` (in order). */
  async read(n: number, each: (r: Reply, i: number) => void): Promise<void> {
    for (let i = 0; i < n;) {
      const r = this.#parse();
      if (r === false) await this.#fill();
      else each(r, i++);
    }
  }
}

/**
 * Reads into `into` what `conn` has; fails when the connection ends, or when
 * nothing comes within `timeoutMs` (then `conn` is closed).
 */
async function readWithin(conn: Deno.Conn, into: Uint8Array, timeoutMs: number): Promise<number> {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      conn.close();
    } catch { /* closed already */ }
  }, timeoutMs);
  let got: number | null;
  try {
    got = await conn.read(into);
  } catch (e) {
    if (timedOut) throw new Error(`no reply from Redis within ${timeoutMs} ms`);
    throw e;
  } finally {
    clearTimeout(timer);
  }
  if (timedOut) throw new Error(`no reply from Redis within ${timeoutMs} ms`);
  if (got === null) throw new Error("the connection was closed by Redis");
  return got;
}

/** Writes all of `bytes`. */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

/**
 * A RESP2 reply as {@link ValueReader} decodes it: bulk strings as bytes
 * (views of the bytes read, not copied), simple strings as text, integers
 * as numbers, nil as `null`, arrays, and error replies as {@link ErrorReply}.
 */
export type Value = Uint8Array | string | number | null | ErrorReply | Value[];

/** A reply a parser of its own decoded, and where its bytes ended. */
export interface Parsed<T> {
  value: T;
  end: number;
}

/**
 * A parser of one kind of reply for {@link ValueReader.read}: the reply
 * that starts at `b[at]` (an array: other replies, errors among them, are
 * decoded as {@link Value}s), or undefined when `b[at, end)` does not hold
 * it whole. Views it makes of `b` stay intact.
 */
export type Parser<T> = (b: Uint8Array, at: number, end: number) => Parsed<T> | undefined;

/**
 * Where a parse of RESP bytes is: {@link ValueReader}'s and the parsers it
 * runs (`_entries.ts`). A parse runs whole without awaiting, so one cursor
 * serves every parse.
 */
export const cursor = { at: 0 };

/**
 * The decimal integer at `cursor.at` up to its CRLF, past which the cursor
 * moves; NaN (the cursor where it was) when `b[.., end)` cuts it short.
 *
 * @example
 * ```ts
 * import { cursor, intAt } from "./_resp.ts";
 * cursor.at = 1;
 * intAt(new TextEncoder().encode("*-12\r\n"), 6); // -12
 * ```
 */
export function intAt(b: Uint8Array, end: number): number {
  let i = cursor.at, neg = false, n = 0;
  if (b[i] === 0x2d) {
    neg = true;
    i++;
  }
  for (; i < end; i++) {
    const c = b[i];
    if (c === CR) {
      if (i + 1 >= end) return NaN;
      cursor.at = i + 2;
      return neg ? -n : n;
    }
    n = n * 10 + (c - 48);
  }
  return NaN;
}

/** Returned by the parser when the buffer does not hold the whole reply yet. */
const PARTIAL = Symbol("partial");

/** The smallest buffer a read is made into. */
const READ_BYTES = 256 * 1024;

/**
 * Reads whole RESP2 replies off a connection as {@link Value}s. The bulk
 * strings of a reply are views of the buffer it was read into, and that
 * buffer is never written again: the bytes that follow a reply are moved to
 * a new buffer before the next read, so a reply stays intact while it is
 * used (its payloads stored, its ids acknowledged) and later replies come in.
 */
export class ValueReader {
  #buf = new Uint8Array(READ_BYTES);
  #start = 0;
  #end = 0;
  /** Whether a reply handed out holds views of `#buf` (then it is not written again). */
  #lent = false;
  /** Whether the parse in progress made a view of `#buf` (a bulk string). */
  #viewed = false;
  #conn: Deno.Conn;
  #timeoutMs: number;

  /** Reads off `conn`; a read that brings nothing for `timeoutMs` fails (and closes `conn`). */
  constructor(conn: Deno.Conn, timeoutMs: number) {
    this.#conn = conn;
    this.#timeoutMs = timeoutMs;
  }

  /** The value at `cursor.at`, past which it moves; or PARTIAL. */
  #value(): Value | typeof PARTIAL {
    if (cursor.at >= this.#end) return PARTIAL;
    const b = this.#buf;
    const kind = b[cursor.at++];
    switch (kind) {
      case 0x24: { // $ bulk string
        const n = intAt(b, this.#end);
        if (Number.isNaN(n)) return PARTIAL;
        if (n < 0) return null;
        const from = cursor.at;
        if (from + n + 2 > this.#end) return PARTIAL;
        cursor.at = from + n + 2;
        this.#viewed = true;
        return b.subarray(from, from + n);
      }
      case 0x2a: { // * array
        const n = intAt(b, this.#end);
        if (Number.isNaN(n)) return PARTIAL;
        if (n < 0) return null;
        const items: Value[] = new Array(n);
        for (let i = 0; i < n; i++) {
          const v = this.#value();
          if (v === PARTIAL) return PARTIAL;
          items[i] = v;
        }
        return items;
      }
      case 0x3a: { // : integer
        const n = intAt(b, this.#end);
        return Number.isNaN(n) ? PARTIAL : n;
      }
      case 0x2b: // + simple string
      case 0x2d: { // - error
        const from = cursor.at;
        for (let i = from; i + 1 < this.#end; i++) {
          if (b[i] === CR) {
            cursor.at = i + 2;
            const text = dec.decode(b.subarray(from, i));
            return kind === 0x2b ? text : new ErrorReply(text);
          }
        }
        return PARTIAL;
      }
      default:
        throw new Error(
          `unexpected reply from Redis (type ${JSON.stringify(String.fromCharCode(kind))})`,
        );
    }
  }

  /** Reads more bytes; fails when the connection ends or nothing comes within the timeout. */
  async #fill(): Promise<void> {
    const left = this.#end - this.#start;
    if (this.#lent || left === this.#buf.length) {
      // A new buffer: the old one's bytes belong to replies handed out (or it is full).
      const grown = new Uint8Array(Math.max(READ_BYTES, left * 2));
      grown.set(this.#buf.subarray(this.#start, this.#end));
      this.#buf = grown;
      this.#lent = false;
    } else if (this.#start > 0) this.#buf.copyWithin(0, this.#start, this.#end);
    this.#end = left;
    this.#start = 0;
    this.#end += await readWithin(this.#conn, this.#buf.subarray(this.#end), this.#timeoutMs);
  }

  /**
   * The next reply (an error reply as an {@link ErrorReply} value, not
   * thrown); an array reply through `parse` when given.
   */
  async read<T = Value>(parse?: Parser<T>): Promise<Value | T> {
    for (;;) {
      if (parse && this.#end > this.#start && this.#buf[this.#start] === 0x2a) {
        const r = parse(this.#buf, this.#start, this.#end);
        if (r) {
          this.#start = r.end;
          this.#lent = true;
          return r.value;
        }
        await this.#fill();
        continue;
      }
      cursor.at = this.#start;
      this.#viewed = false;
      const v = this.#value();
      if (v !== PARTIAL) {
        this.#start = cursor.at;
        if (this.#viewed) this.#lent = true;
        return v;
      }
      await this.#fill();
    }
  }
}
