/** `mq info`: version and the resolved backend, secrets hidden. */
import { type CommandDefinition, load } from "../definition.ts";
import type * as Info from "../commands/info.ts";

/** `mq info`, as a definition. */
export const command: CommandDefinition = {
  name: "info",
  reads: true,
  summary: "show the version and the backend in use",
  description: "Show mq's version, the backend URL in use (secrets as ***) and where it came from.",
  options: [{ long: "json", help: "print JSON" }],
  examples: [
    ["mq info", "version, backend, where it came from, capabilities"],
    ["mq info --json | jq -r .backend", "the backend URL (secrets as ***)"],
    ["MQ_ENV=prod mq info", "what MQ_ENV=prod picks from ./mq.json"],
    ["mq --context dev info"],
  ],
  notes: `
The backend is the first of: --url, MQ_URL, --context / MQ_CONTEXT, MQ_ENV (the
URL of that name in mq.json, or the "mq" key of deno.json, in this folder or
above), the current context (mq context use), file:$MQ_HOME (default
$XDG_DATA_HOME/mq, else ~/.local/share/mq).`,
  run: async (call) => {
    const { infoCommand } = await load<typeof Info>(import.meta.url, "../commands/info.ts");
    await infoCommand(call.options, call);
  },
};
