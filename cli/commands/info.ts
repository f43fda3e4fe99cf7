/** `mq info`: version and the resolved backend, secrets hidden. */
import type { Command } from "commander";
import { redactUrl } from "../../core/backend_url.ts";
import { resolveBackend } from "../backend.ts";
import { globals, print } from "../runtime.ts";
import { VERSION } from "../version.ts";
import { connect } from "../../mod.ts";

const EXAMPLES = `
Examples:
  mq info                             version, backend, where it came from, capabilities
  mq info --json | jq -r .backend     the backend URL (secrets as ***)
  MQ_ENV=prod mq info                 what MQ_ENV=prod picks from ./mq.json
  mq --context dev info

The backend is the first of: --url, MQ_URL, --context / MQ_CONTEXT, MQ_ENV (the
URL of that name in mq.json, or the "mq" key of deno.json, in this folder or
above), the current context (mq context use), file:$MQ_HOME (default
$XDG_DATA_HOME/mq, else ~/.local/share/mq).`;

/** Adds `info` to the program. */
export function registerInfo(program: Command): void {
  program
    .command("info")
    .summary("show the version and the backend in use")
    .description(
      "Show mq's version, the backend URL in use (secrets as ***) and where it came from.",
    )
    .option("--json", "print JSON")
    .addHelpText("after", EXAMPLES)
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const backend = await resolveBackend(globals(cmd));
      const mq = await connect(backend.url);
      const capabilities = mq.adapter.capabilities;
      await mq.close();
      const info = {
        version: VERSION,
        deno: Deno.version.deno,
        backend: redactUrl(backend.url),
        source: backend.source,
        ...(backend.context ? { context: backend.context } : {}),
        ...(backend.file ? { file: backend.file } : {}),
        capabilities,
      };
      if (opts.json) return await print(JSON.stringify(info) + "\n");
      await print(
        [
          `mq ${info.version} (deno ${info.deno})`,
          `backend: ${info.backend}`,
          `from:    ${info.source}${backend.context ? ` (${backend.context})` : ""}${
            backend.file ? ` in ${backend.file}` : ""
          }`,
          `capabilities: ${Object.entries(capabilities).map(([k, v]) => `${k}=${v}`).join(" ")}`,
        ].join("\n") + "\n",
      );
    });
}
