/** Paths inside an fs backend's directory. */

/** Bytes at which a segment is closed and a new one begun. */
export const SEGMENT_BYTES = 128 * 1024 * 1024;
/** Bytes between two entries of a segment's sparse index. */
export const INDEX_INTERVAL = 64 * 1024;

/** The folder of a partition's log. */
export function partitionDir(root: string, topic: string, partition: number): string {
  return `${root}/log/${topic}/${partition}`;
}

/** The file name of the segment whose first offset is `base`. */
export function segmentName(base: number): string {
  return String(base).padStart(20, "0") + ".log";
}

/** The first offsets of a partition's segments, ascending. */
export async function listSegments(dir: string): Promise<number[]> {
  const bases: number[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      const m = /^(\d{20})\.log$/.exec(e.name);
      if (m && e.isFile) bases.push(Number(m[1]));
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return bases.sort((a, b) => a - b);
}

/**
 * A partition folder's segments (first offsets, ascending) and whether it
 * keeps a `start` file, from one synchronous directory read: a read of a few
 * entries costs less than a round trip to the thread pool (ten times less on
 * a busy machine), and knowing that `start` or the high-water mark `hwm` is
 * missing spares a failed open.
 * `bounds` of thousands of topics (`mq ui`, `mq top`) adds these up.
 */
export function scanPartitionSync(
  dir: string,
): { bases: number[]; hasStart: boolean; hasHighWater: boolean } {
  const bases: number[] = [];
  let hasStart = false, hasHighWater = false;
  try {
    for (const e of Deno.readDirSync(dir)) {
      if (e.name === "start") hasStart = true;
      else if (e.name === "hwm") hasHighWater = true;
      const m = /^(\d{20})\.log$/.exec(e.name);
      if (m && e.isFile) bases.push(Number(m[1]));
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return { bases: bases.sort((a, b) => a - b), hasStart, hasHighWater };
}

/** Reads a sparse index: pairs of (offset relative to the base, byte position). */
export async function readIndex(path: string): Promise<Uint32Array> {
  try {
    return decodeIndex(await Deno.readFile(path));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return new Uint32Array(0);
    throw e;
  }
}

/** {@link readIndex} without an async round trip (for indexes read in passing, as `bounds` does). */
export function readIndexSync(path: string): Uint32Array {
  try {
    return decodeIndex(Deno.readFileSync(path));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return new Uint32Array(0);
    throw e;
  }
}

function decodeIndex(bytes: Uint8Array): Uint32Array {
  const n = Math.floor(bytes.length / 8) * 2;
  const out = new Uint32Array(n);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < n; i++) out[i] = dv.getUint32(i * 4, true);
  return out;
}

/** {@link readStart} without an async round trip (a file of a few bytes). */
export function readStartSync(dir: string): number {
  try {
    const n = Number(Deno.readTextFileSync(`${dir}/start`).trim());
    return Number.isFinite(n) && n >= 0 ? n : 0;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return 0;
    throw e;
  }
}

/** The logical start offset kept in `<dir>/start` (records below are trimmed). */
export async function readStart(dir: string): Promise<number> {
  try {
    const n = Number((await Deno.readTextFile(`${dir}/start`)).trim());
    return Number.isFinite(n) && n >= 0 ? n : 0;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return 0;
    throw e;
  }
}
