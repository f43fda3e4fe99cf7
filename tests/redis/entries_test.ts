/**
 * Entries coming in on the hot path (`_entries.ts`): an XREADGROUP reply
 * decoded from its bytes gives the records the mapping's general rule
 * (`messageOf`) gives, and XACKs of exactly the ids read; a reply cut short
 * anywhere is not decoded; the bytes of a decoded reply stay intact while
 * later replies are read (`ValueReader`).
 */
import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { entriesParser } from "../../adapters/redis/_entries.ts";
import { messageOf } from "../../adapters/redis/_mapping.ts";
import { Encoder, type Value, ValueReader } from "../../adapters/redis/_resp.ts";

const enc = new TextEncoder(), dec = new TextDecoder();

type Fields = (string | Uint8Array)[] | null;
type Stream = [string, [string, Fields][]];

/** RESP bytes of a bulk string or nil array, an array of them, nested. */
function resp(v: unknown): Uint8Array {
  const parts: Uint8Array[] = [];
  const put = (x: unknown) => {
    if (x === null) parts.push(enc.encode("*-1\r\n"));
    else if (Array.isArray(x)) {
      parts.push(enc.encode(`*${x.length}\r\n`));
      for (const y of x) put(y);
    } else {
      const b = typeof x === "string" ? enc.encode(x) : x as Uint8Array;
      parts.push(enc.encode(`$${b.length}\r\n`), b, enc.encode("\r\n"));
    }
  };
  put(v);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), at += p.length);
  return out;
}

const bytes = (x: string | Uint8Array) => typeof x === "string" ? enc.encode(x) : x;

/** What the general rule makes of `streams`: [payload, id, key, headers] per stored entry. */
function expected(streams: Stream[]) {
  const out: [string, string, string | undefined, Record<string, string>][] = [];
  for (const [stream, entries] of streams) {
    for (const [id, fields] of entries) {
      if (!fields) continue;
      const m = messageOf(stream, id, fields.map(bytes));
      out.push([JSON.stringify([...m.payload as Uint8Array]), m.id!, m.key, m.headers]);
    }
  }
  return out;
}

const STREAMS: Stream[] = [
  ["orders", [
    ["1-0", ["payload", "p0", "mq-id", "orders:0-0"]], // the plain form
    ["1-1", ["body", new Uint8Array([0xff, 0, 13, 10])]], // one field, any name: binary payload
    ["1-2", ["payload", "p2", "mq-key", "k", "level", "info"]], // key and a header
    ["1-3", null], // deleted since it was delivered
    ["1-4", ["mq-key", "only-a-key"]], // one field, but the key's: no payload
    ["1-5", ["mq-id", "x", "payload", "p5"]], // the plain fields in the other order
    ["1-6", ["payload", "", "mq-headers", '{"payload":"taken"}']],
    ["1-7", ["payload", "p7", "mq-idx", "a header"]], // a longer name is a header
  ]],
  ["στρήμα:{x}", [["9-0", ["payload", "ü"]], ["9-1", ["payload", "v", "mq-id", "w"]]]],
];

Deno.test("redis entries: an XREADGROUP reply decodes to the records messageOf makes, and XACKs every id read", () => {
  const reply = resp(STREAMS);
  const r = entriesParser("g")(reply, 0, reply.length)!;
  eq(r.end, reply.length);
  const read = r.value!;
  const got = [];
  for (let i = 0; i < read.batch.count; i++) {
    const payload = read.batch.data.subarray(read.batch.starts[i], read.batch.ends[i]);
    const m = read.batch.meta![i]!;
    got.push([JSON.stringify([...payload]), m.id!, m.key, m.headers!]);
  }
  eq(got, expected(STREAMS));
  eq(read.entries, 10);
  // The XACKs: one a stream, of every id read (the deleted entry's too).
  const acks = new Encoder(1024);
  for (const [stream, entries] of STREAMS) {
    acks.command(["XACK", stream, "g", ...entries.map(([id]) => id)]);
  }
  eq(read.acks.count, 2);
  eq(dec.decode(read.acks.bytes), dec.decode(acks.bytes.subarray(0, acks.length)));
  // Plain entries share the stream's origin object.
  eq(read.batch.meta![0]!.headers === read.batch.meta![1]!.headers, true);
});

Deno.test("redis entries: a reply cut short anywhere is not decoded; one at an offset is", () => {
  const reply = resp(STREAMS);
  for (let end = 0; end < reply.length; end++) {
    eq(entriesParser("g")(reply, 0, end), undefined, `cut at ${end}`);
  }
  const padded = new Uint8Array(reply.length + 7);
  padded.set(reply, 5);
  const r = entriesParser("g")(padded, 5, 5 + reply.length)!;
  eq([r.end, r.value!.batch.count], [5 + reply.length, 9]);
  const nil = enc.encode("*-1\r\n");
  eq(entriesParser("g")(nil, 0, nil.length), { value: null, end: nil.length });
});

/** A connection that hands out `chunks` one read at a time. */
function fakeConn(chunks: Uint8Array[]): Deno.Conn {
  return {
    read(into: Uint8Array) {
      const c = chunks.shift();
      if (!c) return Promise.resolve(null);
      const n = Math.min(into.length, c.length);
      into.set(c.subarray(0, n));
      if (n < c.length) chunks.unshift(c.subarray(n));
      return Promise.resolve(n);
    },
    close() {},
  } as unknown as Deno.Conn;
}

Deno.test("redis entries: a decoded reply's payloads stay intact while later replies are read", async () => {
  const first = resp([["s", [["1-0", ["payload", "first-payload"]]]]]);
  const second = resp([["s", [["2-0", ["payload", "SECOND-PAYLOAD"]]]]]);
  const error = enc.encode("-WRONGTYPE no\r\n");
  const all = new Uint8Array(first.length + second.length + error.length);
  all.set(first);
  all.set(second, first.length);
  all.set(error, first.length + second.length);
  // Cut into small reads that straddle the replies.
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < all.length; i += 7) chunks.push(all.slice(i, i + 7));
  const reader = new ValueReader(fakeConn(chunks), 1000);
  const parse = entriesParser("g");
  const a = await reader.read(parse) as {
    batch: { data: Uint8Array; starts: Uint32Array; ends: Uint32Array };
  };
  const b = await reader.read(parse) as typeof a;
  const e = await reader.read(parse) as Value;
  const text = (r: typeof a) =>
    dec.decode(r.batch.data.subarray(r.batch.starts[0], r.batch.ends[0]));
  eq([text(a), text(b)], ["first-payload", "SECOND-PAYLOAD"]);
  ok(e instanceof Error && e.message === "WRONGTYPE no");
});
