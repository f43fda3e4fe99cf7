/** What every command gets: the backend, the global options, diagnostics. */
import { type Command, InvalidArgumentError } from "commander";
import type { Mq } from "../core/client.ts";
import { connect } from "../mod.ts";
import { resolveBackend, type ResolvedBackend } from "./backend.ts";

/** Options every command accepts. */
export interface GlobalOptions {
  url?: string;
  context?: string;
  quiet?: boolean;
  color?: boolean;
}

const enc = new TextEncoder();

/** The global options of the command being run. */
export function globals(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals() as GlobalOptions;
}

/** Opens the backend the global options name. */
export async function openBackend(cmd: Command): Promise<{ mq: Mq; backend: ResolvedBackend }> {
  const backend = await resolveBackend(globals(cmd));
  return { mq: await connect(backend.url), backend };
}

/** Writes one diagnostic line to stderr. */
export function note(line: string): void {
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

/** Parses a whole number option. */
export function wholeNumber(name: string, min = 0): (v: string) => number {
  return (v: string) => {
    if (!/^\d+$/.test(v) || Number(v) < min) {
      throw new InvalidArgumentError(
        `${name} must be a whole number${min > 0 ? ` of at least ${min}` : ""}`,
      );
    }
    return Number(v);
  };
}
