import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { LineBatcher } from "./line_batcher.ts";

const enc = new TextEncoder(), dec = new TextDecoder();
const lines = (b: LineBatcher) => {
  const batch = b.take(0);
  return Array.from(
    { length: batch.count },
    (_, i) => dec.decode(batch.data.subarray(batch.starts[i], batch.ends[i])),
  );
};

Deno.test("lines: LF and CRLF endings are removed, empty lines kept, a last line without newline kept", () => {
  const b = new LineBatcher({ delimiter: "newline", capacity: 8 });
  b.push(enc.encode("a\r\n\nb"));
  b.push(enc.encode("c\r\nd\re"));
  assertEquals(lines(b), ["a", "", "bc"]);
  b.finish();
  assertEquals(lines(b), ["d\re"]);
  assertEquals(b.linesBefore, 4);
});

Deno.test("NUL-delimited records keep newlines and CRs", () => {
  const b = new LineBatcher({ delimiter: "nul" });
  b.push(new Uint8Array([97, 10, 13, 0, 0, 255, 0]));
  assertEquals(lines(b).map((s) => [...enc.encode(s)]), [[97, 10, 13], [], [239, 191, 189]]);
});

Deno.test("a line longer than the buffer grows it, and bytes stay valid after take", () => {
  const b = new LineBatcher({ delimiter: "newline", capacity: 4 });
  b.push(enc.encode("0123456789"));
  b.push(enc.encode("ab\nxy"));
  const batch = b.take(0);
  b.push(enc.encode("zzzzzzzzzz\n"));
  assertEquals(dec.decode(batch.data.subarray(batch.starts[0], batch.ends[0])), "0123456789ab");
  assertEquals(lines(b), ["xyzzzzzzzzzz"]);
});

Deno.test("an oversize line becomes a placeholder at once; the bytes after it up to the delimiter are dropped", () => {
  const b = new LineBatcher({ delimiter: "newline", capacity: 4, maxLineBytes: 5 });
  b.push(enc.encode("ok\n0123"));
  b.push(enc.encode("456789")); // 10 bytes of a line: over the limit before its end
  b.push(enc.encode("abc"));
  const first = b.take(0);
  assertEquals(first.count, 2);
  assertEquals(first.oversize, [1]);
  assertEquals(first.ends[1] - first.starts[1], 0);
  b.push(enc.encode("def\nfine\n12345\n123456"));
  b.finish();
  const rest = b.take(0);
  assertEquals(
    Array.from(
      { length: rest.count },
      (_, i) => dec.decode(rest.data.subarray(rest.starts[i], rest.ends[i])),
    ),
    ["fine", "12345", ""],
  );
  assertEquals(rest.oversize, [2], "a last line over the limit is oversize too");
  assertEquals(b.linesBefore, 5);
});

Deno.test("an oversize line that ends within the buffer is reported with its size", () => {
  const b = new LineBatcher({ delimiter: "newline", maxLineBytes: 3 });
  b.push(enc.encode("abcdef\nok\n"));
  const batch = b.take(0);
  assertEquals([batch.oversize, batch.oversizeBytes], [[0], [6]]);
});
