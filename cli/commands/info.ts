/** `mq info`: version and the resolved backend, secrets hidden. */
import type { Call } from "../definition.ts";
import { redactUrl } from "../../core/backend_url.ts";
import { resolveBackend } from "../backend.ts";
import { globals, print } from "../runtime.ts";
import { VERSION } from "../version.ts";
import { builtinRegistry } from "../../adapters/builtin.ts";

/** `mq info`: the version and the backend in use. */
export async function infoCommand(opts: { json?: boolean }, cmd: Call): Promise<void> {
  const backend = resolveBackend(globals(cmd));
  // The registry alone says what the backend can do; the queue client is not
  // needed. A store that does not exist yet (a kv: file) is not made: its
  // capabilities are then unknown (null).
  const capabilities = await builtinRegistry().capabilities(
    backend.url,
    { create: !cmd.reads },
  );
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
      `capabilities: ${
        capabilities
          ? Object.entries(capabilities).map(([k, v]) => `${k}=${v}`).join(" ")
          : "unknown (the store does not exist yet)"
      }`,
    ].join("\n") + "\n",
  );
}
