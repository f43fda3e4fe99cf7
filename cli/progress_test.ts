import { deepStrictEqual as eq } from "node:assert/strict";
import { Progress } from "./progress.ts";

Deno.test("a bridge sink counted for progress keeps its connection-state watch", async () => {
  const lines: string[] = [];
  const sent: string[] = [];
  const sink = {
    send: (topic: string, messages: string[]) => {
      sent.push(`${topic}:${messages.length}`);
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
    watch(onState: (line: string) => void) {
      onState(`watching ${this === sink ? "the sink itself" : "something else"}`);
    },
  };
  const counted = new Progress(true, "bridge").countSends(sink);
  await counted.send("t", ["a", "b"]);
  counted.watch((line) => lines.push(line));
  eq(sent, ["t:2"]);
  eq(lines, ["watching the sink itself"]);
  await counted.close();
});
