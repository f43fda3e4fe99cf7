/** `mq info`: version and the resolved backend, secrets hidden. */
import type { Command } from "commander";
import { redactUrl } from "../../core/backend_url.ts";
import { resolveBackend } from "../backend.ts";
import { globals, print } from "../runtime.ts";
import { VERSION } from "../version.ts";
import { connect } from "../../mod.ts";

/** Adds `info` to the program. */
export function registerInfo(program: Command): void {
  program
    .command("info")
    .summary("show the version and the backend in use")
    .description(
      "Show mq's version, the backend URL in use (secrets as ***) and where it came from.",
    )
    .option("--json", "print JSON")
    .addHelpText(
      "after",
      "\nResolution order: --url, MQ_URL, --context / MQ_CONTEXT, the current context, file:$MQ_HOME.",
    )
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
        capabilities,
      };
      if (opts.json) return await print(JSON.stringify(info) + "\n");
      await print(
        [
          `mq ${info.version} (deno ${info.deno})`,
          `backend: ${info.backend}`,
          `from:    ${info.source}${backend.context ? ` (${backend.context})` : ""}`,
          `capabilities: ${Object.entries(capabilities).map(([k, v]) => `${k}=${v}`).join(" ")}`,
        ].join("\n") + "\n",
      );
    });
}
