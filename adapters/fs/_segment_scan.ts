/**
 * Scanning segment bytes: whole frames, the end of the valid data, and
 * resynchronisation past corrupt bytes.
 */
import {
  checkFrame,
  FRAME_HEAD,
  FRAME_PREFIX,
  frameBase,
  frameCount,
  RECORD_HEAD,
} from "../_frame_codec.ts";

/** Where the valid frames of a region end. */
export interface ScanResult {
  /** Position after the last valid frame. */
  end: number;
  /** Offset after the last valid frame (or `expected` when none). */
  nextOffset: number;
  /** True when corrupt bytes were skipped before valid frames. */
  skipped: boolean;
}

/**
 * Scans `buf[pos, len)` for valid frames with offsets from `expected` on,
 * skipping corrupt stretches that valid frames follow.
 */
export function scanValid(buf: Uint8Array, pos: number, len: number, expected: number): ScanResult {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let end = pos, next = expected, skipped = false;
  while (pos < len) {
    const total = checkFrame(buf, dv, pos, len);
    if (total > 0 && frameBase(dv, pos) + frameCount(dv, pos) > next) {
      next = frameBase(dv, pos) + frameCount(dv, pos);
      pos += total;
      end = pos;
      continue;
    }
    const found = resync(buf, dv, pos + 1, len, next);
    if (found < 0) break;
    skipped = true;
    pos = found;
  }
  return { end, nextOffset: next, skipped };
}

/**
 * The first position at or after `from` where a valid frame holding offsets
 * of at least `minOffset` starts, or -1.
 */
export function resync(
  buf: Uint8Array,
  dv: DataView,
  from: number,
  len: number,
  minOffset: number,
): number {
  const limit = minOffset + 0x100000000;
  for (let p = from; p + FRAME_PREFIX + FRAME_HEAD + RECORD_HEAD <= len; p++) {
    const base = frameBase(dv, p);
    const count = frameCount(dv, p);
    if (base > limit || base + count <= minOffset || count === 0) continue;
    // Cheap checks before the checksum: the frame fits and so does its first record.
    const bodyLen = dv.getUint32(p, true);
    if (bodyLen > len - p - FRAME_PREFIX || count > bodyLen / RECORD_HEAD) continue;
    const first = dv.getUint32(p + FRAME_PREFIX + FRAME_HEAD, true);
    if (first < RECORD_HEAD - 4 || first > bodyLen - FRAME_HEAD - 4) continue;
    if (checkFrame(buf, dv, p, len) > 0) return p;
  }
  return -1;
}
