/**
 * Which backend a command uses, first match wins:
 *
 * 1. `--url URL`
 * 2. `MQ_URL`
 * 3. `--context NAME`, else `MQ_CONTEXT` (a context saved by `mq context add`)
 * 4. `MQ_ENV=NAME`: the URL named so in the project's `mq.json` (or the
 *    `"mq"` key of its `deno.json`), found in the current folder or above
 * 5. the current context (`mq context use NAME`)
 * 6. `file:$MQ_HOME` (default `$XDG_DATA_HOME/mq`, else `~/.local/share/mq`)
 *
 * A context or environment that names an unknown backend, or a file that is
 * not valid, is an `INVALID_ARGUMENT` (exit 2) naming the file.
 */
import { MqError } from "../core/errors.ts";
import { parseBackendUrl } from "../core/backend_url.ts";
import { builtinRegistry } from "../adapters/builtin.ts";
import { contextNamed, describe, isPlainObject, loadContexts } from "./contexts.ts";

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
  /** The context or environment name. */
  context?: string;
  /** The file the URL was read from (contexts.json, mq.json or deno.json). */
  file?: string;
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

/**
 * Checks that `url` parses and names a known backend; `where` prefixes the
 * error (e.g. `context "prod" in /home/me/.config/mq/contexts.json`).
 *
 * @throws {MqError} `INVALID_URL`, `UNKNOWN_SCHEME`
 */
export function checkBackendUrl(url: string, where?: string): void {
  const prefix = where ? `${where}: ` : "";
  let scheme: string;
  try {
    scheme = parseBackendUrl(url).scheme;
  } catch (e) {
    if (MqError.is(e)) throw new MqError(e.code, prefix + e.message, { cause: e });
    throw e;
  }
  const known = builtinRegistry().schemes();
  if (!known.includes(scheme)) {
    throw new MqError(
      "UNKNOWN_SCHEME",
      `${prefix}unknown backend ${JSON.stringify(scheme + ":")}: use one of ${
        known.map((s) => s + ":").join(", ")
      }`,
    );
  }
}

/**
 * `url` with a relative `file:` or `kv:` path made absolute against `dir`
 * (`file:./data` in /p/mq.json is `file:/p/data`); other URLs as they are.
 */
export function absoluteUrl(url: string, dir: string): string {
  const parsed = parseBackendUrl(url);
  const { scheme, body } = parsed;
  const local = scheme === "file" || scheme === "kv";
  if (!local || body === "" || body.startsWith("/")) return url;
  if (scheme === "kv" && (body === ":memory:" || /^https?:/i.test(body))) return url;
  const query = url.slice(url.indexOf(":") + 1 + body.length);
  const base = scheme === "file" ? dir.replace(/[%?#]/g, encodeURIComponent) : dir;
  return `${url.slice(0, scheme.length)}:${joinPath(base, body)}${query}`;
}

/** `rel` under `dir`, with `.` and `..` segments resolved. */
function joinPath(dir: string, rel: string): string {
  const out: string[] = [];
  for (const part of `${dir}/${rel}`.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") out.pop();
    else out.push(part);
  }
  const joined = "/" + out.join("/");
  return rel.endsWith("/") && joined !== "/" ? joined + "/" : joined;
}

/** Resolves the backend URL for the global options given. */
export function resolveBackend(
  opts: { url?: string; context?: string },
): ResolvedBackend {
  if (opts.url) return { url: opts.url, source: "--url" };
  const env = Deno.env.get("MQ_URL");
  if (env) return { url: env, source: "MQ_URL" };
  const named = opts.context ?? Deno.env.get("MQ_CONTEXT");
  if (named) {
    const source = opts.context ? "--context" : "MQ_CONTEXT";
    const store = loadContexts();
    const ctx = contextNamed(store, named);
    if (!ctx) {
      throw new MqError(
        "INVALID_ARGUMENT",
        `unknown context ${JSON.stringify(named)} (from ${source}); known: ${
          Object.keys(store.contexts).join(", ") || "none"
        } in ${store.path}`,
      );
    }
    checkBackendUrl(ctx.url, `context ${JSON.stringify(named)} in ${store.path}`);
    return { url: ctx.url, source, context: named, file: store.path };
  }
  const environment = Deno.env.get("MQ_ENV");
  if (environment) {
    const project = projectEnvironments();
    if (!project) {
      throw new MqError(
        "INVALID_ARGUMENT",
        `MQ_ENV=${environment} is set, but no mq.json (or deno.json with an "mq" key) was found in ${Deno.cwd()} or above`,
      );
    }
    if (!Object.hasOwn(project.environments, environment)) {
      throw new MqError(
        "INVALID_ARGUMENT",
        `MQ_ENV=${environment} is not among the environments of ${project.path}: ${
          Object.keys(project.environments).join(", ") || "none"
        }`,
      );
    }
    const where = `MQ_ENV=${environment} in ${project.path}`;
    const url = project.environments[environment];
    checkBackendUrl(url, where);
    return {
      url: absoluteUrl(url, project.path.slice(0, project.path.lastIndexOf("/")) || "/"),
      source: "MQ_ENV",
      context: environment,
      file: project.path,
    };
  }
  const store = loadContexts();
  if (store.current !== undefined) {
    const ctx = contextNamed(store, store.current);
    if (!ctx) {
      throw new MqError(
        "INVALID_ARGUMENT",
        `the current context ${
          JSON.stringify(store.current)
        } is not in ${store.path}: pick another with mq context use NAME (known: ${
          Object.keys(store.contexts).join(", ") || "none"
        })`,
      );
    }
    checkBackendUrl(ctx.url, `context ${JSON.stringify(store.current)} in ${store.path}`);
    return { url: ctx.url, source: "current context", context: store.current, file: store.path };
  }
  return { url: `file:${defaultHome()}`, source: "default" };
}

/** A project's environments, and the file that names them. */
export interface ProjectEnvironments {
  path: string;
  /** Name to URL (a null-prototype object). */
  environments: Record<string, string>;
}

/**
 * Per-project environments: `mq.json` (or the `"mq"` key of `deno.json`) in
 * the current folder or above,
 * `{ "environments": { "dev": "file:./data", "prod": "nats://..." } }`.
 * Relative `file:` and `kv:` paths are relative to that file's folder.
 *
 * @throws {MqError} `INVALID_ARGUMENT` naming the file when it is not valid
 */
export function projectEnvironments(): ProjectEnvironments | undefined {
  let dir = Deno.cwd();
  for (;;) {
    for (const file of ["mq.json", "deno.json"]) {
      const path = `${dir === "/" ? "" : dir}/${file}`;
      let text: string;
      try {
        // Synchronous: small files, read before anything else can run.
        text = Deno.readTextFileSync(path);
      } catch {
        continue;
      }
      const invalid = (why: string) => new MqError("INVALID_ARGUMENT", `${path} ${why}`);
      let v: unknown;
      try {
        v = JSON.parse(text);
      } catch (e) {
        throw invalid(`is not valid JSON: ${(e as Error).message}`);
      }
      if (file === "deno.json") {
        if (!isPlainObject(v) || !Object.hasOwn(v, "mq")) continue;
        v = v.mq;
      }
      const key = file === "deno.json" ? '"mq"' : "the file";
      if (!isPlainObject(v) || !isPlainObject(v.environments)) {
        throw invalid(
          `is not valid: ${key} must be {"environments": {"NAME": "URL", ...}}`,
        );
      }
      const environments: Record<string, string> = Object.create(null);
      for (const [name, url] of Object.entries(v.environments)) {
        if (typeof url !== "string" || url === "") {
          throw invalid(
            `is not valid: environment ${JSON.stringify(name)} must be a backend URL string, not ${
              describe(url)
            }`,
          );
        }
        environments[name] = url;
      }
      return { path, environments };
    }
    const up = dir.slice(0, dir.lastIndexOf("/")) || "/";
    if (up === dir) return undefined;
    dir = up;
  }
}
