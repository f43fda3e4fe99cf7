/**
 * A look at the end of a partition's last segment without its lock: the
 * valid frames there, and the high-water mark (for the fs backend's
 * `bounds`, through `PartitionWriter.peekEnd`).
 *
 * @module
 */
import { scanValid } from "./_segment_scan.ts";
import { readHighWaterSync } from "./_recovery.ts";
import { readAt, readAtSync, statOrNullSync } from "./_file_io.ts";
import { INDEX_INTERVAL, readIndexSync } from "./_paths.ts";

/** What {@link PartitionWriter.peekEnd} saw of the last segment. */
export interface Peeked {
  path: string;
  ino: number | null;
  /** The file's size when it was scanned. */
  scannedTo: number;
  /** Position after the last valid frame. */
  end: number;
  /** The offset after the last valid frame. */
  scanNext: number;
  /** The partition's end: `scanNext`, or the high-water mark where that is higher. */
  nextOffset: number;
  /** When the scan began (the clock read before the file was read; for the store's summary). */
  at?: number;
}

/** Bytes up to which {@link peekScan} reads synchronously (metadata-sized reads: no round trip to the thread pool). */
const PEEK_SYNC_BYTES = 256 * 1024;

/**
 * Scans the segment at `path` (first offset `base`) from its last index
 * entry to its end: a stat of the path, then one read (the views' first
 * pass over thousands of partitions). Null when the segment is gone
 * (removed meanwhile by a trim). Not an open and a stat of the open file:
 * without `--allow-all`, Deno resolves every folder of the path for each
 * open and each stat of an open file (a `readlink` apiece), and for no stat
 * or listing by path.
 */
export async function peekSegment(
  path: string,
  base: number,
  hasHighWater: boolean,
): Promise<Peeked | null> {
  const st = statOrNullSync(path);
  if (!st) return null;
  // A segment smaller than the index's interval is scanned from its
  // start, which is where its one index entry points.
  const index = st.size <= INDEX_INTERVAL
    ? new Uint32Array(0)
    : readIndexSync(path.replace(/\.log$/, ".idx"));
  let pos = 0, offset = base;
  for (let i = index.length - 2; i >= 0; i -= 2) {
    if (index[i + 1] < st.size) {
      pos = index[i + 1];
      offset = base + index[i];
      break;
    }
  }
  return await peekScan(path, pos, offset, st, hasHighWater);
}

/** Scans a segment from `pos` (at offset `offset`) to its size, reading only. */
export async function peekScan(
  path: string,
  pos: number,
  offset: number,
  st: Deno.FileInfo,
  hasHighWater: boolean,
): Promise<Peeked> {
  const at = Date.now() - 1;
  const len = Math.max(0, st.size - pos);
  const dir = path.slice(0, path.lastIndexOf("/"));
  let buf: Uint8Array, got: number;
  if (len === 0) {
    // Nothing past `pos` (an empty segment, as a purge leaves): its size
    // tells enough, no open (bytes written since are read by the next peek).
    buf = new Uint8Array(0);
    got = 0;
  } else if (pos === 0 && len <= PEEK_SYNC_BYTES) {
    // A small segment read whole, in one call (bytes written since the
    // stat are read and scanned too).
    buf = Deno.readFileSync(path);
    got = buf.length;
  } else if (len <= PEEK_SYNC_BYTES) {
    const file = Deno.openSync(path, { read: true });
    try {
      ({ buf, got } = readAtSync(file, pos, len));
    } finally {
      file.close();
    }
  } else {
    const file = await Deno.open(path, { read: true });
    try {
      ({ buf, got } = await readAt(file, pos, len));
    } finally {
      file.close();
    }
  }
  const scan = scanValid(buf, 0, got, offset);
  // Offsets acknowledged once are counted even where no frame holds them now.
  // (Not read where the folder's listing shows none: no failed open.)
  const hwm = hasHighWater ? readHighWaterSync(dir) : 0;
  return {
    path,
    ino: st.ino,
    scannedTo: pos + got,
    end: pos + scan.end,
    scanNext: scan.nextOffset,
    nextOffset: Math.max(scan.nextOffset, hwm),
    at,
  };
}
