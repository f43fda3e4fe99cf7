import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { MqError } from "../../core/errors.ts";
import type { Counter, LineLimit, PubOptions, Send } from "./_pub_records.ts";
import { pubLines } from "./_pub_lines.ts";

const enc = new TextEncoder();

Deno.test("pub stops at a bad line that fails while reading waits on the memory bound, with input left open", async () => {
  // 66 reads of 64 KiB arrive at once: after the last one more than 4 MiB is
  // pending behind the first write, so reading waits; then the input stays
  // open and silent.
  const lines = enc.encode(
    Array.from({ length: 67_584 }, (_, i) => `${i}`.padEnd(63, ".")).join("\n") + "\n",
  );
  let at = 0;
  let silent!: () => void;
  const input = {
    read(p: Uint8Array): Promise<number | null> {
      if (at >= lines.length) {
        return new Promise<number | null>((resolve) => silent = () => resolve(null));
      }
      const n = Math.min(p.length, lines.length - at, 64 * 1024);
      p.set(lines.subarray(at, at + n));
      at += n;
      return Promise.resolve(n);
    },
  };
  // The first write is slow and refuses its 10th record: by then reading waits on the
  // memory bound (4 MiB pending); what is left of the input must not be waited for.
  let calls = 0;
  const send: Send = async (b) => {
    calls++;
    if (calls === 1) {
      await new Promise((r) => setTimeout(r, 300));
      throw new MqError("MESSAGE_TOO_LARGE", "refused", { details: { index: 9, published: 9 } });
    }
    return { count: b.count, duplicates: 0 };
  };
  const counter: Counter = { n: 0, duplicates: 0, skipped: 0, unroutable: 0 };
  const limit: LineLimit = { why: "test", lineBytes: 1 << 20, raw: true };
  const opts = { header: [], routingKey: "" } as unknown as PubOptions;
  const outcome = await Promise.race([
    pubLines(send, opts, undefined, counter, limit, input).then(() => "returned", (e) => e),
    new Promise((r) => setTimeout(() => r("still waiting for input"), 5_000)),
  ]);
  silent?.();
  ok(MqError.is(outcome, "MESSAGE_TOO_LARGE"), String(outcome));
  eq(at, lines.length, "all of the input had been read when the write failed");
  eq(counter.n, 9);
});
