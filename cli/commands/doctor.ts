/** `mq doctor [TOPIC...] [--repair] [--json]`: check a store, and repair it. */
import type { Command } from "commander";
import { MqError } from "../../core/errors.ts";
import type { DoctorReport } from "../../core/doctor.ts";
import { globals, note, openResolved, print } from "../runtime.ts";

const EXAMPLES = `
Examples:
  mq doctor                     check every topic, group and log of the store
  mq doctor orders --repair     check one topic and repair what can be repaired
  mq doctor --json | jq '.findings[].problem'

Checks every frame's checksum, that offsets are dense and increasing, the index
against the segments, every state document's shape, groups pointing past the end,
and leftovers (*.tmp files, state of removed topics); on kv and nats, the checks
that apply. --repair loses no acknowledged message: corrupt bytes move to a side
file (<segment>.corrupt), indexes are rebuilt, leftovers removed, and a damaged
group document is reset to its last known position (a copy is kept).
Exit 0 when the store is clean (or every problem was repaired), 1 when not.`;

/** The options of `mq doctor`, as plain values. */
export interface DoctorCommandOptions {
  /** Backend URL (`--url`). */
  url?: string;
  /** Context name (`--context`). */
  context?: string;
  /** Topics to check; all when empty. */
  topics: string[];
  /** Repair what can be repaired. */
  repair: boolean;
  /** Print the report as JSON on stdout. */
  json: boolean;
  /** No summary on stderr. */
  quiet?: boolean;
}

/**
 * Runs `mq doctor`: prints one line per problem on stdout (`LOCATION:
 * PROBLEM`, then `  repaired: WHAT` where a repair fixed it), a summary on
 * stderr.
 *
 * @throws {MqError} `CORRUPT` (exit 1) when a problem is left
 */
export async function runDoctor(opts: DoctorCommandOptions): Promise<DoctorReport> {
  const { mq } = await openResolved(opts);
  let report: DoctorReport;
  try {
    report = await mq.doctor({ topics: opts.topics, repair: opts.repair });
  } finally {
    await mq.close();
  }
  const left = report.findings.filter((f) => f.repaired === undefined).length;
  const fixed = report.findings.length - left;
  if (opts.json) {
    await print(JSON.stringify({ clean: left === 0, ...report }) + "\n");
  } else {
    const lines = report.findings.map((f) =>
      `${f.location}: ${f.problem}` + (f.repaired ? `\n  repaired: ${f.repaired}` : "")
    );
    if (lines.length > 0) await print(lines.join("\n") + "\n");
  }
  const scope = `${report.topics} topic${report.topics === 1 ? "" : "s"}, ${report.groups} group${
    report.groups === 1 ? "" : "s"
  }${report.storageChecked ? ", their logs" : ", this backend's logs are not checked"}`;
  if (left > 0) {
    throw new MqError(
      "CORRUPT",
      `doctor found ${report.findings.length} problem${
        report.findings.length === 1 ? "" : "s"
      } (${scope})` +
        (opts.repair
          ? `; repaired ${fixed}, ${left} left`
          : "; mq doctor --repair fixes what it can"),
    );
  }
  if (!opts.quiet) {
    note(
      report.findings.length === 0
        ? `mq: doctor: clean (${scope})`
        : `mq: doctor: repaired ${fixed} problem${fixed === 1 ? "" : "s"} (${scope})`,
    );
  }
  return report;
}

/** Adds `doctor` to the program. */
export function registerDoctor(program: Command): void {
  program
    .command("doctor")
    .summary("check a store (frames, offsets, indexes, state documents); repair it")
    .description(
      "Check a store as PRAGMA integrity_check and kafka-dump-log do; --repair fixes what " +
        "can be fixed without losing an acknowledged message.",
    )
    .argument("[topics...]", "the topics to check (default: all, with leftovers)")
    .option("--repair", "fix what can be fixed, and say what was done")
    .option("--json", "print the report as JSON")
    .addHelpText("after", EXAMPLES)
    .action(
      async (topics: string[], opts: { repair?: boolean; json?: boolean }, cmd: Command) => {
        const g = globals(cmd);
        await runDoctor({
          url: g.url,
          context: g.context,
          quiet: g.quiet,
          topics,
          repair: opts.repair ?? false,
          json: opts.json ?? false,
        });
      },
    );
}
