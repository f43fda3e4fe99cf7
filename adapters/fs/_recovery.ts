/**
 * Recovery of a partition after a crash or damage, in one place: the
 * high-water mark (the offset after the last batch an append acknowledged,
 * kept in `<partition>/hwm`), so that offsets a publisher or a group was told
 * of are never handed out again, and the quarantine of bytes cut from a
 * segment (`<segment>.corrupt`), so that nothing is thrown away unseen.
 *
 * The writer (`partition_writer.ts`) writes the mark after each append and
 * consults it when it cuts a damaged tail; readers (`_segment_reader.ts`) pass
 * offsets below it that no frame holds; `mq doctor` (`_doctor.ts`) checks
 * and repairs with the same rules.
 */
import type { CorruptionReport } from "../../core/adapter.ts";

/** What a writer or reader reports of damage it found (topic and partition are added by the adapter). */
export type DamageListener = (report: Omit<CorruptionReport, "topic" | "partition">) => void;

/** The file of a partition's high-water mark. */
export function hwmPath(dir: string): string {
  return `${dir}/hwm`;
}

/** A partition's high-water mark, 0 where none was written (or it is unreadable). */
export async function readHighWater(dir: string): Promise<number> {
  try {
    const n = Number((await Deno.readTextFile(hwmPath(dir))).trim());
    return Number.isSafeInteger(n) && n >= 0 ? n : 0;
  } catch {
    return 0;
  }
}

/** {@link readHighWater} without an async round trip (a file of 21 bytes). */
export function readHighWaterSync(dir: string): number {
  try {
    const n = Number(Deno.readTextFileSync(hwmPath(dir)).trim());
    return Number.isSafeInteger(n) && n >= 0 ? n : 0;
  } catch {
    return 0;
  }
}

/**
 * Keeps a partition's high-water mark up to date: one in-place write of a
 * fixed-width number after each append (overwriting in place needs no new
 * disk block, so it works on a full disk too).
 */
export class HighWater {
  #dir: string;
  #file: Deno.FsFile | undefined;
  #last = -1;

  constructor(dir: string) {
    this.#dir = dir;
  }

  /** Records that offsets below `offset` were acknowledged (call holding the partition lock). */
  advance(offset: number): Promise<void> {
    if (offset <= this.#last) return Promise.resolve();
    // Synchronous calls: 21 bytes into the page cache cost less than two round
    // trips to Deno's thread pool.
    try {
      this.#file ??= Deno.openSync(hwmPath(this.#dir), { read: true, write: true, create: true });
      this.#file.seekSync(0, Deno.SeekMode.Start);
      const bytes = new TextEncoder().encode(String(offset).padStart(20, "0") + "\n");
      let n = 0;
      while (n < bytes.length) n += this.#file.writeSync(bytes.subarray(n));
      this.#last = offset;
    } catch {
      // Best effort: the mark only guards against reusing offsets after damage.
      this.close();
    }
    return Promise.resolve();
  }

  /** Releases the file (the next advance reopens it). */
  close(): void {
    this.#file?.close();
    this.#file = undefined;
    this.#last = -1;
  }
}

/** The side file that keeps bytes cut from `segment`. */
export function quarantinePath(segment: string): string {
  return `${segment}.corrupt`;
}

/**
 * Appends `bytes` (cut from `segment` at byte `at`) to its quarantine file,
 * each stretch after a line `# bytes FROM-TO of SEGMENT`.
 */
export async function quarantine(segment: string, at: number, bytes: Uint8Array): Promise<void> {
  const head = new TextEncoder().encode(
    `# bytes ${at}-${at + bytes.length} of ${segment}\n`,
  );
  const out = new Uint8Array(head.length + bytes.length + 1);
  out.set(head);
  out.set(bytes, head.length);
  out[out.length - 1] = 10;
  await Deno.writeFile(quarantinePath(segment), out, { append: true });
}

/** The file listing a partition's offsets known lost to damage (`FROM-TO` lines, `TO` exclusive). */
export function lostPath(dir: string): string {
  return `${dir}/lost`;
}

/** Notes offsets `[from, to)` as lost to damage (reported once, then known). */
export async function recordLost(dir: string, from: number, to: number): Promise<void> {
  if (to <= from) return;
  await Deno.writeTextFile(lostPath(dir), `${from}-${to}\n`, { append: true }).catch(() => {});
}

/** The offset ranges known lost to damage. */
export async function readLost(dir: string): Promise<{ from: number; to: number }[]> {
  let text = "";
  try {
    text = await Deno.readTextFile(lostPath(dir));
  } catch {
    return [];
  }
  const out: { from: number; to: number }[] = [];
  for (const line of text.split("\n")) {
    const m = /^(\d+)-(\d+)$/.exec(line.trim());
    if (m) out.push({ from: Number(m[1]), to: Number(m[2]) });
  }
  return out;
}

/** True when `[from, to)` lies within the ranges of `lost`. */
export function isKnownLost(
  lost: { from: number; to: number }[],
  from: number,
  to: number,
): boolean {
  let at = from;
  for (const r of [...lost].sort((a, b) => a.from - b.from)) {
    if (r.from <= at && r.to > at) at = r.to;
    if (at >= to) return true;
  }
  return at >= to;
}
