import { deepStrictEqual as eq } from "node:assert/strict";
import { ByteSink, checkFrame, decodeFrame, encodeFrames, RECORD_HEAD } from "./_frame_codec.ts";
import { batchOf, type RecordMeta, type StoredRecord } from "../core/record.ts";

const enc = new TextEncoder();

/** Keys, ids and header values in ASCII and not (2-, 3- and 4-byte UTF-8, a lone surrogate). */
const strings = ["", "a", "kafka:bench:0:17", "é", "naïve-ß", "日本語のキー", "🚀x🚀", "a\ud800b"];

function metaOf(i: number): RecordMeta | undefined {
  if (i % 5 === 4) return undefined;
  const s = strings[i % strings.length];
  return {
    key: i % 2 ? s : undefined,
    id: i % 3 ? `${s}-${i}` : undefined,
    headers: i % 4 ? { origin: s, [`h-${s}`]: String(i) } : i % 8 ? undefined : {},
    deliverAt: i % 7 === 1 ? 1_700_000_000_123 : undefined,
    attempt: i % 6 === 2 ? 3 : undefined,
  };
}

Deno.test("frame codec: keys, ids and headers written in place read back as they were, ASCII or not", () => {
  const n = 200;
  const payloads = Array.from({ length: n }, (_, i) => enc.encode(`p${i}`.repeat(i % 40)));
  const meta = Array.from({ length: n }, (_, i) => metaOf(i));
  const batch = batchOf(payloads, meta, 1_700_000_000_000);
  const sink = new ByteSink(64); // grows while it is written
  const ends = encodeFrames(batch, 10, sink);
  const out: StoredRecord[] = [];
  const dv = new DataView(sink.bytes.buffer);
  for (let pos = 0, f = 0; f < ends.length; pos = ends[f++]) {
    const total = checkFrame(sink.bytes, dv, pos, sink.length);
    eq(total, ends[f] - pos);
    eq(decodeFrame(sink.bytes, dv, pos, total, 0, out), true);
  }
  eq(out.length, n);
  for (let i = 0; i < n; i++) {
    const m = meta[i];
    const r = out[i];
    eq(r.offset, 10 + i);
    eq([...r.payload], [...payloads[i]]);
    // What TextEncoder makes of the string (a lone surrogate becomes U+FFFD).
    const text = (s: string | undefined) => s === undefined ? undefined : enc.encode(s);
    const back = (s: string | undefined) =>
      s === undefined ? undefined : new TextDecoder().decode(text(s));
    eq(r.key, back(m?.key));
    eq(r.id, back(m?.id));
    const h = m?.headers && Object.keys(m.headers).length > 0
      ? JSON.parse(new TextDecoder().decode(enc.encode(JSON.stringify(m.headers))))
      : undefined;
    eq(r.headers, h);
  }
});

Deno.test("frame codec: a record's bytes are the reference encoding's (lengths, then UTF-8 by TextEncoder)", () => {
  const m: RecordMeta = { key: "k-é", id: "id-🚀", headers: { a: "日本" } };
  const batch = batchOf([enc.encode("payload")], [m], 5);
  const sink = new ByteSink(16);
  encodeFrames(batch, 0, sink);
  const key = enc.encode(m.key!), id = enc.encode(m.id!);
  const hdr = enc.encode(JSON.stringify(m.headers));
  const body = enc.encode("payload");
  const extra = 2 + key.length + 2 + id.length + 4 + hdr.length;
  const want = new Uint8Array(RECORD_HEAD + extra + body.length);
  const dv = new DataView(want.buffer);
  dv.setUint32(0, want.length - 4, true);
  dv.setFloat64(4, 5, true);
  want[12] = 1 | 2 | 4;
  let p = RECORD_HEAD;
  dv.setUint16(p, key.length, true), want.set(key, p + 2), (p += 2 + key.length);
  dv.setUint16(p, id.length, true), want.set(id, p + 2), (p += 2 + id.length);
  dv.setUint32(p, hdr.length, true), want.set(hdr, p + 4), (p += 4 + hdr.length);
  want.set(body, p);
  const recordAt = 8 + 12; // the frame's prefix and head
  eq([...sink.bytes.subarray(recordAt, sink.length)], [...want]);
});

Deno.test("frame codec: records that share one headers object each carry its JSON, and a later batch sees it changed", () => {
  const shared: Record<string, string> = { "redis-stream": "s" };
  const decodeAll = (sink: ByteSink, ends: number[]) => {
    const out: StoredRecord[] = [];
    const dv = new DataView(sink.bytes.buffer);
    for (let pos = 0, f = 0; f < ends.length; pos = ends[f++]) {
      decodeFrame(sink.bytes, dv, pos, ends[f] - pos, 0, out);
    }
    return out;
  };
  const meta: RecordMeta[] = [
    { id: "a", headers: shared },
    { id: "b", headers: { other: "1" } },
    { id: "c", headers: shared },
    { id: "d", headers: {} },
    { id: "e", headers: shared },
  ];
  const batch = batchOf(meta.map(() => enc.encode("p")), meta, 1);
  const sink = new ByteSink(64);
  eq(decodeAll(sink, encodeFrames(batch, 0, sink)).map((r) => r.headers), [
    shared,
    { other: "1" },
    shared,
    undefined,
    shared,
  ]);
  shared["redis-stream"] = "t";
  const again = new ByteSink(64);
  eq(decodeAll(again, encodeFrames(batch, 0, again)).map((r) => r.headers?.["redis-stream"]), [
    "t",
    undefined,
    "t",
    undefined,
    "t",
  ]);
});
