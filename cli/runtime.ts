/** What every command gets: the backend, the global options, diagnostics. */
import type { Command } from "commander";
import { MqError } from "../core/errors.ts";
import type { Mq } from "../core/client.ts";
import type { CorruptionReport } from "../core/adapter.ts";
import { connect } from "../mod.ts";
import { resolveBackend, type ResolvedBackend } from "./backend.ts";
import { clearProgressLine } from "./progress.ts";

/** Options every command accepts. */
export interface GlobalOptions {
  url?: string;
  context?: string;
  quiet?: boolean;
  color?: boolean;
}

/** The global options: flags and help, shared by the command tree and the fast path. */
export const GLOBAL_OPTIONS: readonly (readonly [flags: string, help: string])[] = [
  ["--url <url>", "backend URL (overrides MQ_URL, contexts and MQ_ENV)"],
  ["--context <name>", "use a named backend URL (see MQ_CONTEXT and mq context)"],
  ["-q, --quiet", "no summaries or progress on stderr"],
  ["--no-color", "no colour (also NO_COLOR=1)"],
];

/**
 * A bad option value: commander reports it as
 * `error: option '--x <n>' argument 'abc' is invalid. ...` (exit 2). The same
 * shape as commander's `InvalidArgumentError`, without loading commander.
 */
export class InvalidOptionValue extends Error {
  /** What commander looks for. */
  readonly code = "commander.invalidArgument";
  /** Commander's exit code for it (mq maps every usage error to 2). */
  readonly exitCode = 1;
}

const enc = new TextEncoder();

/** The global options of the command being run. */
export function globals(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals() as GlobalOptions;
}

/** Opens the backend the global options name. */
export async function openBackend(cmd: Command): Promise<{ mq: Mq; backend: ResolvedBackend }> {
  return await openResolved(globals(cmd));
}

/**
 * Opens the backend `--url`/`--context` (or the environment) name, with
 * corruption reported on stderr (see {@link corruptionLine}).
 */
export async function openResolved(
  opts: { url?: string; context?: string },
): Promise<{ mq: Mq; backend: ResolvedBackend }> {
  const backend = await resolveBackend(opts);
  return {
    mq: await connect(backend.url, { onCorrupt: (r) => note(corruptionLine(r)) }),
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

/** Collects a repeatable option. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
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

/** Parses a whole number option. */
export function wholeNumber(name: string, min = 0): (v: string) => number {
  return (v: string) => {
    if (!/^\d+$/.test(v) || Number(v) < min) {
      throw new InvalidOptionValue(
        `${name} must be a whole number${min > 0 ? ` of at least ${min}` : ""}`,
      );
    }
    return Number(v);
  };
}
