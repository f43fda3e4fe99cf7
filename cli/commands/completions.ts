/** `mq completions bash|zsh|fish`, generated from the command tree. */
import type { Command } from "commander";
import { MqError } from "../../core/errors.ts";
import { print } from "../runtime.ts";

/** A command or subcommand, as completions see it. */
interface Node {
  /** `pub`, or `topics create`. */
  path: string;
  /** Its subcommands' names. */
  subcommands: string[];
  /** Its own options, then the global ones and --help (no --version). */
  options: string[];
  /** What it is, for fish. */
  summary: string;
}

const flagsOf = (cmd: Command) =>
  cmd.options.flatMap((o) => [o.long, o.short].filter((x): x is string => Boolean(x)));

/** The global options (not --version, which only `mq` itself takes). */
function globalFlags(program: Command): string[] {
  return program.options
    .filter((o) => o.long !== "--version")
    .flatMap((o) => [o.long, o.short].filter((x): x is string => Boolean(x)));
}

function walk(program: Command): Node[] {
  const globals = [...globalFlags(program), "--help"];
  const out: Node[] = [];
  const visit = (cmd: Command, prefix: string) => {
    for (const c of cmd.commands) {
      const path = prefix ? `${prefix} ${c.name()}` : c.name();
      out.push({
        path,
        subcommands: c.commands.map((s) => s.name()),
        options: [...new Set([...flagsOf(c), ...globals])],
        summary: c.summary() || c.description().split("\n")[0],
      });
      visit(c, path);
    }
  };
  visit(program, "");
  return out;
}

/** Every flag that takes a value, anywhere in the tree (their values are skipped). */
function valueFlags(program: Command): string[] {
  const out = new Set<string>();
  const visit = (cmd: Command) => {
    for (const o of cmd.options) {
      if (!o.required && !o.optional) continue;
      for (const f of [o.long, o.short]) if (f) out.add(f);
    }
    cmd.commands.forEach(visit);
  };
  visit(program);
  return [...out].sort();
}

/** The completion script for `shell`. */
export function completionScript(program: Command, shell: string): string {
  const nodes = walk(program);
  const top = program.commands.map((c) => c.name());
  const topWords = [...top, ...globalFlags(program), "--help", "--version", "-V"];
  const withValue = valueFlags(program);
  if (shell === "bash" || shell === "zsh") {
    const cases = nodes.map((n) =>
      `    "${n.path}") words="${[...n.subcommands, ...n.options].join(" ")}" ;;`
    ).join("\n");
    const helpCases = nodes.filter((n) => n.subcommands.length > 0).map((n) =>
      `    "help ${n.path}") words="${n.subcommands.join(" ")}" ;;`
    ).join("\n");
    const parents = nodes.filter((n) => n.subcommands.length > 0).map((n) =>
      `    "${n.path}") case " ${n.subcommands.join(" ")} " in *" $w "*) key="$key $w" ;; esac ;;`
    ).join("\n");
    const body = `# mq completions for ${shell}: eval "$(mq completions ${shell})"
_mq() {
  local -a words_before=()
  local cur w key="" words="" skip="" i
  if [ -n "\${COMP_LINE+set}" ]; then
    # Split the line on blanks only: URLs such as file:/x keep their colon.
    local line="\${COMP_LINE:0:\${COMP_POINT:-\${#COMP_LINE}}}"
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
  # The command path: words that are neither options nor option values.
  for ((i = 1; i < \${#words_before[@]}; i++)); do
    w="\${words_before[i]}"
    if [ -n "$skip" ]; then skip=""; continue; fi
    case "$w" in
      --) break ;;
      ${withValue.join("|")}) skip=1; continue ;;
      -*) continue ;;
    esac
    if [ -z "$key" ]; then key="$w"; continue; fi
    case "$key" in
${parents}
    "help"*) key="$key $w" ;;
    esac
    break
  done
  # A value is expected: no completions of our own.
  if [ -n "$skip" ]; then COMPREPLY=(); return; fi
  case "$key" in
    "") words="${topWords.join(" ")}" ;;
    "help") words="${top.join(" ")}" ;;
${helpCases}
${cases}
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _mq mq
`;
    return shell === "zsh" ? `autoload -U +X bashcompinit && bashcompinit\n${body}` : body;
  }
  if (shell === "fish") {
    const lines = [
      `# mq completions for fish: mq completions fish | source`,
      `complete -c mq -f`,
      `# The command path so far: words that are neither options nor option values.`,
      `function __mq_path`,
      `    set -l skip 0`,
      `    for w in (commandline -opc)[2..-1]`,
      `        if test $skip = 1`,
      `            set skip 0`,
      `            continue`,
      `        end`,
      `        switch $w`,
      `            case ${withValue.join(" ")}`,
      `                set skip 1`,
      `            case '-*'`,
      `            case '*'`,
      `                echo $w`,
      `        end`,
      `    end`,
      `end`,
      `# True when the command path is exactly the arguments (none: no command yet).`,
      `function __mq_at`,
      `    set -l path (__mq_path)`,
      `    test (count $path) -eq (count $argv); or return 1`,
      `    test "$path" = "$argv"`,
      `end`,
      `# True inside the command the arguments name (its arguments may follow, not a subcommand).`,
      `function __mq_in`,
      `    set -l path (__mq_path)`,
      `    test (count $path) -ge (count $argv); or return 1`,
      `    test "$path[1..(count $argv)]" = "$argv"; or return 1`,
      `    if set -q path[(math (count $argv) + 1)]`,
      `        not contains -- $path[(math (count $argv) + 1)] (__mq_subcommands $argv)`,
      `    end`,
      `end`,
      `function __mq_subcommands`,
      `    switch "$argv"`,
      ...nodes.filter((n) => n.subcommands.length > 0).flatMap((n) => [
        `        case '${n.path}'`,
        `            printf '%s\\n' ${n.subcommands.join(" ")}`,
      ]),
      `        case ''`,
      `            printf '%s\\n' ${top.join(" ")}`,
      `    end`,
      `end`,
      `complete -c mq -n "__mq_at" -s V -l version -d "print the version"`,
      `complete -c mq -n "__mq_at" -s h -l help -d "show help"`,
    ];
    for (const c of program.commands) {
      lines.push(
        `complete -c mq -n "__mq_at" -a ${c.name()} -d ${
          JSON.stringify(c.summary() || c.description())
        }`,
      );
      lines.push(`complete -c mq -n "__mq_at help" -a ${c.name()}`);
    }
    for (const n of nodes) {
      for (const s of n.subcommands) {
        lines.push(`complete -c mq -n "__mq_at ${n.path}" -a ${s}`);
      }
      for (const o of n.options) {
        lines.push(
          o.startsWith("--")
            ? `complete -c mq -n "__mq_in ${n.path}" -l ${o.slice(2)}`
            : `complete -c mq -n "__mq_in ${n.path}" -s ${o.slice(1)}`,
        );
      }
    }
    return lines.join("\n") + "\n";
  }
  throw new MqError(
    "INVALID_ARGUMENT",
    `no completions for ${JSON.stringify(shell)}: use bash, zsh or fish`,
  );
}

/** Adds `completions` to the program. */
export function registerCompletions(program: Command): void {
  program
    .command("completions")
    .summary("print shell completions: bash, zsh or fish")
    .description("Print a completion script for your shell.")
    .argument("<shell>", "bash, zsh or fish")
    .addHelpText(
      "after",
      `
Examples:
  eval "$(mq completions bash)"        in ~/.bashrc
  eval "$(mq completions zsh)"         in ~/.zshrc
  mq completions fish | source          in ~/.config/fish/config.fish
  mq completions bash > /etc/bash_completion.d/mq`,
    )
    .action(async (shell: string) => {
      await print(completionScript(program, shell));
    });
}
