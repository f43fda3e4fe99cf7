/** `mq ui`: the web dashboard, its JSON API and metrics, on loopback. */
import { type CommandDefinition, load, wholeNumber } from "../definition.ts";
import type * as Ui from "../commands/ui.ts";

/** `mq ui`, as a definition. */
export const command: CommandDefinition = {
  name: "ui",
  summary: "serve the web dashboard (topics, groups, dead letters, exchanges)",
  description:
    "Serve the dashboard on loopback; the first line on stdout is its address with the access token. The JSON API (/api/...) and GET /metrics take the token as Authorization: Bearer T.",
  options: [
    {
      long: "host",
      value: "host",
      help: "address to listen on (not loopback: needs --token)",
      default: "127.0.0.1",
    },
    {
      long: "port",
      value: "port",
      help: "port (0: any free one)",
      parse: wholeNumber("--port"),
      default: 8977,
    },
    { long: "read-only", help: "hide and refuse every writing action" },
    { long: "token", value: "token", help: "the access token (also MQ_UI_TOKEN; default: random)" },
  ],
  examples: [
    ["mq ui", "open the printed address in a browser"],
    ["mq ui --read-only --port 9000"],
    ["MQ_UI_TOKEN=s3cret-token mq ui --host 0.0.0.0"],
    ['curl -H "Authorization: Bearer $T" http://127.0.0.1:8977/api/overview'],
  ],
  run: async (call) => {
    const { uiCommand } = await load<typeof Ui>(import.meta.url, "../commands/ui.ts");
    await uiCommand(call.options as Parameters<typeof uiCommand>[0], call);
  },
};
