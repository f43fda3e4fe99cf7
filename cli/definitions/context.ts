/** `mq context add|ls|use|rm|show`: named backend URLs, one per environment. */
import { type CommandDefinition, load } from "../definition.ts";
import type * as Context from "../commands/context.ts";

const impl = () => load<typeof Context>(import.meta.url, "../commands/context.ts");

const add: CommandDefinition = {
  name: "add",
  summary: "add (or replace) a context",
  arguments: [{ name: "name", required: true, complete: "context" }, {
    name: "url",
    required: true,
  }],
  options: [{ long: "description", value: "text", help: "what it is" }],
  examples: [
    ["mq context add dev file:./data", "saved as file:$PWD/data"],
    ['mq context add ci kv:/tmp/ci.sqlite --description "throwaway"'],
    ["mq context add prod 'nats://app:secret@nats.internal:4222'"],
  ],
  run: async (call) => (await impl()).contextAdd(call.args.name, call.args.url, call.options),
};

const ls: CommandDefinition = {
  name: "ls",
  summary: "list contexts; * marks the current one",
  options: [{ long: "json", help: "print JSON (secrets as ***)" }],
  examples: [
    ["mq context ls", "NAME, URL (secrets as ***), DESCRIPTION"],
    ["mq context ls --json | jq -r '.[] | select(.current) | .name'"],
  ],
  run: async (call) => (await impl()).contextList(call.options),
};

const use: CommandDefinition = {
  name: "use",
  summary: "make a context the current one",
  description:
    "Make a context the current one (used when neither --url, MQ_URL nor --context say otherwise).",
  arguments: [{ name: "name", required: true, complete: "context" }],
  examples: [
    ["mq context use prod", "commands without --url / MQ_URL / --context use prod"],
    ["mq context show", "check which backend that is"],
  ],
  run: async (call) => (await impl()).contextUse(call.args.name),
};

const rm: CommandDefinition = {
  name: "rm",
  summary: "remove a context",
  arguments: [{ name: "name", required: true, complete: "context" }],
  examples: [["mq context rm old", 'forget "old" (the current context too, if it was)']],
  run: async (call) => (await impl()).contextRemove(call.args.name),
};

const show: CommandDefinition = {
  name: "show",
  summary: "show the backend this command line would use, and why",
  options: [{ long: "json", help: "print JSON: url (secrets as ***), source, context" }],
  examples: [
    ["mq context show", "e.g. file:/home/me/.local/share/mq (from default)"],
    ["MQ_ENV=prod mq context show", "what MQ_ENV=prod picks from ./mq.json"],
    ["mq --context dev context show"],
    ["mq context show --json | jq -r .url"],
  ],
  run: async (call) => (await impl()).contextShow(call, call.options),
};

/** `mq context`, as a definition. */
export const command: CommandDefinition = {
  name: "context",
  summary: "named backend URLs: add, ls, use, rm, show",
  description: "Named backend URLs, so that switching environments is one word.",
  subcommands: [add, ls, use, rm, show],
  examples: [
    ['mq context add dev file:./data --description "my laptop"'],
    ["mq context add prod 'nats://app:secret@nats.internal:4222'"],
    ["mq context use prod", "every command now uses prod"],
    ["MQ_CONTEXT=dev mq topics", "one command on dev"],
    ["mq --context dev sub orders -e"],
    ["mq context ls", "passwords and tokens shown as ***"],
  ],
  notes: `
Contexts live in $XDG_CONFIG_HOME/mq/contexts.json (else ~/.config/mq/, mode
0600). A relative file: or kv: path is made absolute when the context is added.
Resolution order: --url, MQ_URL, --context / MQ_CONTEXT, MQ_ENV (mq.json), the
current context, file:$MQ_HOME.`,
};
