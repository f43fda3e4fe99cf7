/**
 * The fast path of `mq`: the commands used in shell loops (`pub`, `sub`,
 * `take`, `ack`, ...) run without loading commander and the other commands.
 *
 * A command module registers itself on a {@link RecordedCommand}, a stand-in
 * for commander's `Command` that records its arguments, options and action;
 * {@link parseFast} then parses the command line as commander would. Anything
 * it is not sure of (an unknown or combined flag, `--help`, a missing or
 * excess argument, a value its parser refuses, a registration it does not
 * know) makes it give up before anything runs, and commander takes over, so
 * errors, exit codes and help are commander's own. `fast_path_test.ts`
 * compares both parsers on many command lines.
 *
 * @module
 */
import type { Command } from "commander";
import type * as Sub from "./commands/sub.ts";
import type * as Work from "./commands/work.ts";
import type * as Take from "./commands/take.ts";
import type * as Peek from "./commands/peek.ts";
import type * as Request from "./commands/request.ts";
import type * as Program from "./program.ts";
import { GLOBAL_OPTIONS } from "./runtime.ts";
import { reportError } from "./exit_codes.ts";
import { MqError } from "../core/errors.ts";

/** What registers a command module's commands on a program. */
type Register = (program: Command) => void;

/**
 * Imports a module of this folder at run time. The specifier is computed on
 * purpose: `deno run` reads every statically named module, dynamic imports
 * included, before it starts, so naming them here would load them (and
 * commander, through program.ts) on every run. The `import type`s keep them
 * type-checked.
 */
export function importLazily<T>(path: string): Promise<T> {
  return import(new URL(path, import.meta.url).href);
}

/** Where the fast path finds each command's registration. */
export type FastCommands = Record<string, () => Promise<Register>>;

/** The modules of the fast commands, each imported only when used. */
export const FAST_COMMANDS: FastCommands = {
  sub: async () => (await importLazily<typeof Sub>("./commands/sub.ts")).registerSub,
  work: async () => (await importLazily<typeof Work>("./commands/work.ts")).registerWork,
  take: async () => (await importLazily<typeof Take>("./commands/take.ts")).registerTake,
  ack: async () => (await importLazily<typeof Take>("./commands/take.ts")).registerTake,
  nack: async () => (await importLazily<typeof Take>("./commands/take.ts")).registerTake,
  peek: async () => (await importLazily<typeof Peek>("./commands/peek.ts")).registerPeek,
  cancel: async () => (await importLazily<typeof Peek>("./commands/peek.ts")).registerPeek,
  request: async () =>
    (await importLazily<typeof Request>("./commands/request.ts")).registerRequest,
  reply: async () => (await importLazily<typeof Request>("./commands/request.ts")).registerRequest,
};

/** The names of the commands the fast path can run. */
export const FAST_COMMAND_NAMES: readonly string[] = Object.keys(FAST_COMMANDS);

/** A registration the fast path does not model: commander takes over. */
class NotModelled extends Error {}

type ParseArg = (value: string, previous: unknown) => unknown;

/** An option as commander splits its flags. */
interface OptionSpec {
  short?: string;
  long?: string;
  /** Takes a value (`<v>`). */
  required: boolean;
  /** The key in the options object (`--key-delimiter`: `keyDelimiter`). */
  attribute: string;
  negate: boolean;
  parse?: ParseArg;
  defaultValue?: unknown;
}

/** A positional argument. */
interface ArgumentSpec {
  required: boolean;
  variadic: boolean;
  defaultValue?: unknown;
}

function camelcase(s: string): string {
  return s.split("-").reduce((a, w) => a + w[0].toUpperCase() + w.slice(1));
}

/** Splits option flags such as `-k, --key <key>` (as commander does). */
export function optionSpec(flags: string, parse?: ParseArg, defaultValue?: unknown): OptionSpec {
  // As commander: "<" takes a value ("<dur[,max]>" too), "[" alone an optional one.
  if ((!flags.includes("<") && flags.includes("[")) || /\w\.\.\.[>\]]$/.test(flags)) {
    throw new NotModelled(`optional or variadic option ${flags}`);
  }
  const parts = flags.split(/[ |,]+/);
  let short: string | undefined, long: string | undefined;
  if (/^-[^-]$/.test(parts[0])) short = parts.shift();
  if (/^--[^-]/.test(parts[0] ?? "")) long = parts.shift();
  if (parts.length > 0 && parts[0].startsWith("-")) throw new NotModelled(`flags ${flags}`);
  const name = (long ?? short!).replace(/^--?/, "");
  const negate = long !== undefined && long.startsWith("--no-");
  return {
    short,
    long,
    required: flags.includes("<"),
    attribute: camelcase(negate ? name.replace(/^no-/, "") : name),
    negate,
    parse,
    defaultValue,
  };
}

/**
 * Stands in for commander's `Command` while a command module registers
 * itself, and for the command an action is given.
 */
export class RecordedCommand {
  readonly commands: RecordedCommand[] = [];
  readonly options: OptionSpec[] = [];
  readonly arguments: ArgumentSpec[] = [];
  /** The operands, as commander's `cmd.args`. */
  args: string[] = [];
  parent?: RecordedCommand;
  handler?: (...args: unknown[]) => unknown;
  values: Record<string, unknown> = {};
  #name: string;

  constructor(name: string) {
    this.#name = name;
  }

  /** The command's name. */
  name(): string {
    return this.#name;
  }

  /** Adds a subcommand (`name [args...]`). */
  command(nameAndArgs: string, ...rest: unknown[]): RecordedCommand {
    if (rest.length > 0) throw new NotModelled("command options");
    const [name, ...args] = nameAndArgs.trim().split(/ +/);
    const cmd = new RecordedCommand(name);
    for (const a of args) cmd.argument(a);
    cmd.parent = this;
    this.commands.push(cmd);
    return cmd;
  }

  /** Help text: not needed here. */
  summary(_text: string): this {
    return this;
  }

  /** Help text: not needed here. */
  description(_text: string): this {
    return this;
  }

  /** Help text: not needed here. */
  addHelpText(_position: string, _text: string): this {
    return this;
  }

  /** A positional argument. */
  argument(name: string, _description?: string, ...rest: unknown[]): this {
    if (rest.length > 0) throw new NotModelled("argument parsers and defaults");
    const required = name.startsWith("<");
    if (!required && !name.startsWith("[")) throw new NotModelled(`argument ${name}`);
    this.arguments.push({ required, variadic: name.slice(1, -1).endsWith("...") });
    return this;
  }

  /** An option, with an optional parser and default (as commander's `.option`). */
  option(
    flags: string,
    _description?: string,
    parseOrDefault?: unknown,
    defaultValue?: unknown,
  ): this {
    const spec = typeof parseOrDefault === "function"
      ? optionSpec(flags, parseOrDefault as ParseArg, defaultValue)
      : optionSpec(flags, undefined, parseOrDefault);
    if (parseOrDefault instanceof RegExp) throw new NotModelled("a RegExp option");
    this.options.push(spec);
    return this;
  }

  /** The action. */
  action(fn: (...args: unknown[]) => unknown): this {
    this.handler = fn;
    return this;
  }

  /** This command's option values. */
  opts(): Record<string, unknown> {
    return this.values;
  }

  /**
   * Reports a usage error as commander's `cmd.error()` would (one
   * `mq: error: ...` line, exit 2).
   */
  error(message: string, _options?: { exitCode?: number; code?: string }): never {
    throw new MqError("INVALID_ARGUMENT", message.replace(/^error:\s*/, ""));
  }

  /** Option values of this command and its ancestors (an ancestor's win, as in commander). */
  optsWithGlobals(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    Object.assign(out, this.values);
    for (let c = this.parent; c; c = c.parent) Object.assign(out, c.values);
    return out;
  }
}

/** Initial values: defaults, and `true` for a lone `--no-x`. */
function defaultsOf(options: readonly OptionSpec[]): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const o of options) {
    if (o.negate) {
      const positive = options.some((p) => p.long === `--${o.long!.slice(5)}`);
      if (!positive) values[o.attribute] = o.defaultValue === undefined ? true : o.defaultValue;
    } else if (o.defaultValue !== undefined) values[o.attribute] = o.defaultValue;
  }
  return values;
}

/**
 * Sets an option found at `args[i]`; returns the next index, or -1 when `arg`
 * is not one of `options` exactly.
 */
function takeOption(
  options: readonly OptionSpec[],
  values: Record<string, unknown>,
  args: readonly string[],
  i: number,
): number {
  const arg = args[i];
  let spec = options.find((o) => o.short === arg || o.long === arg);
  let inline: string | undefined;
  if (!spec && /^--[^=]+=/.test(arg)) {
    const eq = arg.indexOf("=");
    spec = options.find((o) => o.long === arg.slice(0, eq) && o.required);
    inline = arg.slice(eq + 1);
  }
  if (!spec) return -1;
  let next = i + 1;
  let value: unknown;
  if (spec.required) {
    if (inline === undefined) {
      if (next >= args.length) throw new NotModelled("missing option value");
      inline = args[next++];
    }
    value = inline;
  } else value = spec.negate ? false : true;
  if (spec.parse && spec.required) {
    try {
      value = spec.parse(value as string, values[spec.attribute]);
    } catch {
      throw new NotModelled("an invalid option value");
    }
  }
  values[spec.attribute] = value;
  return next;
}

function isOptionLike(arg: string): boolean {
  return arg.length > 1 && arg[0] === "-";
}

/** A parsed fast command: what to call its action with. */
export interface FastParse {
  command: RecordedCommand;
  actionArgs: unknown[];
}

/**
 * Parses `args` as commander would for a program with the global options
 * and the commands `register` adds; undefined when commander must decide.
 */
export function parseFast(register: Register, args: readonly string[]): FastParse | undefined {
  try {
    return parseOrGiveUp(register, args);
  } catch (e) {
    if (e instanceof NotModelled || e instanceof TypeError) return undefined;
    throw e;
  }
}

/** Takes the global options out of `args` as commander's program does (wherever they are, before `--`). */
function takeGlobals(program: RecordedCommand, args: readonly string[]): string[] {
  program.values = defaultsOf(program.options);
  const rest: string[] = [];
  for (let i = 0; i < args.length;) {
    if (args[i] === "--") {
      rest.push(...args.slice(i));
      break;
    }
    const next = takeOption(program.options, program.values, args, i);
    if (next < 0) rest.push(args[i++]);
    else i = next;
  }
  return rest;
}

function newProgram(): RecordedCommand {
  const program = new RecordedCommand("mq");
  for (const [flags, help] of GLOBAL_OPTIONS) program.option(flags, help);
  return program;
}

function parseOrGiveUp(register: Register, args: readonly string[]): FastParse | undefined {
  const program = newProgram();
  register(program as unknown as Command);
  const rest = takeGlobals(program, args);
  const command = program.commands.find((c) => c.name() === rest[0]);
  if (!command || !command.handler || command.commands.length > 0) return undefined;
  command.values = defaultsOf(command.options);
  const operands: string[] = [];
  for (let i = 1; i < rest.length;) {
    const arg = rest[i];
    if (arg === "--") {
      operands.push(...rest.slice(i + 1));
      break;
    }
    if (isOptionLike(arg)) {
      const next = takeOption(command.options, command.values, rest, i);
      if (next < 0) return undefined; // unknown, combined, --help, a negative number...
      i = next;
      continue;
    }
    operands.push(arg);
    i++;
  }
  const specs = command.arguments;
  const variadic = specs.length > 0 && specs[specs.length - 1].variadic;
  if (specs.some((s, i) => s.required && operands[i] === undefined)) return undefined;
  if (!variadic && operands.length > specs.length) return undefined;
  const actionArgs: unknown[] = specs.map((s, i) =>
    s.variadic ? (i < operands.length ? operands.slice(i) : (s.defaultValue ?? [])) : operands[i]
  );
  command.args = operands;
  actionArgs.push(command.values, command);
  return { command, actionArgs };
}

/** The command `args` name (after the global options), if any. */
export function commandName(args: readonly string[]): string | undefined {
  try {
    const first = takeGlobals(newProgram(), args)[0];
    return first === undefined || isOptionLike(first) ? undefined : first;
  } catch {
    return undefined;
  }
}

/**
 * Runs `args` on the fast path; resolves to the exit code, or undefined when
 * the command is not a fast one or commander must parse it.
 */
export async function runFast(
  args: readonly string[],
  commands: FastCommands = FAST_COMMANDS,
): Promise<number | undefined> {
  const name = commandName(args);
  if (name === undefined || !Object.hasOwn(commands, name)) return undefined;
  const parsed = parseFast(await commands[name](), args);
  if (!parsed) return undefined;
  try {
    await parsed.command.handler!(...parsed.actionArgs);
    return 0;
  } catch (e) {
    return reportError(e, args);
  }
}

/**
 * Runs mq with `args`: on the fast path when it can, else through the whole
 * command tree (commander, loaded now); resolves to the exit code.
 */
export async function runMq(
  args: readonly string[],
  commands: FastCommands = FAST_COMMANDS,
): Promise<number> {
  const fast = await runFast(args, commands);
  if (fast !== undefined) return fast;
  const { runProgram } = await importLazily<typeof Program>("./program.ts");
  return await runProgram(args);
}
