/**
 * Small file helpers of the fs backend's writers: stat or nothing, reads at a
 * position, a folder's sync.
 *
 * @module
 */

/** True for an error of a file whose folder is gone (directly, or as the cause of an IO error). */
export function isFolderGone(e: unknown): boolean {
  return e instanceof Deno.errors.NotFound ||
    (e instanceof Error && e.cause instanceof Deno.errors.NotFound);
}

export function statOrNullSync(path: string): Deno.FileInfo | null {
  try {
    return Deno.statSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

export async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** Flushes a folder's entries to disk (best effort). */
export async function syncDir(dir: string): Promise<void> {
  try {
    const d = await Deno.open(dir, { read: true });
    try {
      await d.syncData();
    } finally {
      d.close();
    }
  } catch {
    // Some file systems refuse to sync a folder; the data itself was synced.
  }
}

/** {@link readAt}, synchronously. */
export function readAtSync(
  file: Deno.FsFile,
  pos: number,
  len: number,
): { buf: Uint8Array; got: number } {
  const buf = new Uint8Array(len);
  if (pos > 0) file.seekSync(pos, Deno.SeekMode.Start);
  let got = 0;
  while (got < len) {
    const n = file.readSync(buf.subarray(got));
    if (n === null || n === 0) break;
    got += n;
  }
  return { buf, got };
}

/** Reads up to `len` bytes of `file` from `pos` (fewer where the file ends sooner). */
export async function readAt(
  file: Deno.FsFile,
  pos: number,
  len: number,
): Promise<{ buf: Uint8Array; got: number }> {
  const buf = new Uint8Array(len);
  await file.seek(pos, Deno.SeekMode.Start);
  let got = 0;
  while (got < len) {
    const n = await file.read(buf.subarray(got));
    if (n === null) break;
    got += n;
  }
  return { buf, got };
}
