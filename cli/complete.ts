/**
 * Shell completions, from the command definitions. The scripts that
 * `mq completions bash|zsh|fish` prints are small: on each TAB they run
 * `mq __complete <words...>` and show what it prints. {@link complete} walks
 * the words as the parser would and offers the subcommands, the flags, or the
 * values of the argument or option being typed (`CompletionSource`): names
 * from the store (topics, a topic's groups, exchanges), saved contexts,
 * files, or fixed words. The store is only read, with a short deadline.
 *
 * @module
 */
import {
  attributeOf,
  type CommandDefinition,
  type CompletionSource,
  type GlobalOptions,
  type OptionDefinition,
} from "./definition.ts";
import type { Program } from "./parse.ts";

/** A word to offer, with what it is (fish shows it). */
export interface Candidate {
  value: string;
  description?: string;
}

/** What to offer: words, or the shell's own file names. */
export interface Completion {
  files: boolean;
  candidates: Candidate[];
}

/** Names from the store and the contexts file, for completions (read only). */
export interface NameSource {
  topics(globals: GlobalOptions): Promise<string[]>;
  groups(globals: GlobalOptions, topic: string): Promise<string[]>;
  exchanges(globals: GlobalOptions): Promise<string[]>;
  contexts(): Promise<string[]>;
}

const HELP: OptionDefinition = { long: "help", short: "h", help: "show help" };
const VERSION: OptionDefinition = { long: "version", short: "V", help: "print the version" };

/**
 * What to offer for the last of `words` (the words after `mq`, the last one
 * being typed, possibly "").
 *
 * @example
 * ```ts
 * import { complete } from "./complete.ts";
 * import { loadProgram } from "./registry.ts";
 * const PROGRAM = await loadProgram();
 * const none = { topics: async () => [], groups: async () => [], exchanges: async () => [], contexts: async () => [] };
 * (await complete(PROGRAM, ["topics", "cr"], none)).candidates; // [{ value: "create", ... }]
 * ```
 */
export async function complete(
  program: Program,
  words: readonly string[],
  names: NameSource,
): Promise<Completion> {
  const before = words.slice(0, -1);
  const cur = words.at(-1) ?? "";
  let node: CommandDefinition | undefined;
  let options: readonly OptionDefinition[] = [];
  const operands: string[] = [];
  const globals: Record<string, unknown> = {};
  let expecting: OptionDefinition | undefined;
  let onlyOperands = false;
  const lookup = (test: (o: OptionDefinition) => boolean) =>
    options.find(test) ?? program.globals.find(test);
  const setGlobal = (opt: OptionDefinition, value: string | boolean) => {
    if (program.globals.includes(opt)) globals[attributeOf(opt)] = value;
  };

  for (const w of before) {
    if (expecting) {
      setGlobal(expecting, w);
      expecting = undefined;
      continue;
    }
    if (onlyOperands) {
      operands.push(w);
      continue;
    }
    if (w === "--") {
      onlyOperands = true;
      continue;
    }
    if (w.startsWith("--")) {
      const eq = w.indexOf("=");
      const opt = lookup((o) => o.long === (eq < 0 ? w.slice(2) : w.slice(2, eq)));
      if (opt?.value !== undefined) {
        if (eq < 0) expecting = opt;
        else setGlobal(opt, w.slice(eq + 1));
      } else if (opt) setGlobal(opt, true);
      continue;
    }
    if (w.length > 1 && w[0] === "-") {
      for (let k = 1; k < w.length; k++) {
        const opt = lookup((o) => o.short === w[k]);
        if (opt?.value !== undefined) {
          if (k === w.length - 1) expecting = opt;
          else setGlobal(opt, w.slice(k + 1));
          break;
        }
        if (opt) setGlobal(opt, true);
      }
      continue;
    }
    const subs = node === undefined ? program.commands : node.subcommands;
    const sub = operands.length === 0 ? subs?.find((c) => c.name === w) : undefined;
    if (sub) {
      node = sub;
      options = sub.options ?? [];
      continue;
    }
    operands.push(w);
  }

  const g = globals as GlobalOptions;
  const words_ = (list: readonly Candidate[]): Completion => ({
    files: false,
    candidates: list.filter((c) => c.value.startsWith(cur)),
  });
  if (expecting) return await valuesOf(expecting.complete, "", cur, g, operands, node, names);
  if (!onlyOperands && cur.startsWith("--") && cur.includes("=")) {
    const eq = cur.indexOf("=");
    const opt = lookup((o) => o.long === cur.slice(2, eq) && o.value !== undefined);
    if (!opt) return { files: false, candidates: [] };
    return await valuesOf(
      opt.complete,
      cur.slice(0, eq + 1),
      cur.slice(eq + 1),
      g,
      operands,
      node,
      names,
    );
  }
  if (!onlyOperands && cur.startsWith("-")) {
    const all = [...options, ...program.globals, HELP, ...(node === undefined ? [VERSION] : [])];
    const flags: Candidate[] = [];
    for (const o of all) {
      flags.push({ value: `--${o.long}`, description: o.help });
      if (o.short && cur.length <= 2 && !cur.startsWith("--")) {
        flags.push({ value: `-${o.short}`, description: o.help });
      }
    }
    return words_(flags);
  }
  const out: Candidate[] = [];
  const subs = node === undefined ? program.commands : node.subcommands;
  if (operands.length === 0 && !onlyOperands && subs) {
    out.push(...subs.map((c) => ({ value: c.name, description: c.summary })));
  }
  if (node?.run) {
    const specs = node.arguments ?? [];
    const last = specs.at(-1);
    const spec = operands.length < specs.length
      ? specs[operands.length]
      : last?.variadic
      ? last
      : undefined;
    if (spec) {
      const values = await valuesOf(spec.complete, "", cur, g, operands, node, names, program);
      if (values.files) return values;
      out.push(...values.candidates);
    }
  }
  return words_(out);
}

async function valuesOf(
  source: CompletionSource | undefined,
  prefix: string,
  cur: string,
  globals: GlobalOptions,
  operands: readonly string[],
  node: CommandDefinition | undefined,
  names: NameSource,
  program?: Program,
): Promise<Completion> {
  const listed = (list: readonly string[]): Completion => ({
    files: false,
    candidates: list.filter((v) => v.startsWith(cur)).map((v) => ({ value: prefix + v })),
  });
  if (source === undefined) return { files: false, candidates: [] };
  if (typeof source !== "string") return listed(source);
  switch (source) {
    case "file":
      return { files: true, candidates: [] };
    case "topic":
      return listed(await names.topics(globals));
    case "exchange":
      return listed(await names.exchanges(globals));
    case "context":
      return listed(await names.contexts());
    case "group": {
      const at = (node?.arguments ?? []).findIndex((a) => a.complete === "topic");
      const topic = at >= 0 ? operands[at] : undefined;
      return listed(topic === undefined ? [] : await names.groups(globals, topic));
    }
    case "command": {
      // `mq help topics <TAB>`: the subcommands of the path typed so far.
      let list = program?.commands ?? [];
      for (const name of operands) list = list.find((c) => c.name === name)?.subcommands ?? [];
      return listed(list.map((c) => c.name));
    }
  }
}

/** How long completions wait for the store before offering nothing (`MQ_COMPLETE_DEADLINE_MS`). */
const STORE_DEADLINE_MS = 1500;

/**
 * Names read from the backend the typed global options resolve to (as a
 * command would), opened without creating anything; nothing on any error or
 * after {@link STORE_DEADLINE_MS}.
 */
export function storeNames(): NameSource {
  const withStore = async <T>(
    globals: GlobalOptions,
    read: (mq: import("../connect.ts").Mq) => Promise<T[]>,
  ): Promise<T[]> => {
    const { resolveBackend } = await import("./backend.ts");
    const { connect } = await import("../connect.ts");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<T[]>((resolve) => {
      const ms = Number(Deno.env.get("MQ_COMPLETE_DEADLINE_MS") ?? STORE_DEADLINE_MS);
      timer = setTimeout(() => resolve([]), ms > 0 ? ms : STORE_DEADLINE_MS);
    });
    const work = (async () => {
      const backend = resolveBackend(globals);
      const mq = await connect(backend.url, { create: false });
      try {
        return await read(mq);
      } finally {
        await mq.close();
      }
    })().catch(() => [] as T[]);
    try {
      return await Promise.race([work, deadline]);
    } finally {
      clearTimeout(timer);
    }
  };
  return {
    topics: (g) => withStore(g, async (mq) => (await mq.topics.list()).map((t) => t.name)),
    groups: (g, topic) =>
      withStore(g, async (mq) => (await mq.topics.groups(topic)).map((x) => x.name)),
    exchanges: (g) => withStore(g, async (mq) => (await mq.exchanges.list()).map((e) => e.name)),
    contexts: async () => {
      try {
        const { loadContexts } = await import("./contexts.ts");
        return Object.keys(loadContexts().contexts).sort();
      } catch {
        return [];
      }
    },
  };
}

/**
 * `mq __complete <words...>`: prints `:files` or `:words`, then one
 * candidate a line (`value\tdescription` with `MQ_COMPLETE_DESCRIPTIONS=1`).
 */
export async function runComplete(program: Program, words: readonly string[]): Promise<void> {
  const result = await complete(program, words, storeNames());
  const described = Deno.env.get("MQ_COMPLETE_DESCRIPTIONS") === "1";
  await printLines([
    result.files ? ":files" : ":words",
    ...result.candidates.map((c) =>
      described && c.description ? `${c.value}\t${c.description}` : c.value
    ),
  ]);
}

/** Writes each of `lines` and a newline to stdout. */
export async function printLines(lines: readonly string[]): Promise<void> {
  const bytes = new TextEncoder().encode(
    lines.map((l) => l.endsWith("\n") ? l : l + "\n").join(""),
  );
  let n = 0;
  while (n < bytes.length) n += await Deno.stdout.write(bytes.subarray(n));
}

const BASH = `# mq completions for bash: eval "$(mq completions bash)"
# On each TAB, mq itself says what fits (mq __complete WORDS...).
_mq() {
  local -a words_before=() reply=()
  local cur line
  if [ -n "\${COMP_LINE+set}" ]; then
    # Split the line on blanks only: URLs such as file:/x keep their colon.
    line="\${COMP_LINE:0:\${COMP_POINT:-\${#COMP_LINE}}}"
    read -ra words_before <<< "$line"
    if [[ "$line" =~ [[:space:]]$ ]]; then
      cur=""
    else
      cur="\${words_before[\${#words_before[@]}-1]}"
      unset 'words_before[\${#words_before[@]}-1]'
    fi
  else
    words_before=("\${COMP_WORDS[@]:0:COMP_CWORD}")
    cur="\${COMP_WORDS[COMP_CWORD]}"
  fi
  local IFS=$'\\n'
  reply=($(mq __complete "\${words_before[@]:1}" "$cur" 2>/dev/null))
  if [ "\${reply[0]}" = ":files" ]; then
    COMPREPLY=($(compgen -f -- "$cur"))
  else
    COMPREPLY=("\${reply[@]:1}")
  fi
}
complete -F _mq mq
`;

const FISH = `# mq completions for fish: mq completions fish | source
# On each TAB, mq itself says what fits (mq __complete WORDS...).
function __mq_complete
    set -l words (commandline -opc)[2..-1] (commandline -ct)
    set -l reply (env MQ_COMPLETE_DESCRIPTIONS=1 mq __complete $words 2>/dev/null)
    if test "$reply[1]" = ":files"
        __fish_complete_path (commandline -ct)
    else
        printf '%s\\n' $reply[2..-1]
    end
end
complete -c mq -f -a '(__mq_complete)'
`;

/**
 * The completion script for `shell` (bash, zsh or fish).
 *
 * @example
 * ```ts
 * import { completionScript } from "./complete.ts";
 * completionScript("bash").includes("complete -F _mq mq"); // true
 * ```
 */
export function completionScript(shell: string): string {
  if (shell === "fish") return FISH;
  if (shell === "zsh") return `autoload -U +X bashcompinit && bashcompinit\n${BASH}`;
  return BASH;
}
