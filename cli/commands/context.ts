/** `mq context add|ls|use|rm|show`: named backend URLs, one per environment. */
import type { Call } from "../definition.ts";
import { checkUrlFully } from "../../adapters/builtin.ts";
import { MqError } from "../../core/errors.ts";
import { assertName } from "../../connect.ts";
import { redactUrl } from "../../core/backend_url.ts";
import { contextNamed, loadContexts, saveContexts } from "../contexts.ts";
import { absoluteUrl, checkBackendUrl, resolveBackend } from "../backend.ts";
import { globals, note, print } from "../runtime.ts";
import { table } from "../format.ts";

function unknownContext(name: string, path: string): MqError {
  return new MqError("INVALID_ARGUMENT", `unknown context ${JSON.stringify(name)} in ${path}`);
}

/** `mq context add <name> <url>`: a context added (or replaced). */
export async function contextAdd(
  name: string,
  url: string,
  opts: { description?: string },
): Promise<void> {
  assertName("context", name);
  checkBackendUrl(url);
  await checkUrlFully(url);
  url = absoluteUrl(url, Deno.cwd());
  const store = loadContexts();
  store.contexts[name] = {
    url,
    ...(opts.description ? { description: opts.description } : {}),
  };
  await saveContexts(store);
  note(`mq: context "${name}" is ${redactUrl(url)}`);
}

/** `mq context ls`: the contexts, the current one marked. */
export async function contextList(opts: { json?: boolean }): Promise<void> {
  const store = loadContexts();
  const rows = Object.entries(store.contexts).sort(([a], [b]) => a.localeCompare(b));
  if (opts.json) {
    return await print(
      JSON.stringify(
        rows.map(([name, c]) => ({
          name,
          url: redactUrl(c.url),
          description: c.description,
          current: name === store.current,
        })),
      ) +
        "\n",
    );
  }
  if (rows.length === 0) return note("mq: no contexts yet (mq context add NAME URL)");
  await print(
    table(
      ["", "NAME", "URL", "DESCRIPTION"],
      rows.map((
        [n, c],
      ) => [n === store.current ? "*" : "", n, redactUrl(c.url), c.description ?? ""]),
    ),
  );
}

/** `mq context use <name>`: the current context set. */
export async function contextUse(name: string): Promise<void> {
  const store = loadContexts();
  const ctx = contextNamed(store, name);
  if (!ctx) throw unknownContext(name, store.path);
  store.current = name;
  await saveContexts(store);
  note(`mq: now using context "${name}" (${redactUrl(ctx.url)})`);
}

/** `mq context rm <name>`: a context removed. */
export async function contextRemove(name: string): Promise<void> {
  const store = loadContexts();
  if (!contextNamed(store, name)) throw unknownContext(name, store.path);
  delete store.contexts[name];
  if (store.current === name) store.current = undefined;
  await saveContexts(store);
  note(`mq: removed context "${name}"`);
}

/** `mq context show`: the backend this command line would use, and why. */
export async function contextShow(cmd: Call, opts: { json?: boolean } = {}): Promise<void> {
  const b = resolveBackend(globals(cmd));
  if (opts.json) {
    const shown = { url: redactUrl(b.url), source: b.source, context: b.context ?? null };
    return await print(JSON.stringify(shown) + "\n");
  }
  await print(`${redactUrl(b.url)} (from ${b.source}${b.context ? `: ${b.context}` : ""})\n`);
}
