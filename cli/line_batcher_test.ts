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
