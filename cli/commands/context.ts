/** `mq context add|ls|use|rm|show`: named backend URLs, one per environment. */
import type { Command } from "commander";
import { MqError } from "../../core/errors.ts";
import { assertName } from "../../core/names.ts";
import { redactUrl } from "../../core/backend_url.ts";
import { contextNamed, loadContexts, saveContexts } from "../contexts.ts";
import { absoluteUrl, checkBackendUrl, resolveBackend } from "../backend.ts";
import { globals, note, print } from "../runtime.ts";
import { table } from "./topics.ts";

const EXAMPLES = `
Examples:
  mq context add dev file:./data --description "my laptop"
  mq context add prod 'nats://app:secret@nats.internal:4222'
  mq context use prod                 every command now uses prod
  MQ_CONTEXT=dev mq topics            one command on dev
  mq --context dev sub orders -e
  mq context ls                       passwords and tokens shown as ***

Contexts live in $XDG_CONFIG_HOME/mq/contexts.json (else ~/.config/mq/, mode
0600). A relative file: or kv: path is made absolute when the context is added.
Resolution order: --url, MQ_URL, --context / MQ_CONTEXT, MQ_ENV (mq.json), the
current context, file:$MQ_HOME.`;

const ADD_EXAMPLES = `
Examples:
  mq context add dev file:./data                 saved as file:$PWD/data
  mq context add ci kv:/tmp/ci.sqlite --description "throwaway"
  mq context add prod 'nats://app:secret@nats.internal:4222'`;

const LS_EXAMPLES = `
Examples:
  mq context ls                       NAME, URL (secrets as ***), DESCRIPTION
  mq context ls --json | jq -r '.[] | select(.current) | .name'`;

const USE_EXAMPLES = `
Examples:
  mq context use prod                 commands without --url / MQ_URL / --context use prod
  mq context show                     check which backend that is`;

const RM_EXAMPLES = `
Examples:
  mq context rm old                   forget "old" (the current context too, if it was)`;

const SHOW_EXAMPLES = `
Examples:
  mq context show                     e.g. file:/home/me/.local/share/mq (from default)
  MQ_ENV=prod mq context show         what MQ_ENV=prod picks from ./mq.json
  mq --context dev context show
  mq context show --json | jq -r .url`;

function unknownContext(name: string, path: string): MqError {
  return new MqError("INVALID_ARGUMENT", `unknown context ${JSON.stringify(name)} in ${path}`);
}

/** Adds `context` to the program. */
export function registerContext(program: Command): void {
  const ctx = program
    .command("context")
    .summary("named backend URLs: add, ls, use, rm, show")
    .description("Named backend URLs, so that switching environments is one word.")
    .addHelpText("after", EXAMPLES);

  ctx.command("add")
    .description("Add (or replace) a context.")
    .argument("<name>")
    .argument("<url>")
    .option("--description <text>", "what it is")
    .addHelpText("after", ADD_EXAMPLES)
    .action(async (name: string, url: string, opts: { description?: string }) => {
      assertName("context", name);
      checkBackendUrl(url);
      url = absoluteUrl(url, Deno.cwd());
      const store = await loadContexts();
      store.contexts[name] = {
        url,
        ...(opts.description ? { description: opts.description } : {}),
      };
      await saveContexts(store);
      note(`mq: context "${name}" is ${redactUrl(url)}`);
    });

  ctx.command("ls")
    .description("List contexts; * marks the current one.")
    .option("--json", "print JSON (secrets as ***)")
    .addHelpText("after", LS_EXAMPLES)
    .action(async (opts: { json?: boolean }) => {
      const store = await loadContexts();
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
    });

  ctx.command("use")
    .description(
      "Make a context the current one (used when neither --url, MQ_URL nor --context say otherwise).",
    )
    .argument("<name>")
    .addHelpText("after", USE_EXAMPLES)
    .action(async (name: string) => {
      const store = await loadContexts();
      const ctx = contextNamed(store, name);
      if (!ctx) throw unknownContext(name, store.path);
      store.current = name;
      await saveContexts(store);
      note(`mq: now using context "${name}" (${redactUrl(ctx.url)})`);
    });

  ctx.command("rm")
    .description("Remove a context.")
    .argument("<name>")
    .addHelpText("after", RM_EXAMPLES)
    .action(async (name: string) => {
      const store = await loadContexts();
      if (!contextNamed(store, name)) throw unknownContext(name, store.path);
      delete store.contexts[name];
      if (store.current === name) store.current = undefined;
      await saveContexts(store);
      note(`mq: removed context "${name}"`);
    });

  ctx.command("show")
    .description("Show the backend this command line would use, and why.")
    .option("--json", "print JSON: url (secrets as ***), source, context")
    .addHelpText("after", SHOW_EXAMPLES)
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const b = await resolveBackend(globals(cmd));
      if (opts.json) {
        const shown = { url: redactUrl(b.url), source: b.source, context: b.context ?? null };
        return await print(JSON.stringify(shown) + "\n");
      }
      await print(`${redactUrl(b.url)} (from ${b.source}${b.context ? `: ${b.context}` : ""})\n`);
    });
}
