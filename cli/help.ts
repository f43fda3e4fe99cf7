/**
 * Help texts, made from the command definitions: `mq --help`, `mq <command>
 * --help` and `mq help <command> [<sub>]` print the same.
 *
 * @module
 */
import type { CommandDefinition, OptionDefinition } from "./definition.ts";
import { flagsOf } from "./definition.ts";
import { commandPath, type Program } from "./parse.ts";

/** The description of `mq` itself. */
export const PROGRAM_DESCRIPTION =
  "Message queues from the shell: publish lines into topics, read them back, share work.";

const HELP_OPTION: OptionDefinition = { long: "help", short: "h", help: "show this help" };
const VERSION_OPTION: OptionDefinition = { long: "version", short: "V", help: "print the version" };

/** `[options] <topic> [payload...]`: the arguments of a command as usage shows them. */
export function argumentsUsage(cmd: CommandDefinition): string {
  return (cmd.arguments ?? []).map((a) => {
    const name = a.variadic ? `${a.name}...` : a.name;
    return a.required ? `<${name}>` : `[${name}]`;
  }).join(" ");
}

function columns(rows: readonly (readonly [string, string])[], indent = "  "): string {
  const width = Math.max(...rows.map(([left]) => left.length));
  return rows.map(([left, right]) =>
    right ? `${indent}${left.padEnd(width)}  ${right}` : `${indent}${left}`
  ).join("\n");
}

function optionRows(options: readonly OptionDefinition[]): [string, string][] {
  return options.map((o) => {
    const d = o.default;
    const shown = d === undefined || (Array.isArray(d) && d.length === 0) || d === ""
      ? ""
      : ` (default: ${typeof d === "string" ? d : JSON.stringify(d)})`;
    return [flagsOf(o), o.help + shown];
  });
}

/** Every example line of a command, indented, comments aligned. */
function examplesText(cmd: { examples?: CommandDefinition["examples"] }): string {
  const examples = cmd.examples ?? [];
  if (examples.length === 0) return "";
  const width = Math.min(48, Math.max(...examples.map(([line]) => line.length)));
  return "\nExamples:\n" +
    examples.map(([line, what]) => what ? `  ${line.padEnd(width)}  ${what}` : `  ${line}`).join(
      "\n",
    ) + "\n";
}

function commandRows(list: readonly CommandDefinition[]): [string, string][] {
  return list.map((c) => {
    const args = argumentsUsage(c);
    const head = [
      c.name,
      c.options?.length ? "[options]" : "",
      c.subcommands?.length ? "[command]" : "",
      args,
    ]
      .filter(Boolean).join(" ");
    return [head, c.summary];
  });
}

/**
 * The help of the command at `path` (`[]`: `mq` itself), as printed.
 *
 * @example
 * ```ts
 * import { helpText } from "./help.ts";
 * import { loadProgram } from "./registry.ts";
 * const PROGRAM = await loadProgram();
 * console.log(helpText(PROGRAM, ["topics", "create"]));
 * ```
 * @throws {MqError} `INVALID_ARGUMENT` for an unknown command on the path
 */
export function helpText(program: Program, path: readonly string[]): string {
  if (path.length === 0) {
    return [
      "Usage: mq [options] [command]",
      "",
      PROGRAM_DESCRIPTION,
      "",
      "Options:",
      columns(optionRows([VERSION_OPTION, ...program.globals, HELP_OPTION])),
      "",
      "Commands:",
      columns(commandRows(program.commands)),
      "",
    ].join("\n") + examplesText(program) +
      (program.notes ? "\n" + program.notes.trim() + "\n" : "");
  }
  const chain = commandPath(program, path);
  const cmd = chain.at(-1)!;
  const usage = [
    `Usage: mq ${path.join(" ")}`,
    "[options]",
    cmd.subcommands?.length ? "[command]" : "",
    argumentsUsage(cmd),
  ].filter(Boolean).join(" ");
  const parts = [usage, "", cmd.description ?? capitalized(cmd.summary)];
  const described = (cmd.arguments ?? []).filter((a) => a.help);
  if (described.length > 0) {
    parts.push(
      "",
      "Arguments:",
      columns(described.map((a) => [
        a.name,
        a.help! + (a.default === undefined ? "" : ` (default: ${a.default})`),
      ])),
    );
  }
  parts.push("", "Options:", columns(optionRows([...(cmd.options ?? []), HELP_OPTION])));
  parts.push("", "Global options:", columns(optionRows(program.globals)));
  if (cmd.subcommands?.length) {
    parts.push("", "Commands:", columns(commandRows(cmd.subcommands)));
  }
  let text = parts.join("\n") + "\n" + examplesText(cmd);
  if (cmd.notes) text += "\n" + cmd.notes.trim() + "\n";
  return text;
}

function capitalized(s: string): string {
  const t = s[0].toUpperCase() + s.slice(1);
  return t.endsWith(".") ? t : t + ".";
}

/** Writes `text` to stdout, all of it. */
export async function printText(text: string): Promise<void> {
  const bytes = new TextEncoder().encode(text);
  let n = 0;
  while (n < bytes.length) n += await Deno.stdout.write(bytes.subarray(n));
}
