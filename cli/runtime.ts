/** What every command gets: the backend, the global options, diagnostics. */
import { MqError } from "../core/errors.ts";
import type { CorruptionReport, Mq } from "../mod.ts";
import type * as Connect from "../connect.ts";
import { resolveBackend, type ResolvedBackend } from "./backend.ts";
import { type Call, type GlobalOptions, load } from "./definition.ts";
import { clearProgressLine } from "./progress.ts";

export type { GlobalOptions } from "./definition.ts";

const enc = new TextEncoder();

/** The global options of the command being run. */
export function globals(cmd: Call): GlobalOptions {
  return cmd.globals;
}

/**
 * Opens the backend the global options name; a reading command (see
 * `CommandDefinition.reads`) opens it without creating anything.
 */
export async function openBackend(cmd: Call): Promise<{ mq: Mq; backend: ResolvedBackend }> {
  return await openResolved(globals(cmd), { create: !cmd.reads });
}

/**
 * Opens the backend `--url`/`--context` (or the environment) name, with
 * corruption reported on stderr (see {@link corruptionLine}).
 */
export async function openResolved(
  opts: { url?: string; context?: string },
  how: { create?: boolean } = {},
): Promise<{ mq: Mq; backend: ResolvedBackend }> {
  const backend = resolveBackend(opts);
  // The library is loaded here, not on start: `mq info` and `mq context` do without it.
  const { connect } = await load<typeof Connect>(import.meta.url, "../connect.ts");
  return {
    mq: await connect(backend.url, {
      create: how.create ?? true,
      onCorrupt: (r) => note(corruptionLine(r)),
    }),
    backend,
  };
}

/** The stderr line for corrupt data skipped (one per stretch). */
export function corruptionLine(r: CorruptionReport): string {
  const o = r.offsets;
  const n = o ? o.to - o.from : 0;
  const offsets = o ? `${n} offset${n === 1 ? "" : "s"}, ${o.from}-${o.to - 1}` : "";
  const where = `topic "${r.topic}" partition ${r.partition}`;
  if (r.group !== undefined) {
    return `mq: warning: group "${r.group}" passed unreadable messages of ${where} (${offsets})`;
  }
  if (r.bytes && r.quarantined) {
    return `mq: warning: cut corrupt bytes ${r.bytes.from}-${r.bytes.to} of ${r.location}, kept in ${r.quarantined} (${offsets} lost to damage; offsets go on from ${o?.to})`;
  }
  if (r.bytes) {
    return `mq: warning: skipped corrupt bytes ${r.bytes.from}-${r.bytes.to} of ${r.location} (${
      offsets || "no offsets lost"
    })`;
  }
  return `mq: warning: ${where}: messages lost to damage in ${r.location} (${offsets})`;
}

/** Writes one diagnostic line to stderr (clearing a progress line first). */
export function note(line: string): void {
  clearProgressLine();
  Deno.stderr.writeSync(enc.encode(line + "\n"));
}

/** Writes text to stdout. */
export async function print(text: string): Promise<void> {
  const bytes = enc.encode(text);
  let n = 0;
  while (n < bytes.length) n += await Deno.stdout.write(bytes.subarray(n));
}

/**
 * The headers of repeated `-H NAME=VALUE` options (undefined when none). A
 * name given twice is refused: a message or a binding has one value per header.
 *
 * @throws {MqError} `INVALID_ARGUMENT` (exit 2) for a malformed or repeated header
 */
export function headerFlags(list: readonly string[]): Record<string, string> | undefined {
  if (list.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const h of list) {
    const eq = h.indexOf("=");
    if (eq <= 0) {
      throw new MqError("INVALID_ARGUMENT", `header ${JSON.stringify(h)} must be NAME=VALUE`);
    }
    const name = h.slice(0, eq);
    if (Object.hasOwn(out, name)) {
      throw new MqError(
        "INVALID_ARGUMENT",
        `header ${JSON.stringify(name)} is given twice: one value per header`,
      );
    }
    out[name] = h.slice(eq + 1);
  }
  return out;
}
