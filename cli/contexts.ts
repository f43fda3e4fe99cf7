/**
 * Named backend URLs (contexts), kept in `$XDG_CONFIG_HOME/mq/contexts.json`
 * (else `~/.config/mq/contexts.json`) with mode 0600.
 */
import { MqError } from "../core/errors.ts";

/** One context. */
export interface Context {
  url: string;
  description?: string;
}

/** The contexts file. */
export interface ContextStore {
  path: string;
  current?: string;
  contexts: Record<string, Context>;
}

/** Where contexts are kept. */
export function contextsPath(): string {
  const xdg = Deno.env.get("XDG_CONFIG_HOME");
  const base = xdg ? `${xdg}/mq` : `${Deno.env.get("HOME") ?? "."}/.config/mq`;
  return `${base}/contexts.json`;
}

/**
 * Reads the contexts file (none yet: an empty store).
 *
 * @throws {MqError} `INVALID_ARGUMENT` when the file is not valid
 */
export async function loadContexts(): Promise<ContextStore> {
  const path = contextsPath();
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { path, contexts: {} };
    throw new MqError("IO", `cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    const v = JSON.parse(text);
    if (!v || typeof v !== "object" || typeof v.contexts !== "object") {
      throw new Error("no contexts object");
    }
    return { path, current: v.current, contexts: v.contexts };
  } catch (e) {
    throw new MqError(
      "INVALID_ARGUMENT",
      `the contexts file ${path} is not valid: ${(e as Error).message}`,
    );
  }
}

/** Writes the contexts file atomically with mode 0600. */
export async function saveContexts(store: ContextStore): Promise<void> {
  const dir = store.path.slice(0, store.path.lastIndexOf("/"));
  await Deno.mkdir(dir, { recursive: true });
  const tmp = `${store.path}.${Deno.pid}.tmp`;
  const body = JSON.stringify({ current: store.current, contexts: store.contexts }, null, 2) + "\n";
  await Deno.writeTextFile(tmp, body, { mode: 0o600 });
  await Deno.chmod(tmp, 0o600);
  await Deno.rename(tmp, store.path);
}
