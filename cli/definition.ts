/**
 * What a command of `mq` is: one {@link CommandDefinition} per command, from
 * which parsing (`parse.ts`), help (`help.ts`), "did you mean" suggestions
 * and the shell completions (`complete.ts`) all come. A definition is plain
 * data and a `run` function that imports the command's code when it runs, so
 * that loading every definition (for `mq --help` or a completion) is cheap.
 *
 * Adding a command: a definition file in `cli/definitions/` (exporting it as
 * `command`) and one line in `COMMANDS` (`registry.ts`). Adding an option: one entry in its
 * definition's `options`; its value reaches `run` as `call.options.<camelCase>`.
 *
 * @example
 * ```ts
 * import { type CommandDefinition, wholeNumber } from "./definition.ts";
 *
 * export const hello: CommandDefinition = {
 *   name: "hello",
 *   summary: "print a greeting",
 *   arguments: [{ name: "who", required: true, complete: "topic" }],
 *   options: [{ long: "times", short: "n", value: "n", help: "how often", parse: wholeNumber("--times", 1), default: 1 }],
 *   examples: [["mq hello world -n 2", "two greetings"]],
 *   run: (call) => {
 *     for (let i = 0; i < (call.options.times as number); i++) console.log(`hello ${call.args.who}`);
 *     return Promise.resolve();
 *   },
 * };
 * ```
 *
 * @module
 */

/**
 * Where the values of an argument or option come from, for completions:
 * names from the store (`topic`, `group` (of the command's topic argument),
 * `exchange`), saved contexts (`context`), files, or a fixed list of words.
 */
export type CompletionSource =
  | "topic"
  | "group"
  | "exchange"
  | "context"
  | "file"
  | "command"
  | readonly string[];

/** The values of `--format` that completions offer (a template is the third kind). */
export const FORMATS: readonly string[] = ["raw", "json"];

/** A value of an option or argument as given on the command line, made into what `run` gets. */
export type ValueParser<T = unknown> = (raw: string) => T;

/** An option: `--long`, `-s`, with or without a value. */
export interface OptionDefinition {
  /** The long name without dashes (`key-delimiter`); `run` gets it as `keyDelimiter`. A `no-` name (`no-color`) sets `color` to false. */
  long: string;
  /** The one-letter short name without its dash (`k`). */
  short?: string;
  /** The name of its value in help (`sep` for `--key-delimiter <sep>`); absent for a flag (true when given). */
  value?: string;
  /** One line of help. */
  help: string;
  /**
   * Checks and converts the value; throws {@link InvalidValue} (reported as
   * `option '--x <v>' argument 'y' is invalid. ...`, exit 2) or an `MqError`.
   * @default the text as given
   */
  parse?: ValueParser;
  /** The value when the option is not given (a repeatable option's default is `[]`). */
  default?: unknown;
  /** May be given several times; `run` gets an array of the values in order. */
  repeatable?: boolean;
  /** Must be given (`required option '--to <where>' not specified`, exit 2). */
  required?: boolean;
  /** Where completions find its values. */
  complete?: CompletionSource;
}

/** A positional argument. */
export interface ArgumentDefinition {
  /** Its name in usage lines and in `call.args` (`topic`, `payload`). */
  name: string;
  /** One line of help. */
  help?: string;
  /** Must be given (`<topic>` in usage; else `[topic]`). */
  required?: boolean;
  /** Takes every operand from here on (only the last argument); `run` gets an array. */
  variadic?: boolean;
  /** The value when it is not given (an optional argument). */
  default?: string;
  /** Where completions find its values. */
  complete?: CompletionSource;
}

/** An example in help: the command line, and what it does. */
export type Example = readonly [commandLine: string, what?: string];

/** The global options and the operands of a parsed command line, as `run` gets them. */
export interface GlobalOptions {
  url?: string;
  context?: string;
  quiet?: boolean;
  color?: boolean;
}

/** A parsed command line, as a command's `run` gets it. */
export interface Call {
  /** The command's path of names (`["topics", "create"]`). */
  path: readonly string[];
  /** Arguments by name: a string, undefined (optional, not given) or, for a variadic one, an array. */
  args: Record<string, any>;
  /** Options by camelCase name, defaults filled in. */
  options: Record<string, any>;
  /** The global options (`--url`, `--context`, `-q`, `--no-color`). */
  globals: GlobalOptions;
  /** A reading command: the store is opened without creating anything (see {@link CommandDefinition.reads}). */
  reads: boolean;
}

/** One command or subcommand of `mq`. */
export interface CommandDefinition {
  /** Its name (`create` for `mq topics create`). */
  name: string;
  /** One line for the list of commands. */
  summary: string;
  /** What it does, for its own help (default: the summary). */
  description?: string;
  /** Positional arguments, in order. */
  arguments?: readonly ArgumentDefinition[];
  /** Its options (the global ones and `--help` come on top). */
  options?: readonly OptionDefinition[];
  /** Examples, shown in help; `tests/cli/cli_help_examples_test.ts` runs each one that can run offline. */
  examples?: readonly Example[];
  /** Text after the examples (how it behaves, exit codes). */
  notes?: string;
  /** Subcommands (`mq topics create`). */
  subcommands?: readonly CommandDefinition[];
  /**
   * A reading command (`mq topics`, `mq sub -e`): it opens the store without
   * creating it (a Deno KV file that does not exist is an error, exit 1),
   * so that it leaves nothing behind. A function decides by the call.
   * @default false
   */
  reads?: boolean | ((call: Call) => boolean);
  /** Runs the command; absent for a command that only groups subcommands (`mq dlq`). */
  run?: (call: Call) => Promise<void>;
}

/**
 * A bad option value: reported as `option '--count <n>' argument 'x' is
 * invalid. <message>` with exit 2.
 *
 * @example
 * ```ts
 * import { InvalidValue } from "./definition.ts";
 * const port = (v: string) => {
 *   if (!/^\d+$/.test(v)) throw new InvalidValue("--port must be a number");
 *   return Number(v);
 * };
 * ```
 */
export class InvalidValue extends Error {
  /** A bad value described by `message`. */
  constructor(message: string) {
    super(message);
    this.name = "InvalidValue";
  }
}

/**
 * A parser of whole numbers of at least `min`, naming the option in its error.
 *
 * @example
 * ```ts
 * import { wholeNumber } from "./definition.ts";
 * wholeNumber("--count", 1)("3"); // 3
 * ```
 * @throws {InvalidValue} for anything but digits, or a number below `min`
 */
export function wholeNumber(name: string, min = 0): ValueParser<number> {
  return (v: string) => {
    if (!/^\d+$/.test(v) || Number(v) < min) {
      throw new InvalidValue(
        `${name} must be a whole number${min > 0 ? ` of at least ${min}` : ""}`,
      );
    }
    return Number(v);
  };
}

/**
 * A parser that accepts only `choices`.
 *
 * @example
 * ```ts
 * import { oneOf } from "./definition.ts";
 * oneOf("--overflow", ["drop-oldest", "reject"])("reject"); // "reject"
 * ```
 * @throws {InvalidValue} for any other value
 */
export function oneOf(name: string, choices: readonly string[]): ValueParser<string> {
  return (v: string) => {
    if (!choices.includes(v)) {
      throw new InvalidValue(
        `${name} must be ${choices.slice(0, -1).join(", ")} or ${choices.at(-1)}`,
      );
    }
    return v;
  };
}

/**
 * Imports a module of the sources when a command runs. The specifier is
 * computed on purpose: `deno run` reads every module named by a string
 * literal, dynamic imports included, before it starts, so naming the
 * command modules literally would load them all on every run. Pair it with an
 * `import type` of the module, so that it stays type-checked.
 *
 * @example
 * ```ts
 * import { load } from "./definition.ts";
 * import type * as Pub from "./commands/pub.ts";
 * const pub = await load<typeof Pub>(import.meta.url, "./commands/pub.ts");
 * ```
 */
export function load<T>(base: string, path: string): Promise<T> {
  return import(new URL(path, base).href);
}

/** `key-delimiter` as `keyDelimiter`; a `no-color` option's attribute is `color`. */
export function attributeOf(option: OptionDefinition): string {
  const name = option.long.startsWith("no-") ? option.long.slice(3) : option.long;
  return name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** `-k, --key <key>`: an option as help and errors show it. */
export function flagsOf(option: OptionDefinition): string {
  const value = option.value ? ` <${option.value}>` : "";
  return `${option.short ? `-${option.short}, ` : ""}--${option.long}${value}`;
}
