/** What every command gets: the backend, the global options, diagnostics. */
import { MqError } from "../core/errors.ts";
import type { Mq } from "../core/client.ts";
import type * as Mod from "../mod.ts";
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
  const backend = await resolveBackend(globals(cmd));
  // The library is loaded here, not on start: `mq info` and `mq context` do without it.
  const { connect } = await load<typeof Mod>(import.meta.url, "../mod.ts");
  return { mq: await connect(backend.url, { create: !cmd.reads }), backend };
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
