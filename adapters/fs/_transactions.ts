/**
 * Transactions of the fs backend: a commit record per transaction, as a
 * journal file `tx/<id>.commit`, so that appends to several partitions and
 * state documents take effect together.
 *
 * A commit takes the locks of every partition it writes (in name order) and
 * of every state document it replaces (in key order), checks the documents'
 * versions, encodes the frames at the partitions' ends, and writes the
 * journal (the frames, the documents and where they go) to a temporary file,
 * synced, then renamed to `<id>.commit`: that rename is the commit point.
 * Then it appends the frames and replaces the documents, and removes the
 * journal before it lets go of the locks. Nothing of a transaction reaches a
 * partition before its commit point, so readers and groups never see records
 * of an open or aborted one.
 *
 * After a kill -9, a temporary journal (never committed) is dropped: the
 * transaction aborted. A `.commit` journal still there is rolled forward by
 * whoever comes next: every append to a partition and every compare-and-set
 * of a document first looks (under its lock) for a journal that touches it,
 * and if one is there its writer is gone (a live writer holds that lock), so
 * the journal is applied, idempotently (frames already in the partition are
 * not written again, a document at the journal's version is left), and
 * removed. Opening the backend rolls forward whatever is left, too.
 *
 * One transaction whose records go to one partition in one frame (up to
 * ~256 KiB) and that replaces no document needs no journal: a frame is
 * written with one write and checked by its CRC as a whole.
 *
 * @module
 */
import type {
  CorruptionReport,
  TransactionCommit,
  TransactionCommitted,
} from "../../core/adapter.ts";
import { MqError } from "../../core/errors.ts";
import {
  ByteSink,
  checkFrame,
  encodeFrames,
  FRAME_HEAD,
  FRAME_TARGET,
  frameBase,
  RECORD_HEAD,
} from "../_frame_codec.ts";
import { pickRecords, type RecordBatch } from "../../core/record.ts";
import type { PartitionWriter, SyncPolicy } from "./partition_writer.ts";
import { syncDir } from "./partition_writer.ts";
import { nextVersion, type StateFiles } from "./_state_files.ts";

import { MAX_FS_TRANSACTION_BYTES, TX_PENDING } from "./_journals.ts";

export { MAX_FS_TRANSACTION_BYTES, TX_PENDING };

/**
 * Faults for tests: a commit throws (as a crash would leave it: the locks let
 * go, the journal kept) right after its commit point, or after writing its
 * first partition.
 */
export const TX_FAULTS: { crashAt?: "commit-point" | "first-part" } = {};

interface JournalHead {
  /** Per partition write, in order: `topic/partition`, first offset, records, frame bytes. */
  parts: { p: string; first: number; count: number; bytes: number }[];
  /** Per document: its key, the version it gets, value bytes. */
  states: { key: string[]; version: string; bytes: number; created: boolean }[];
}

interface Journal {
  name: string;
  head: JournalHead;
  body: Uint8Array;
  /** Where the body's blobs start, in the order of `parts` then `states`. */
  offsets: number[];
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * Commits and recovers the transactions of one fs backend folder (made by
 * `FsAdapter`, which wires its partition writers and state files to it).
 *
 * @example
 * ```ts ignore
 * const tx = new FsTransactions(root, "batch", (t, p) => writerOf(t, p), () => stateFiles);
 * await tx.recover(); // finish what a crashed writer committed
 * const r = await tx.commit({ writes, states }); // first offsets, or "conflict"
 * ```
 */
export class FsTransactions {
  #dir: string;
  #sync: SyncPolicy;
  #writer: (topic: string, partition: number) => PartitionWriter;
  #state: () => StateFiles;
  #onCorrupt: ((report: CorruptionReport) => void) | undefined;
  /** Heads of journals seen, by file name (a journal never changes). */
  #heads = new Map<string, JournalHead>();
  #seq = 0;

  constructor(
    root: string,
    sync: SyncPolicy,
    writer: (topic: string, partition: number) => PartitionWriter,
    state: () => StateFiles,
    onCorrupt?: (report: CorruptionReport) => void,
  ) {
    this.#dir = `${root}/tx`;
    this.#sync = sync;
    this.#writer = writer;
    this.#state = state;
    this.#onCorrupt = onCorrupt;
  }

  /** The committed journals there are now, with their heads. */
  async #pending(): Promise<{ name: string; head: JournalHead }[]> {
    const out: { name: string; head: JournalHead }[] = [];
    try {
      for await (const e of Deno.readDir(this.#dir)) {
        if (!e.isFile || !e.name.endsWith(".commit")) continue;
        let head = this.#heads.get(e.name);
        if (!head) {
          const j = await this.#read(e.name);
          if (!j) continue;
          head = j.head;
          if (this.#heads.size > 1024) this.#heads.clear();
          this.#heads.set(e.name, head);
        }
        out.push({ name: e.name, head });
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    return out;
  }

  /**
   * Guard of appends to partitions and compare-and-sets of documents (run
   * under their locks): throws {@link TX_PENDING} when a committed journal
   * touches one of them.
   */
  async guard(parts: string[], keys: string[][]): Promise<void> {
    const pending = await this.#pending();
    if (pending.length === 0) return;
    const ks = new Set(keys.map((k) => k.join("/")));
    for (const j of pending) {
      if (j.head.parts.some((x) => parts.includes(x.p))) throw TX_PENDING;
      if (j.head.states.some((x) => ks.has(x.key.join("/")))) throw TX_PENDING;
    }
  }

  /**
   * Rolls forward every committed journal whose writer is gone (it takes the
   * journal's locks, so it waits for a live writer, which removes its journal
   * before it lets go), and drops temporary journals older than a minute.
   */
  async recover(): Promise<void> {
    for (const { name, head } of await this.#pending()) {
      const parts = [...new Set(head.parts.map((x) => x.p))].sort();
      const keys = head.states.map((x) => x.key).sort(byKey);
      await this.#holding(parts, keys, async (ends) => {
        const j = await this.#read(name);
        if (!j) return; // done by its writer or by another recovery meanwhile
        await this.#apply(j, ends);
        await Deno.remove(`${this.#dir}/${name}`).catch(() => {});
        this.#heads.delete(name);
      });
    }
    try {
      const old = Date.now() - 60_000;
      for await (const e of Deno.readDir(this.#dir)) {
        if (!e.isFile || !e.name.endsWith(".tmp")) continue;
        const st = await Deno.stat(`${this.#dir}/${e.name}`).catch(() => undefined);
        if (st?.mtime && st.mtime.getTime() < old) {
          await Deno.remove(`${this.#dir}/${e.name}`).catch(() => {});
        }
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }

  /** Commits one transaction (see the module doc); `"conflict"` when a version changed. */
  async commit(commit: TransactionCommit): Promise<TransactionCommitted | "conflict"> {
    let bytes = 0;
    for (const w of commit.writes) {
      for (let i = 0; i < w.batch.count; i++) bytes += w.batch.ends[i] - w.batch.starts[i];
    }
    if (bytes > MAX_FS_TRANSACTION_BYTES) {
      throw new MqError(
        "TRANSACTION_TOO_LARGE",
        `the transaction holds ${bytes} bytes of messages; an fs transaction holds at most ${MAX_FS_TRANSACTION_BYTES}: nothing was written`,
      );
    }
    for (let attempt = 0;; attempt++) {
      try {
        return await this.#commitOnce(commit);
      } catch (e) {
        if (e !== TX_PENDING || attempt > 100) throw e;
        await this.recover();
      }
    }
  }

  async #commitOnce(commit: TransactionCommit): Promise<TransactionCommitted | "conflict"> {
    const w = commit.writes[0];
    if (commit.states.length === 0 && commit.writes.length === 1 && fitsOneFrame(w.batch)) {
      // One frame in one partition: atomic as it is (one write, one CRC), so
      // the plain append (guarded as ever) does.
      const writer = this.#writer(w.topic, w.partition);
      if (!w.dedup) return { firsts: [await writer.append(w.batch)], kept: [undefined] };
      const r = await writer.appendDeduplicated(w.batch, w.dedup.windowMs, w.dedup.now);
      return { firsts: [r.first], kept: [r.kept] };
    }
    const parts = [...new Set(commit.writes.map((w) => `${w.topic}/${w.partition}`))].sort();
    const states = [...commit.states].sort((a, b) => byKey(a.key, b.key));
    return await this.#holding(parts, states.map((s) => s.key), async (ends) => {
      await this.guard(parts, states.map((s) => s.key));
      const docs = this.#state();
      const versions: { version: string; created: boolean }[] = [];
      for (const s of states) {
        const cur = await docs.get(s.key);
        if ((cur?.version ?? null) !== s.expected) return "conflict";
        versions.push({ version: nextVersion(cur), created: !cur });
      }
      // The frames, at the ends the locks gave, one blob per write.
      const sink = new ByteSink(1 << 16);
      const firsts: number[] = [];
      const kept: (number[] | undefined)[] = [];
      const blobs: { p: string; first: number; count: number; from: number; to: number }[] = [];
      let frames = 0;
      for (const write of commit.writes) {
        const p = `${write.topic}/${write.partition}`;
        const first = ends.get(p)!;
        let batch = write.batch;
        if (write.dedup) {
          // The ids this partition stored within the window, under its lock.
          const k = await this.#writer(write.topic, write.partition).keptHeld(
            batch,
            first,
            write.dedup.windowMs,
            write.dedup.now,
          );
          kept.push(k);
          if (k.length < batch.count) batch = pickRecords(batch, k);
        } else kept.push(undefined);
        const from = sink.length;
        if (batch.count > 0) frames += encodeFrames(batch, first, sink).length;
        firsts.push(first);
        ends.set(p, first + batch.count);
        if (batch.count > 0) blobs.push({ p, first, count: batch.count, from, to: sink.length });
      }
      if (states.length === 0 && parts.length === 1 && frames <= 1) {
        // One frame in one partition: atomic as it is.
        if (blobs.length > 0) {
          const [topic, partition] = splitPart(parts[0]);
          const all = blobs.reduce((n, b) => n + b.count, 0);
          await this.#writer(topic, partition).appendFramesHeld(
            sink.bytes.subarray(0, sink.length),
            all,
          );
        }
        return { firsts, kept };
      }
      const head: JournalHead = {
        parts: blobs.map((b) => ({ p: b.p, first: b.first, count: b.count, bytes: b.to - b.from })),
        states: states.map((s, i) => ({
          key: s.key,
          version: versions[i].version,
          bytes: s.value.length,
          created: versions[i].created,
        })),
      };
      const headBytes = enc.encode(JSON.stringify(head));
      let total = 8 + headBytes.length + sink.length;
      for (const s of states) total += s.value.length;
      const file = new Uint8Array(total);
      const dv = new DataView(file.buffer);
      dv.setUint32(0, headBytes.length, true);
      dv.setUint32(4, total, true);
      file.set(headBytes, 8);
      let at = 8 + headBytes.length;
      file.set(sink.bytes.subarray(0, sink.length), at);
      at += sink.length;
      for (const s of states) {
        file.set(s.value, at);
        at += s.value.length;
      }
      const name = `${Date.now().toString(36)}-${Deno.pid}-${this.#seq++}-${
        Math.random().toString(36).slice(2, 8)
      }`;
      await Deno.mkdir(this.#dir, { recursive: true });
      const tmp = `${this.#dir}/${name}.tmp`;
      const f = await Deno.open(tmp, { write: true, create: true, truncate: true });
      try {
        let n = 0;
        while (n < file.length) n += await f.write(file.subarray(n));
        if (this.#sync !== "never") await f.syncData();
      } finally {
        f.close();
      }
      await Deno.rename(tmp, `${this.#dir}/${name}.commit`); // the commit point
      if (this.#sync === "always") await syncDir(this.#dir);
      const journal = parse(`${name}.commit`, file);
      if (!journal) throw new MqError("IO", `cannot read back transaction journal ${tmp}`);
      if (TX_FAULTS.crashAt === "commit-point") {
        throw new Error("crash (test): at the commit point");
      }
      await this.#apply(journal);
      await Deno.remove(`${this.#dir}/${name}.commit`);
      return { firsts, kept };
    });
  }

  /**
   * Writes a journal's frames and documents (holding every lock it names);
   * with `ends` (the partitions' ends, when recovering) some may be there
   * already, from a writer that crashed.
   */
  async #apply(j: Journal, ends?: Map<string, number>): Promise<void> {
    const recovering = ends !== undefined;
    const docs = this.#state();
    let k = 0;
    for (const part of j.head.parts) {
      const from = j.offsets[k++];
      let frames = j.body.subarray(from, from + part.bytes);
      const [topic, partition] = splitPart(part.p);
      const writer = this.#writer(topic, partition);
      let count = part.count;
      if (recovering) {
        const end = ends.get(part.p)!;
        if (end >= part.first + part.count) continue; // all there
        if (end < part.first) {
          // The partition ends before the transaction's records: they are
          // not rolled forward (the offsets between would be missing).
          this.#onCorrupt?.({
            topic,
            partition,
            location: `${this.#dir}/${j.name}`,
            offsets: { from: part.first, to: part.first + part.count },
          });
          continue;
        }
        // The frames a crash left out: from the one that starts at the end.
        const dv = new DataView(frames.buffer, frames.byteOffset, frames.byteLength);
        let pos = 0;
        while (pos < frames.length && frameBase(dv, pos) < end) {
          const total = checkFrame(frames, dv, pos, frames.length);
          if (total <= 0) break;
          pos += total;
        }
        if (pos >= frames.length || frameBase(dv, pos) !== end) {
          // The partition ends inside one of the transaction's frames.
          this.#onCorrupt?.({
            topic,
            partition,
            location: `${this.#dir}/${j.name}`,
            offsets: { from: end, to: part.first + part.count },
          });
          continue;
        }
        count = part.first + part.count - end;
        frames = frames.subarray(pos);
        ends.set(part.p, end + count);
      }
      await writer.appendFramesHeld(frames, count);
      if (!recovering && TX_FAULTS.crashAt === "first-part") {
        throw new Error("crash (test): after the first partition");
      }
    }
    for (const s of j.head.states) {
      const from = j.offsets[k++];
      const value = j.body.subarray(from, from + s.bytes);
      if (recovering) {
        // At the journal's version or later: written already.
        const cur = await docs.get(s.key);
        if (cur && Number(cur.version) >= Number(s.version)) continue;
      }
      await docs.writeHeld(s.key, s.version, value, s.created);
    }
  }

  /** Reads a journal; undefined when it is gone or not whole. */
  async #read(name: string): Promise<Journal | undefined> {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(`${this.#dir}/${name}`);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw e;
    }
    const j = parse(name, bytes);
    if (!j) {
      // Not whole (written without syncs and cut by a crash): ignored, and
      // each partition its head names (when it can be read) is reported.
      for (const p of partsOfTorn(bytes)) {
        const [topic, partition] = splitPart(p.p);
        this.#onCorrupt?.({
          topic,
          partition,
          location: `${this.#dir}/${name}`,
          offsets: { from: p.first, to: p.first + p.count },
        });
      }
    }
    return j;
  }

  /**
   * Runs `fn` holding the locks of `parts` (in order, each giving its end)
   * and then of the documents `keys` (in order).
   */
  async #holding<T>(
    parts: string[],
    keys: string[][],
    fn: (ends: Map<string, number>) => Promise<T>,
  ): Promise<T> {
    const ends = new Map<string, number>();
    const hold = async (i: number): Promise<T> => {
      if (i < parts.length) {
        const [topic, partition] = splitPart(parts[i]);
        return await this.#writer(topic, partition).exclusive(async (end) => {
          ends.set(parts[i], end);
          return await hold(i + 1);
        });
      }
      const docs = this.#state();
      const unlocks: (() => Promise<void>)[] = [];
      try {
        for (const k of keys) unlocks.push(await docs.lock(k));
        return await fn(ends);
      } finally {
        for (const u of unlocks.reverse()) await u();
      }
    };
    return await hold(0);
  }
}

/** The partitions the head of a journal that is not whole names (none when the head is cut, too). */
function partsOfTorn(bytes: Uint8Array): JournalHead["parts"] {
  if (bytes.length < 8) return [];
  const headLen = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);
  if (8 + headLen > bytes.length) return [];
  try {
    const head = JSON.parse(dec.decode(bytes.subarray(8, 8 + headLen))) as JournalHead;
    return Array.isArray(head.parts) ? head.parts : [];
  } catch {
    return [];
  }
}

function parse(name: string, bytes: Uint8Array): Journal | undefined {
  if (bytes.length < 8) return undefined;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headLen = dv.getUint32(0, true), total = dv.getUint32(4, true);
  if (total !== bytes.length || 8 + headLen > total) return undefined;
  let head: JournalHead;
  try {
    head = JSON.parse(dec.decode(bytes.subarray(8, 8 + headLen)));
  } catch {
    return undefined;
  }
  const body = bytes.subarray(8 + headLen);
  const offsets: number[] = [];
  let at = 0;
  for (const p of head.parts) (offsets.push(at), at += p.bytes);
  for (const s of head.states) (offsets.push(at), at += s.bytes);
  if (at !== body.length) return undefined;
  return { name, head, body, offsets };
}

/** True when `batch` surely encodes to one frame (its body within the frame target). */
function fitsOneFrame(batch: RecordBatch): boolean {
  let bytes = FRAME_HEAD;
  for (let i = 0; i < batch.count && bytes <= FRAME_TARGET; i++) {
    bytes += batch.ends[i] - batch.starts[i] + RECORD_HEAD + 32;
    const m = batch.meta?.[i];
    if (m) {
      bytes += ((m.key?.length ?? 0) + (m.id?.length ?? 0)) * 3 + 8;
      if (m.headers) bytes += JSON.stringify(m.headers).length * 3 + 4;
    }
  }
  return bytes <= FRAME_TARGET;
}

function splitPart(p: string): [string, number] {
  const i = p.lastIndexOf("/");
  return [p.slice(0, i), Number(p.slice(i + 1))];
}

function byKey(a: string[], b: string[]): number {
  const x = a.join("/"), y = b.join("/");
  return x < y ? -1 : x > y ? 1 : 0;
}
