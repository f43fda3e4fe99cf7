/**
 * Which backend a command uses: `--url`, then `MQ_URL`, then a context
 * (`--context` / `MQ_CONTEXT`), then `file:$MQ_HOME` (default
 * `$XDG_DATA_HOME/mq`, else `~/.local/share/mq`).
 */
import { MqError } from "../core/errors.ts";
import { loadContexts } from "./contexts.ts";

/** A resolved backend URL and where it came from. */
export interface ResolvedBackend {
  url: string;
  source:
    | "--url"
    | "MQ_URL"
    | "--context"
    | "MQ_CONTEXT"
    | "MQ_ENV"
    | "current context"
    | "default";
  context?: string;
}

/** The default data folder. */
export function defaultHome(): string {
  const home = Deno.env.get("MQ_HOME");
  if (home) return home;
  const xdg = Deno.env.get("XDG_DATA_HOME");
  if (xdg) return `${xdg}/mq`;
  const user = Deno.env.get("HOME");
  if (!user) {
    throw new MqError(
      "INVALID_ARGUMENT",
      "cannot find a data folder: set MQ_HOME, XDG_DATA_HOME or HOME",
    );
  }
  return `${user}/.local/share/mq`;
}

/** Resolves the backend URL for the global options given. */
export async function resolveBackend(
  opts: { url?: string; context?: string },
): Promise<ResolvedBackend> {
  if (opts.url) return { url: opts.url, source: "--url" };
  const env = Deno.env.get("MQ_URL");
  if (env) return { url: env, source: "MQ_URL" };
  const named = opts.context ?? Deno.env.get("MQ_CONTEXT");
  const source = opts.context ? "--context" : "MQ_CONTEXT";
  const store = await loadContexts();
  if (named) {
    const ctx = store.contexts[named];
    if (!ctx) {
      throw new MqError(
        "INVALID_ARGUMENT",
        `unknown context ${JSON.stringify(named)} (from ${source}); known: ${
          Object.keys(store.contexts).join(", ") || "none"
        } in ${store.path}`,
      );
    }
    return { url: ctx.url, source, context: named };
  }
  const environment = Deno.env.get("MQ_ENV");
  if (environment) {
    const project = await projectEnvironments();
    const url = project?.environments[environment];
    if (!url) {
      throw new MqError(
        "INVALID_ARGUMENT",
        project
          ? `MQ_ENV=${environment} is not among the environments of ${project.path}: ${
            Object.keys(project.environments).join(", ") || "none"
          }`
          : `MQ_ENV=${environment} is set, but no mq.json (or deno.json with an "mq" key) was found here or above`,
      );
    }
    return { url, source: "MQ_ENV", context: environment };
  }
  if (store.current && store.contexts[store.current]) {
    return {
      url: store.contexts[store.current].url,
      source: "current context",
      context: store.current,
    };
  }
  return { url: `file:${defaultHome()}`, source: "default" };
}

/**
 * Per-project environments: `mq.json` (or the `"mq"` key of `deno.json`) in
 * the current folder or above, `{ "environments": { "dev": "file:./data", "prod": "nats://..." } }`.
 */
export async function projectEnvironments(): Promise<
  { path: string; environments: Record<string, string> } | undefined
> {
  let dir = Deno.cwd();
  for (;;) {
    for (
      const [file, pick] of [["mq.json", (v: any) => v], ["deno.json", (v: any) => v?.mq]] as const
    ) {
      const path = `${dir}/${file}`;
      let text: string;
      try {
        text = await Deno.readTextFile(path);
      } catch {
        continue;
      }
      let v: unknown;
      try {
        v = pick(JSON.parse(text));
      } catch (e) {
        throw new MqError("INVALID_ARGUMENT", `${path} is not valid JSON: ${(e as Error).message}`);
      }
      const envs = (v as { environments?: unknown } | undefined)?.environments;
      if (envs && typeof envs === "object") {
        return { path, environments: envs as Record<string, string> };
      }
    }
    const up = dir.slice(0, dir.lastIndexOf("/")) || "/";
    if (up === dir) return undefined;
    dir = up;
  }
}
