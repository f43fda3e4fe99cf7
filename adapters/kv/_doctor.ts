/**
 * `mq doctor` for the kv backend: every stored frame's checksum, that it is
 * stored under its own first offset, and that offsets are dense and
 * increasing. Check only: KV commits are atomic, so damage here comes from
 * outside mq; readers skip a bad value and groups settle what it held.
 */
import type { StorageCheckOptions, StorageFinding } from "../../core/adapter.ts";
import { checkFrame, frameBase, frameCount } from "../_frame_codec.ts";

/** Checks the log values of the topics named in `options`. */
export async function checkKvLogs(
  kv: Deno.Kv,
  options: StorageCheckOptions,
  start: (topic: string, partition: number) => Promise<number>,
): Promise<StorageFinding[]> {
  const findings: StorageFinding[] = [];
  for (const { name, partitions } of options.topics) {
    for (let p = 0; p < partitions; p++) {
      let expected = await start(name, p);
      for await (const e of kv.list({ prefix: ["log", name, p] }, { batchSize: 500 })) {
        const at = Number(e.key[e.key.length - 1]);
        const location = `kv key ${JSON.stringify(e.key)}`;
        const v = e.value;
        const found = (problem: string) =>
          findings.push({ topic: name, partition: p, location, problem });
        if (!(v instanceof Uint8Array)) {
          found("is not a frame of records");
          continue;
        }
        const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
        if (checkFrame(v, dv, 0, v.length) <= 0) {
          found(`its frame is corrupt (checksum); the offsets from ${at} are unreadable`);
          continue;
        }
        const base = frameBase(dv, 0), count = frameCount(dv, 0);
        if (base !== at) found(`holds offsets from ${base}, not from ${at} as its key says`);
        if (base + count <= expected) continue; // trimmed below the start
        if (base > expected) found(`offsets ${expected}-${base - 1} are missing before it`);
        expected = base + count;
      }
    }
  }
  return findings;
}
