/**
 * The store's summary (`<root>/summary`): what a process last knew of each
 * partition folder (its listing and the end of its last segment) and of each
 * topic's settings document, so that the views' first pass over thousands of
 * topics (`mq ui`, `mq top`, `mq topics`) takes two stats per partition and
 * one per topic instead of a listing, two reads and a read.
 *
 * It is a cache, never the source of truth: a row is used only when the files
 * it describes still have the inode, size and modification time it recorded,
 * and that time is more than {@link RACY_MS} older than what the row knew
 * (a change in the same clock tick would keep it); anything else, a missing,
 * torn or foreign file included, is read from the real files. It is written
 * whole (a temporary file, then a rename, no sync: a torn one after a power
 * loss is only ignored) by a process that read it, or that wrote to many
 * partitions, when it closes.
 *
 * @module
 */
import type { Versioned } from "../../core/adapter.ts";
import type { PartitionScan } from "./_partition_scan.ts";
import type { Peeked } from "./_segment_peek.ts";
import { readStartSync, scanPartitionSync, segmentName } from "./_paths.ts";

/** How long after a file's modification its time is trusted to show the next one, ms. */
export const RACY_MS = 1000;
/** How long one look at the settings folder stands for all its documents, ms. */
const FOLDER_MS = 100;
const HEAD = "mq-summary 1\n";

/**
 * A partition's row: the folder's inode and time, when it was listed, its
 * segments, kept start and whether it has a high-water mark; the last
 * segment's inode, size and time, when it was read, and what was read.
 */
type PartRow = [
  dirIno: number,
  dirMtime: number,
  listedAt: number,
  bases: number[],
  start: number,
  hasHighWater: 0 | 1,
  segIno: number,
  segSize: number,
  segMtime: number,
  peekedAt: number,
  end: number,
  scanNext: number,
  nextOffset: number,
];
/** A settings document's row: the file's inode, size and time, when it was read, its version and text. */
type DocRow = [
  ino: number,
  size: number,
  mtime: number,
  readAt: number,
  version: string,
  text: string,
];

/** A settings document as read, before its file is looked at again (at {@link StoreSummary.save}). */
interface DocNote {
  at: number;
  version: string;
  /** Its text, or its bytes (decoded on save: noting costs no decoding). */
  text: string | Uint8Array;
}

const dec = new TextDecoder();
const enc = new TextEncoder();

const num = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x);

function isPartRow(r: unknown): r is PartRow {
  if (!Array.isArray(r) || r.length !== 13 || !Array.isArray(r[3])) return false;
  for (let i = 0; i < 13; i++) if (i !== 3 && !num(r[i])) return false;
  return (r[3] as unknown[]).length > 0 && (r[3] as unknown[]).every(num);
}

function isDocRow(r: unknown): r is DocRow {
  return Array.isArray(r) && r.length === 6 && r.slice(0, 4).every(num) &&
    typeof r[4] === "string" && typeof r[5] === "string";
}

/** A settings file read now, as a note (undefined: missing or damaged). */
function readDoc(file: string): DocNote | undefined {
  const at = Date.now() - 1;
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(file);
  } catch {
    return undefined;
  }
  const nl = bytes.indexOf(10);
  if (nl < 0) return undefined;
  return { at, version: dec.decode(bytes.subarray(0, nl)), text: bytes.subarray(nl + 1) };
}

/** True when `st` is the file a row recorded, unchanged, and old enough to trust its time. */
function unchanged(st: Deno.FileInfo, ino: number, mtime: number, at: number): boolean {
  const t = st.mtime?.getTime();
  return st.ino === ino && t === mtime && t < at - RACY_MS;
}

function statOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.statSync(path);
  } catch {
    return null;
  }
}

/** The store's summary, as one process loads, uses and writes it. */
export class StoreSummary {
  readonly path: string;
  #parts = new Map<string, PartRow>();
  #docs = new Map<string, DocRow>();
  #notes = new Map<string, DocNote>();
  #loaded = false;
  /**
   * The settings folder's inode and time as the file has them (every
   * change of a document, a rename or a removal, moves the time) and, once
   * looked at, the time it still has (checked again after {@link FOLDER_MS}).
   */
  #folder: { ino: number; mtime: number; checkedAt: number; now: number | undefined } | undefined;

  /** The summary of the store at `root` (nothing read yet: see {@link load}). */
  constructor(root: string) {
    this.path = `${root}/summary`;
  }

  /** Whether {@link load} ran. */
  get loaded(): boolean {
    return this.#loaded;
  }

  /** Reads the file once; a missing, torn or foreign one counts as empty. */
  load(): void {
    if (this.#loaded) return;
    this.#loaded = true;
    let text: string;
    try {
      // Never a prompt for it (a process allowed to read only the folders it uses).
      if (Deno.permissions.querySync({ name: "read", path: this.path }).state !== "granted") return;
      text = Deno.readTextFileSync(this.path);
    } catch {
      return;
    }
    if (!text.startsWith(HEAD)) return;
    let body: { parts?: Record<string, unknown>; docs?: Record<string, unknown> };
    try {
      body = JSON.parse(text.slice(HEAD.length));
    } catch {
      return; // torn
    }
    if (typeof body !== "object" || body === null) return;
    for (const [k, r] of Object.entries(body.parts ?? {})) if (isPartRow(r)) this.#parts.set(k, r);
    for (const [k, r] of Object.entries(body.docs ?? {})) if (isDocRow(r)) this.#docs.set(k, r);
    const f = (body as { folder?: unknown }).folder;
    if (Array.isArray(f) && num(f[0]) && num(f[1])) {
      this.#folder = { ino: f[0], mtime: f[1], checkedAt: 0, now: undefined };
    }
  }

  /**
   * The listing and the end of the partition `key` (`topic/partition`, in
   * folder `dir`) as the summary has them, when its folder and last segment
   * did not change since (a stat of each); once per partition.
   */
  takePartition(
    key: string,
    dir: string,
  ): { scan: PartitionScan; peek: Peeked; bounds: { start: number; end: number } } | undefined {
    const r = this.#parts.get(key);
    if (!r) return undefined;
    this.#parts.delete(key);
    const [dirIno, dirMtime, listedAt, bases, start, hwm, segIno, segSize, segMtime, peekedAt] = r;
    const st = statOrNull(dir);
    if (!st || !unchanged(st, dirIno, dirMtime, listedAt)) return undefined;
    const path = `${dir}/${segmentName(bases[bases.length - 1])}`;
    const seg = statOrNull(path);
    if (!seg || seg.size !== segSize || !unchanged(seg, segIno, segMtime, peekedAt)) {
      return undefined;
    }
    const end = r[12];
    return {
      bounds: { start: Math.min(end, Math.max(bases[0], start)), end },
      scan: {
        ino: dirIno,
        mtime: dirMtime,
        listedAt,
        bases: bases.slice(),
        start,
        hasHighWater: hwm === 1,
        checkedAt: Date.now(),
      },
      peek: {
        path,
        ino: segIno,
        scannedTo: segSize,
        end: r[10],
        scanNext: r[11],
        nextOffset: r[12],
        at: peekedAt,
      },
    };
  }

  /**
   * Records a partition's listing and peek as this process knows them (at
   * {@link save} time): the folder and segment are looked at now, and
   * nothing is kept unless the segment is still the size that was read.
   */
  notePartition(key: string, dir: string, scan: PartitionScan, peek: Peeked): boolean {
    if (scan.bases.length === 0) return false;
    const path = `${dir}/${segmentName(scan.bases[scan.bases.length - 1])}`;
    if (peek.path !== path || peek.at === undefined) return false;
    const st = statOrNull(dir), seg = statOrNull(path);
    if (!st || !seg || !num(st.ino) || !num(seg.ino)) return false;
    if (seg.ino !== peek.ino || seg.size !== peek.scannedTo) return false;
    const dm = st.mtime?.getTime(), sm = seg.mtime?.getTime();
    if (!num(dm) || !num(sm)) return false;
    this.#parts.set(key, [
      st.ino,
      dm,
      scan.listedAt,
      scan.bases,
      scan.start,
      scan.hasHighWater ? 1 : 0,
      seg.ino,
      seg.size,
      sm,
      peek.at,
      peek.end,
      peek.scanNext,
      peek.nextOffset,
    ]);
    return true;
  }

  /**
   * A topic's settings document from the summary, when its file did not
   * change since (a stat); once per topic.
   */
  takeDoc(name: string, file: string): Versioned | undefined {
    const r = this.#docs.get(name);
    if (!r) return undefined;
    this.#docs.delete(name);
    // The folder not changed since a moment before the document was read: no
    // document in it changed either (one stat for them all); else its own stat.
    const mtime = this.#folderTime(file.slice(0, file.lastIndexOf("/")));
    if (mtime === undefined || !(mtime < r[3] - RACY_MS)) {
      const st = statOrNull(file);
      if (!st || st.size !== r[1] || !unchanged(st, r[0], r[2], r[3])) return undefined;
    }
    this.#notes.set(name, { at: r[3], version: r[4], text: r[5] });
    return { version: r[4], value: enc.encode(r[5]) };
  }

  /** The settings folder's time, when it is the one the file recorded (undefined: changed, or none recorded). */
  #folderTime(dir: string): number | undefined {
    const f = this.#folder;
    if (!f) return undefined;
    const now = Date.now();
    if (now - f.checkedAt > FOLDER_MS) {
      const st = statOrNull(dir);
      f.checkedAt = now;
      f.now = st && st.ino === f.ino && st.mtime?.getTime() === f.mtime ? f.mtime : undefined;
    }
    return f.now;
  }

  /** Notes a topic's settings document as read at `at` (its file is looked at on {@link save}). */
  noteDoc(name: string, at: number, doc: Versioned | undefined): void {
    this.#docs.delete(name);
    if (!doc || doc.version === "damaged") {
      this.#notes.delete(name);
      return;
    }
    this.#notes.set(name, { at, version: doc.version, text: doc.value });
  }

  /**
   * A state document: a topic's settings from the summary where the file
   * did not change (else `read`, noted for the summary); any other, `read`.
   */
  getState(key: string[], file: string, read: () => Versioned | undefined): Versioned | undefined {
    if (key.length !== 2 || key[0] !== "topics") return read();
    const row = this.#loaded ? this.takeDoc(key[1], file) : undefined;
    if (row) return row;
    const at = Date.now() - 1, doc = read();
    this.noteDoc(key[1], at, doc);
    return doc;
  }

  /** After a compare-and-set of `key`: a topic's settings, as written, are noted (`read`). */
  written(key: string[], read: () => Versioned | undefined): void {
    if (key.length !== 2 || key[0] !== "topics") return;
    const at = Date.now() - 1;
    try {
      this.noteDoc(key[1], at, read());
    } catch { /* removed meanwhile: nothing to note */ }
  }

  /** Forgets the rows of a topic (removed). */
  forgetTopic(topic: string): void {
    this.#docs.delete(topic);
    this.#notes.delete(topic);
    for (const k of this.#parts.keys()) if (k.startsWith(topic + "/")) this.#parts.delete(k);
  }

  /**
   * Writes the summary: the rows loaded and not used, and what this process
   * noted (each document's file looked at now). `docFile` names a topic's
   * settings file. Best effort: a store that cannot be written keeps none.
   */
  save(docFile: (name: string) => string): void {
    const docs: Record<string, DocRow> = Object.fromEntries(this.#docs);
    for (const [name, note] of this.#notes) {
      const file = docFile(name);
      const before = Date.now() - 1;
      let n: DocNote | undefined = note, st = statOrNull(file);
      let mtime = st?.mtime?.getTime();
      if (!st || !num(st.ino) || !num(mtime)) continue;
      if (mtime < n.at - RACY_MS) {
        // Not changed since it was read: what it holds is known as of now
        // (so that one look at the folder stands for it next time).
        n = { ...n, at: before };
      } else if (mtime < Date.now() - RACY_MS) {
        // Noted when it was written (its time is as recent as the note):
        // read again now that its time is old enough, and looked at after.
        n = readDoc(file);
        st = statOrNull(file);
        mtime = st?.mtime?.getTime();
        if (!n || !st || !num(st.ino) || !num(mtime)) continue;
      }
      const text = typeof n.text === "string" ? n.text : dec.decode(n.text);
      docs[name] = [st.ino, st.size, mtime, n.at, n.version, text];
    }
    // The folder looked at after every document was: a change since shows.
    const any = this.#notes.keys().next();
    const dir = any.done ? undefined : statOrNull(docFile(any.value).replace(/\/[^/]*$/, ""));
    const folder = dir && num(dir.ino) && num(dir.mtime?.getTime())
      ? [dir.ino, dir.mtime!.getTime()]
      : undefined;
    const parts = Object.fromEntries(this.#parts);
    const text = HEAD + JSON.stringify({ parts, docs, folder });
    const tmp = `${this.path}.${Deno.pid}.tmp`;
    try {
      Deno.writeTextFileSync(tmp, text);
      Deno.renameSync(tmp, this.path);
    } catch {
      try {
        Deno.removeSync(tmp);
      } catch { /* not made */ }
      return;
    }
    removeStaleTemps(this.path);
  }
}

/**
 * A writer's temporary summary is renamed within milliseconds; one older
 * than this was left by a process that died between the write and the
 * rename.
 */
export const STALE_TEMP_MS = 60_000;

/** Removes the `<summary>.<pid>.tmp` files next to `path` older than {@link STALE_TEMP_MS}. */
function removeStaleTemps(path: string): void {
  const slash = path.lastIndexOf("/");
  const dir = path.slice(0, slash), base = path.slice(slash + 1);
  const isTemp = (name: string) =>
    name.startsWith(`${base}.`) && /^\d+$/.test(name.slice(base.length + 1, -".tmp".length)) &&
    name.endsWith(".tmp");
  try {
    for (const e of Deno.readDirSync(dir)) {
      if (!e.isFile || !isTemp(e.name)) continue;
      const st = statOrNull(`${dir}/${e.name}`);
      const t = st?.mtime?.getTime();
      if (t !== undefined && t < Date.now() - STALE_TEMP_MS) {
        try {
          Deno.removeSync(`${dir}/${e.name}`);
        } catch { /* removed meanwhile */ }
      }
    }
  } catch { /* best effort: a temporary file only takes room */ }
}

/** A partition's writer as {@link saveSummary} reads it. */
interface SummaryWriter {
  readonly dir: string;
  readonly peekState: Peeked | undefined;
  readonly tailPeek: Peeked | undefined;
}

/**
 * What the fs adapter does on close: notes what it knows of each partition
 * it peeked at or wrote to (a listing of the folder where it kept none) and
 * writes the summary, when it read the summary (a view) or wrote to at
 * least {@link SAVE_AFTER} partitions; else leaves the file alone (a
 * command about one topic does not rewrite the summary of 10,000).
 */
export function saveSummary(
  summary: StoreSummary,
  root: string,
  writers: Map<string, SummaryWriter>,
  scans: { kept(dir: string): PartitionScan | undefined },
  state: { fileOf(key: string[]): string },
): void {
  let wrote = 0;
  for (const w of writers.values()) if (w.tailPeek) wrote++;
  if (!summary.loaded && wrote < SAVE_AFTER) return;
  try {
    if (!Deno.statSync(root).isDirectory) return;
    // Never a prompt for it: a process that may not write here keeps none.
    if (Deno.permissions.querySync({ name: "write", path: root }).state !== "granted") return;
  } catch {
    return; // never written: a reading command leaves no folder behind
  }
  summary.load();
  for (const [key, w] of writers) {
    let scan = scans.kept(w.dir);
    const tail = w.tailPeek;
    if (!scan || tail) {
      const listedAt = Date.now() - 1;
      const l = scanPartitionSync(w.dir);
      const start = l.hasStart ? readStartSync(w.dir) : 0;
      scan = {
        ino: null,
        mtime: undefined,
        listedAt,
        bases: l.bases,
        start,
        hasHighWater: l.hasHighWater,
        checkedAt: 0,
      };
    }
    for (const peek of [w.peekState, tail]) {
      if (peek && summary.notePartition(key, w.dir, scan, peek)) break;
    }
  }
  summary.save((name) => state.fileOf(["topics", name]));
}

/** Partitions a process writes to before it writes the summary on close (see {@link saveSummary}). */
export const SAVE_AFTER = 64;
