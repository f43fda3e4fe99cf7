/** Plain text formatting shared by the commands: tables, bindings. */
import type { Binding } from "../mod.ts";

/** A plain text table with aligned columns. */
export function table(head: string[], rows: (string | number)[][]): string {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const widths = head.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  return cells.map((r) =>
    r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join("  ")
  ).join("\n") + "\n";
}

/** A binding in one short line. */
export function describeBinding(b: Binding): string {
  if (b.headers) {
    return `${b.match ?? "all"} of ${
      Object.entries(b.headers).flatMap(([k, v]) =>
        (Array.isArray(v) ? v : [v]).map((x) => `${k}=${x}`)
      ).join(",")
    }`;
  }
  return b.key === undefined ? "(any)" : `key ${b.key}`;
}
