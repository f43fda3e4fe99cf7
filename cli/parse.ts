/**
 * The command-line parser of `mq`, over the command definitions
 * (`definition.ts`): options anywhere before `--` (`--name value`,
 * `--name=value`, `-k value`, `-kvalue`, `-eq` for several flags), the global
 * options anywhere, subcommands by name, positional arguments by their
 * definitions. Every mistake is an `MqError` (`INVALID_ARGUMENT`, exit 2)
 * with one line saying what was wrong and, where a name is close, what was
 * meant.
 *
 * @module
 */
import { MqError } from "../core/errors.ts";
import {
  attributeOf,
  type Call,
  type CommandDefinition,
  flagsOf,
  type GlobalOptions,
  InvalidValue,
  type OptionDefinition,
} from "./definition.ts";
import { closest } from "./suggest.ts";

/** What a command line asks for. */
export type Parsed =
  | { kind: "run"; command: CommandDefinition; call: Call }
  | { kind: "help"; path: string[] }
  | { kind: "version" };

/** The root of the command tree: `mq` itself. */
export interface Program {
  /** The top-level commands. */
  commands: readonly CommandDefinition[];
  /** Options every command takes. */
  globals: readonly OptionDefinition[];
  /** Examples of `mq --help`. */
  examples?: CommandDefinition["examples"];
  /** Text after them. */
  notes?: string;
}

function usage(message: string): MqError {
  return new MqError("INVALID_ARGUMENT", message);
}

/** The command a path of names leads to (its definitions from the root on). */
export function commandPath(program: Program, path: readonly string[]): CommandDefinition[] {
  const out: CommandDefinition[] = [];
  let list = program.commands;
  for (const name of path) {
    const next = list.find((c) => c.name === name);
    if (!next) {
      const where = out.length === 0 ? "mq" : `mq ${path.slice(0, out.length).join(" ")}`;
      const close = closest(name, list.map((c) => c.name));
      throw usage(
        `unknown command ${JSON.stringify(name)} for ${where}${
          close ? ` (did you mean ${close}?)` : ""
        }; see ${where} --help`,
      );
    }
    out.push(next);
    list = next.subcommands ?? [];
  }
  return out;
}

function unknownCommand(name: string, path: readonly string[], names: string[]): MqError {
  const close = closest(name, names);
  const where = path.length > 0 ? ` for 'mq ${path.join(" ")}'` : "";
  return usage(`unknown command '${name}'${where}${close ? ` (Did you mean ${close}?)` : ""}`);
}

/** Parses `argv` (the words after `mq`) against `program`. */
export function parse(program: Program, argv: readonly string[]): Parsed {
  const path: string[] = [];
  let node: CommandDefinition | undefined;
  let options: readonly OptionDefinition[] = [];
  let values: Record<string, unknown> = {};
  const given = new Set<OptionDefinition>();
  const globals: Record<string, unknown> = {};
  const operands: string[] = [];
  let help = false;
  /** After `--`: only operands. */
  let onlyOperands = false;
  /** The first mistake, reported after the scan unless --help was asked for anywhere. */
  let pending: MqError | undefined;
  const fail = (e: MqError) => {
    pending ??= e;
  };

  const set = (opt: OptionDefinition, raw: string | undefined, into: Record<string, unknown>) => {
    const key = attributeOf(opt);
    let value: unknown;
    if (opt.value === undefined) value = !opt.long.startsWith("no-");
    else {
      try {
        value = opt.parse ? opt.parse(raw!) : raw;
      } catch (e) {
        if (e instanceof InvalidValue) {
          return fail(usage(`option '${flagsOf(opt)}' argument '${raw}' is invalid. ${e.message}`));
        }
        if (MqError.is(e)) return fail(e);
        throw e;
      }
    }
    if (opt.repeatable) {
      const list = given.has(opt) ? into[key] as unknown[] : [];
      into[key] = [...list, value];
    } else into[key] = value;
    given.add(opt);
  };
  const lookup = (test: (o: OptionDefinition) => boolean) => {
    const own = options.find(test);
    if (own) return { opt: own, into: values };
    const g = program.globals.find(test);
    return g ? { opt: g, into: globals } : undefined;
  };
  const flagNames = () => [
    ...options.map((o) => `--${o.long}`),
    ...program.globals.map((o) => `--${o.long}`),
    "--help",
  ];

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (onlyOperands) {
      operands.push(arg);
      continue;
    }
    if (arg === "--") {
      onlyOperands = true;
      continue;
    }
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const long = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      if (long === "help") {
        help = true;
        continue;
      }
      if (long === "version" && node === undefined) return { kind: "version" };
      const found = lookup((o) => o.long === long);
      if (!found) {
        const close = closest(`--${long}`, flagNames());
        fail(usage(`unknown option '--${long}'${close ? ` (Did you mean ${close}?)` : ""}`));
        continue;
      }
      const { opt, into } = found;
      if (opt.value === undefined) {
        if (eq >= 0) fail(usage(`option '${flagsOf(opt)}' takes no value`));
        else set(opt, undefined, into);
        continue;
      }
      let raw: string | undefined = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
      if (raw === undefined) {
        fail(usage(`option '${flagsOf(opt)}' argument missing`));
        raw = "";
        continue;
      }
      set(opt, raw, into);
      continue;
    }
    if (arg.length > 1 && arg[0] === "-") {
      for (let k = 1; k < arg.length; k++) {
        const c = arg[k];
        if (c === "h") {
          help = true;
          continue;
        }
        if (c === "V" && node === undefined) return { kind: "version" };
        const found = lookup((o) => o.short === c);
        if (!found) {
          fail(usage(`unknown option '-${c}'`));
          break;
        }
        const { opt, into } = found;
        if (opt.value === undefined) {
          set(opt, undefined, into);
          continue;
        }
        const raw = k + 1 < arg.length ? arg.slice(k + 1) : argv[++i];
        if (raw === undefined) fail(usage(`option '${flagsOf(opt)}' argument missing`));
        else set(opt, raw, into);
        break;
      }
      continue;
    }
    // An operand: a subcommand's name, or an argument.
    const subs = node === undefined ? program.commands : node.subcommands;
    if (subs && subs.length > 0 && operands.length === 0) {
      const sub = subs.find((c) => c.name === arg);
      if (sub) {
        // Options given before the subcommand carry over when it has them too.
        const carried = values;
        const carriedGiven = [...given].filter((o) => options.includes(o));
        node = sub;
        path.push(arg);
        options = sub.options ?? [];
        values = {};
        for (const o of carriedGiven) {
          given.delete(o);
          const same = options.find((x) => x.long === o.long);
          if (!same) fail(usage(`unknown option '--${o.long}' for 'mq ${path.join(" ")}'`));
          else {
            values[attributeOf(same)] = carried[attributeOf(o)];
            given.add(same);
          }
        }
        continue;
      }
      const names = subs.map((c) => c.name);
      if (node === undefined || !node.run) {
        fail(unknownCommand(arg, path, names));
        continue;
      }
      // A command with subcommands that takes arguments too (`mq groups
      // <topic>`): a near miss of a subcommand's name is taken as a typo.
      if (closest(arg, names)) {
        fail(unknownCommand(arg, path, names));
        continue;
      }
    }
    operands.push(arg);
  }

  if (help) return { kind: "help", path };
  if (pending) throw pending;
  if (node === undefined) return { kind: "help", path };
  if (!node.run) {
    const names = (node.subcommands ?? []).map((c) => c.name);
    throw usage(
      `mq ${path.join(" ")} needs a subcommand: ${names.join(", ")} (see mq ${
        path.join(" ")
      } --help)`,
    );
  }

  const specs = node.arguments ?? [];
  const args: Record<string, unknown> = {};
  for (let k = 0; k < specs.length; k++) {
    const spec = specs[k];
    if (spec.variadic) {
      args[spec.name] = operands.slice(k);
      if (spec.required && operands.length <= k) {
        throw usage(`missing required argument '${spec.name}'`);
      }
    } else {
      args[spec.name] = operands[k] ?? spec.default;
      if (spec.required && operands[k] === undefined) {
        throw usage(`missing required argument '${spec.name}'`);
      }
    }
  }
  if (!specs.at(-1)?.variadic && operands.length > specs.length) {
    const n = specs.length;
    throw usage(
      `too many arguments for '${node.name}'. Expected ${n} argument${
        n === 1 ? "" : "s"
      } but got ${operands.length}.`,
    );
  }
  for (const opt of options) {
    const key = attributeOf(opt);
    if (given.has(opt)) continue;
    if (opt.required) throw usage(`required option '${flagsOf(opt)}' not specified`);
    if (opt.repeatable) values[key] = [...((opt.default as unknown[] | undefined) ?? [])];
    else if (opt.default !== undefined) values[key] = opt.default;
  }
  for (const opt of program.globals) {
    const key = attributeOf(opt);
    if (!(key in globals) && opt.default !== undefined) globals[key] = opt.default;
  }
  const call: Call = {
    path,
    args,
    options: values,
    globals: globals as GlobalOptions,
    reads: false,
  };
  call.reads = typeof node.reads === "function" ? node.reads(call) : node.reads === true;
  return { kind: "run", command: node, call };
}
