/**
 * Named backend URLs (contexts), kept in `$XDG_CONFIG_HOME/mq/contexts.json`
 * (else `~/.config/mq/contexts.json`) with mode 0600:
 * `{ "current": "dev", "contexts": { "dev": { "url": "file:/abs/data", "description": "..." } } }`.
 *
 * The file is checked as a whole when read: an object, `contexts` an object of
 * objects with a string `url`, `current` a string. Anything else is an
 * `INVALID_ARGUMENT` (exit 2) naming the file, and nothing is written.
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
  /** By name; a null-prototype object, so `toString` or `constructor` is no context. */
  contexts: Record<string, Context>;
}

/** Where contexts are kept. */
export function contextsPath(): string {
  const xdg = Deno.env.get("XDG_CONFIG_HOME");
  const base = xdg ? `${xdg}/mq` : `${Deno.env.get("HOME") ?? "."}/.config/mq`;
  return `${base}/contexts.json`;
}

/** True for `{...}` (not null, not an array). */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The context called `name`, if the store has one (own keys only). */
export function contextNamed(store: ContextStore, name: string): Context | undefined {
  return Object.hasOwn(store.contexts, name) ? store.contexts[name] : undefined;
}

/**
 * Reads the contexts file (none yet: an empty store).
 *
 * @throws {MqError} `INVALID_ARGUMENT` naming the file when it is not valid; `IO`
 */
export function loadContexts(): ContextStore {
  const path = contextsPath();
  let text: string;
  try {
    // Synchronous: a small file (usually missing) read on every start.
    text = Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { path, contexts: Object.create(null) };
    throw new MqError("IO", `cannot read ${path}: ${(e as Error).message}`);
  }
  const invalid = (why: string) =>
    new MqError("INVALID_ARGUMENT", `the contexts file ${path} is not valid: ${why}`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw invalid(`not JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(v)) throw invalid('expected an object with a "contexts" object');
  const contexts: Record<string, Context> = Object.create(null);
  const given = Object.hasOwn(v, "contexts") ? v.contexts : {};
  if (!isPlainObject(given)) {
    throw invalid(`"contexts" must be an object of NAME: {"url": URL}, not ${describe(given)}`);
  }
  for (const name of Object.keys(given)) {
    const c = given[name];
    if (!isPlainObject(c) || typeof c.url !== "string" || c.url === "") {
      throw invalid(`context ${JSON.stringify(name)} must be {"url": "..."}, not ${describe(c)}`);
    }
    if (Object.hasOwn(c, "description") && typeof c.description !== "string") {
      throw invalid(`the description of context ${JSON.stringify(name)} must be a string`);
    }
    contexts[name] = {
      url: c.url,
      ...(typeof c.description === "string" ? { description: c.description } : {}),
    };
  }
  const current = Object.hasOwn(v, "current") ? v.current : undefined;
  if (current !== undefined && current !== null && typeof current !== "string") {
    throw invalid(`"current" must be a context name, not ${describe(current)}`);
  }
  return { path, ...(typeof current === "string" ? { current } : {}), contexts };
}

/** A short description of a JSON value for an error line. */
export function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return "an object";
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}

/** Writes the contexts file atomically with mode 0600. */
export async function saveContexts(store: ContextStore): Promise<void> {
  const dir = store.path.slice(0, store.path.lastIndexOf("/"));
  await Deno.mkdir(dir, { recursive: true });
  const tmp = `${store.path}.${Deno.pid}.tmp`;
  const contexts = Object.fromEntries(Object.entries(store.contexts));
  const body = JSON.stringify({ current: store.current, contexts }, null, 2) + "\n";
  try {
    await Deno.writeTextFile(tmp, body, { mode: 0o600 });
    await Deno.chmod(tmp, 0o600);
    await Deno.rename(tmp, store.path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}
