/** `mq doctor [TOPIC...] [--repair] [--json]`: check a store, and repair it. */
import { MqError } from "../../core/errors.ts";
import type { DoctorReport } from "../../mod.ts";
import { note, openResolved, print } from "../runtime.ts";

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
