/**
 * A look at the end of a partition's last segment without its lock: the
 * valid frames there, and the high-water mark (for the fs backend's
 * `bounds`, through `PartitionWriter.peekEnd`).
 *
 * @module
 */
import { scanValid } from "./_segment_scan.ts";
import { readHighWaterSync } from "./_recovery.ts";
import { readAt, readAtSync } from "./_file_io.ts";

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
}

/** Bytes up to which {@link peekScan} reads synchronously (metadata-sized reads: no round trip to the thread pool). */
const PEEK_SYNC_BYTES = 256 * 1024;

/** Scans a segment from `pos` (at offset `offset`) to its size, reading only. */
export async function peekScan(
  path: string,
  pos: number,
  offset: number,
  st: Deno.FileInfo,
  hasHighWater: boolean,
): Promise<Peeked> {
  const len = Math.max(0, st.size - pos);
  const dir = path.slice(0, path.lastIndexOf("/"));
  let buf: Uint8Array, got: number;
  if (pos === 0 && len <= PEEK_SYNC_BYTES) {
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
  };
}
