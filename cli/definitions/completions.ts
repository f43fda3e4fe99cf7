/** `mq completions bash|zsh|fish`. */
import { type CommandDefinition, load, oneOf } from "../definition.ts";
import type * as Complete from "../complete.ts";

/** The shells `mq completions` writes a script for. */
export const SHELLS: readonly string[] = ["bash", "zsh", "fish"];

/** `mq completions`, as a definition. */
export const command: CommandDefinition = {
  name: "completions",
  summary: "print shell completions: bash, zsh or fish",
  description:
    "Print a completion script for your shell. It completes commands, subcommands and flags, and asks mq for topic, group, exchange and context names (reading the store, never writing it).",
  arguments: [{ name: "shell", required: true, help: "bash, zsh or fish", complete: SHELLS }],
  examples: [
    [`eval "$(mq completions bash)"`, "in ~/.bashrc"],
    [`eval "$(mq completions zsh)"`, "in ~/.zshrc"],
    ["mq completions fish | source", "in ~/.config/fish/config.fish"],
    ["mq completions bash > /etc/bash_completion.d/mq"],
  ],
  run: async (call) => {
    const shell = call.args.shell as string;
    const { completionScript, printLines } = await load<typeof Complete>(
      import.meta.url,
      "../complete.ts",
    );
    try {
      oneOf("shell", SHELLS)(shell);
    } catch {
      const { MqError } = await import("../../core/errors.ts");
      throw new MqError(
        "INVALID_ARGUMENT",
        `no completions for ${JSON.stringify(shell)}: use bash, zsh or fish`,
      );
    }
    await printLines([completionScript(shell)]);
  },
};
