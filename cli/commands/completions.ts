/** `mq completions bash|zsh|fish`, generated from the command tree. */
import type { Command } from "commander";
import { MqError } from "../../core/errors.ts";
import { print } from "../runtime.ts";

interface Node {
  name: string;
  subcommands: string[];
  options: string[];
}

function walk(cmd: Command): Node[] {
  const out: Node[] = [];
  for (const c of cmd.commands) {
    out.push({
      name: c.name(),
      subcommands: c.commands.map((s) => s.name()),
      options: c.options.flatMap((o) => [o.long, o.short].filter((x): x is string => Boolean(x))),
    });
    for (const s of c.commands) {
      out.push({
        name: `${c.name()} ${s.name()}`,
        subcommands: [],
        options: s.options.flatMap((o) => [o.long, o.short].filter((x): x is string => Boolean(x))),
      });
    }
  }
  return out;
}

/** The completion script for `shell`. */
export function completionScript(program: Command, shell: string): string {
  const nodes = walk(program);
  const top = program.commands.map((c) => c.name());
  const globals = program.options.flatMap((o) =>
    [o.long, o.short].filter((x): x is string => Boolean(x))
  );
  if (shell === "bash" || shell === "zsh") {
    const cases = nodes.map((n) =>
      `    "${n.name}") words="${[...n.subcommands, ...n.options, ...globals].join(" ")}" ;;`
    ).join("\n");
    const body = `# mq completions for ${shell}: eval "$(mq completions ${shell})"
_mq() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" key="" words="${[...top, ...globals].join(" ")}"
  if [ "$COMP_CWORD" -ge 2 ]; then
    key="\${COMP_WORDS[1]}"
    case " ${
      nodes.filter((n) => n.name.includes(" ")).map((n) => n.name.replace(" ", "_")).join(" ")
    } " in
      *" \${COMP_WORDS[1]}_\${COMP_WORDS[2]} "*) [ "$COMP_CWORD" -ge 3 ] && key="\${COMP_WORDS[1]} \${COMP_WORDS[2]}" ;;
    esac
  fi
  case "$key" in
${cases}
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _mq mq
`;
    return shell === "zsh" ? `autoload -U +X bashcompinit && bashcompinit\n${body}` : body;
  }
  if (shell === "fish") {
    const lines = [`# mq completions for fish: mq completions fish | source`, `complete -c mq -f`];
    for (const c of program.commands) {
      lines.push(
        `complete -c mq -n "__fish_use_subcommand" -a ${c.name()} -d ${
          JSON.stringify(c.summary() || c.description())
        }`,
      );
    }
    for (const n of nodes) {
      const [head, sub] = n.name.split(" ");
      const cond = sub
        ? `__fish_seen_subcommand_from ${head}; and __fish_seen_subcommand_from ${sub}`
        : `__fish_seen_subcommand_from ${head}`;
      for (const s of n.subcommands) lines.push(`complete -c mq -n "${cond}" -a ${s}`);
      for (const o of n.options) {
        lines.push(
          o.startsWith("--")
            ? `complete -c mq -n "${cond}" -l ${o.slice(2)}`
            : `complete -c mq -n "${cond}" -s ${o.slice(1)}`,
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
      '\nExamples:\n  eval "$(mq completions bash)"        in ~/.bashrc\n  mq completions fish | source          in ~/.config/fish/config.fish',
    )
    .action(async (shell: string) => {
      await print(completionScript(program, shell));
    });
}
