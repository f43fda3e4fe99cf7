/**
 * `mq doctor` for the fs backend: every frame's checksum, offsets dense and
 * increasing, the sparse index against the segments, damaged tails, and
 * leftovers (`*.tmp`, logs of topics whose settings are gone). A repair
 * loses no acknowledged message: corrupt bytes move to the segment's
 * quarantine file (`_recovery.ts`), indexes are rebuilt, leftovers removed.
 */
import type { StorageCheckOptions, StorageFinding } from "../../core/adapter.ts";
import type { StoredRecord } from "../../core/record.ts";
import { checkFrame, decodeFrame, frameBase, frameCount } from "../_frame_codec.ts";
import { INDEX_INTERVAL, listSegments, partitionDir, readIndex, segmentName } from "./_paths.ts";
import type { PartitionWriter } from "./partition_writer.ts";
import { isKnownLost, quarantine, readHighWater, readLost, recordLost } from "./_recovery.ts";
import { resync } from "./_segment_scan.ts";

/** A frame found in a segment. */
interface Frame {
  pos: number;
  total: number;
  base: number;
  count: number;
}

/** What a scan of one segment found. */
interface SegmentScan {
  frames: Frame[];
  /** Byte ranges that hold no valid frame. */
  corrupt: { from: number; to: number; lostFrom: number; lostTo: number }[];
  /** The offset after the last valid frame. */
  next: number;
}

/** Scans a whole segment; `expected` is the offset its first record should have. */
function scanSegment(buf: Uint8Array, expected: number): SegmentScan {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const frames: Frame[] = [];
  const corrupt: SegmentScan["corrupt"] = [];
  let pos = 0, next = expected;
  const scratch: StoredRecord[] = [];
  while (pos < buf.length) {
    const total = checkFrame(buf, dv, pos, buf.length);
    if (total > 0) {
      const base = frameBase(dv, pos), count = frameCount(dv, pos);
      // A frame whose records do not add up despite its checksum is corrupt too.
      if (decodeFrame(buf, dv, pos, total, base, scratch)) {
        frames.push({ pos, total, base, count });
        next = Math.max(next, base + count);
        pos += total;
        scratch.length = 0;
        continue;
      }
      scratch.length = 0;
    }
    const found = resync(buf, dv, pos + 1, buf.length, next);
    const to = found < 0 ? buf.length : found;
    const lostTo = found < 0 ? next : Math.max(next, frameBase(dv, found));
    corrupt.push({ from: pos, to, lostFrom: next, lostTo });
    pos = to;
  }
  return { frames, corrupt, next };
}

/** Index entries (offset relative to the base, byte position) for `frames`, as the writer makes them. */
function indexFor(base: number, frames: Frame[]): Uint8Array {
  const entries: number[] = [];
  let indexedAt = -Infinity;
  for (const f of frames) {
    if (f.pos === 0 || f.pos - indexedAt >= INDEX_INTERVAL) {
      entries.push(f.base - base, f.pos);
      indexedAt = f.pos;
    }
  }
  const out = new Uint8Array(entries.length * 4);
  const dv = new DataView(out.buffer);
  entries.forEach((v, i) => dv.setUint32(i * 4, v, true));
  return out;
}

/** True when every entry of `index` points at a frame holding that offset. */
function indexProblem(index: Uint32Array, base: number, frames: Frame[]): string | undefined {
  const at = new Map(frames.map((f) => [f.pos, f]));
  for (let i = 0; i + 1 < index.length; i += 2) {
    const f = at.get(index[i + 1]);
    if (!f || f.base > base + index[i] || f.base + f.count <= base + index[i]) {
      return `entry ${i / 2} points at byte ${index[i + 1]}, where no frame holds offset ${
        base + index[i]
      }`;
    }
  }
  return undefined;
}

/**
 * Checks (and with `repair`, fixes) the fs store under `root`. `writerOf`
 * gives the partition's writer, whose lock a repair holds.
 */
export async function checkFsStore(
  root: string,
  options: StorageCheckOptions,
  writerOf: (topic: string, partition: number) => PartitionWriter,
): Promise<StorageFinding[]> {
  const findings: StorageFinding[] = [];
  for (const { name, partitions } of options.topics) {
    for (let p = 0; p < partitions; p++) {
      const dir = partitionDir(root, name, p);
      if ((await listSegments(dir)).length === 0) continue;
      const seen: StorageFinding[] = [];
      await checkPartition(dir, name, p, false, seen);
      if (options.repair && seen.length > 0) {
        // Under the partition's lock; the writer's own recovery (a damaged
        // tail cut off) runs first, what is left is repaired here.
        const after: StorageFinding[] = [];
        await writerOf(name, p).exclusive(() => checkPartition(dir, name, p, true, after));
        for (const f of seen) {
          const same = after.find((a) => a.problem === f.problem);
          f.repaired = same
            ? same.repaired
            : "cut off by the writer's recovery (acknowledged bytes kept in the .corrupt file)";
        }
      }
      findings.push(...seen);
    }
  }
  await checkLeftovers(root, options, findings);
  return findings;
}

async function checkPartition(
  dir: string,
  topic: string,
  partition: number,
  repair: boolean,
  findings: StorageFinding[],
): Promise<void> {
  const bases = await listSegments(dir);
  const hwm = await readHighWater(dir);
  const lost = await readLost(dir);
  let expected = bases[0];
  for (let i = 0; i < bases.length; i++) {
    const base = bases[i];
    const path = `${dir}/${segmentName(base)}`;
    const last = i === bases.length - 1;
    const found = (problem: string, repaired?: string) =>
      findings.push({
        topic,
        partition,
        location: path,
        problem,
        ...(repair && repaired ? { repaired } : {}),
      });
    let buf: Uint8Array;
    try {
      buf = await Deno.readFile(path);
    } catch {
      continue; // removed meanwhile (a trim)
    }
    const scan = scanSegment(buf, Math.max(expected, base));
    if (scan.frames.length > 0 && scan.frames[0].base < base) {
      found(
        `its first frame starts at offset ${scan.frames[0].base}, before the segment's ${base}`,
      );
    }
    let prev = Math.max(expected, base);
    const explained = [...lost, ...scan.corrupt.map((c) => ({ from: c.lostFrom, to: c.lostTo }))];
    for (const f of scan.frames) {
      if (f.base > prev && !isKnownLost(explained, prev, f.base)) {
        found(
          `offsets ${prev}-${f.base - 1} are missing before byte ${f.pos}` +
            (f.base <= hwm ? " (acknowledged once: lost to damage)" : ""),
        );
      } else if (f.base < prev) {
        found(`the frame at byte ${f.pos} repeats offsets ${f.base}-${prev - 1}`);
      }
      prev = Math.max(prev, f.base + f.count);
    }
    for (const c of scan.corrupt) {
      const tail = last && c.to === buf.length && c.lostTo === c.lostFrom;
      const lost = c.lostTo > c.lostFrom
        ? ` (offsets ${c.lostFrom}-${c.lostTo - 1} unreadable)`
        : "";
      const what = tail && hwm <= scan.next
        ? `a torn tail at bytes ${c.from}-${c.to} (a write that never completed)`
        : `bytes ${c.from}-${c.to} are corrupt${lost}`;
      found(what, `moved bytes ${c.from}-${c.to} to ${path}.corrupt`);
    }
    if (last && hwm > scan.next && !isKnownLost(lost, scan.next, hwm)) {
      if (repair) await recordLost(dir, scan.next, hwm);
      found(
        `offsets ${scan.next}-${
          hwm - 1
        } were acknowledged but no frame holds them (lost to damage)`,
        `offsets go on from ${hwm}; they are not handed out again`,
      );
    }
    const idxPath = path.replace(/\.log$/, ".idx");
    let index = await readIndex(idxPath);
    let rebuild = false;
    if (scan.corrupt.length > 0 && repair) {
      // Keep the valid frames in place of the segment, the rest in quarantine.
      for (const c of scan.corrupt) {
        await quarantine(path, c.from, buf.subarray(c.from, c.to));
        await recordLost(dir, c.lostFrom, c.lostTo);
      }
      const kept = new Uint8Array(scan.frames.reduce((n, f) => n + f.total, 0));
      let at = 0;
      const moved: Frame[] = [];
      for (const f of scan.frames) {
        kept.set(buf.subarray(f.pos, f.pos + f.total), at);
        moved.push({ ...f, pos: at });
        at += f.total;
      }
      const tmp = `${path}.repair.tmp`;
      await Deno.writeFile(tmp, kept);
      await Deno.rename(tmp, path);
      scan.frames = moved;
      rebuild = true;
      index = new Uint32Array(0);
    } else {
      const problem = indexProblem(index, base, scan.frames);
      if (problem) {
        found(`its index ${idxPath}: ${problem}`, `rebuilt ${idxPath}`);
        rebuild = true;
      }
    }
    if (rebuild && repair) {
      const tmp = `${idxPath}.repair.tmp`;
      await Deno.writeFile(tmp, indexFor(base, scan.frames));
      await Deno.rename(tmp, idxPath);
    }
    expected = Math.max(prev, scan.next);
  }
}

/** `*.tmp` files anywhere in the store, and logs of topics whose settings are gone. */
async function checkLeftovers(
  root: string,
  options: StorageCheckOptions,
  findings: StorageFinding[],
): Promise<void> {
  const known = new Set(options.topics.map((t) => t.name));
  const walk = async (dir: string): Promise<void> => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(dir));
    } catch {
      return;
    }
    for (const e of entries) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(path);
      else if (e.name.endsWith(".tmp")) {
        let removed = false;
        if (options.repair) removed = await Deno.remove(path).then(() => true, () => false);
        findings.push({
          location: path,
          problem: "a temporary file a failed or crashed write left behind",
          ...(removed ? { repaired: "removed it" } : {}),
        });
      }
    }
  };
  await walk(`${root}/state`);
  await walk(`${root}/log`);
  if (!options.wholeStore) return;
  for (const [folder, what] of [["log", "log"], ["state/groups", "group state"]]) {
    await leftoverFolders(root, folder, what, known, options.repair, findings);
  }
}

async function leftoverFolders(
  root: string,
  folder: string,
  what: string,
  known: Set<string>,
  repair: boolean,
  findings: StorageFinding[],
): Promise<void> {
  let topics: Deno.DirEntry[] = [];
  try {
    topics = await Array.fromAsync(Deno.readDir(`${root}/${folder}`));
  } catch { /* none yet */ }
  for (const t of topics) {
    if (!t.isDirectory || known.has(t.name)) continue;
    const path = `${root}/${folder}/${t.name}`;
    let removed = false;
    if (repair) {
      removed = await Deno.remove(path, { recursive: true }).then(() => true, () => false);
    }
    findings.push({
      topic: t.name,
      location: path,
      problem: `the ${what} of topic "${t.name}", which does not exist (removed)`,
      ...(removed ? { repaired: "removed it" } : {}),
    });
  }
}
