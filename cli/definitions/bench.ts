/** `mq bench pub|sub|work`: throughput and latency on the resolved backend. */
import { type CommandDefinition, load, wholeNumber } from "../definition.ts";
import type * as Bench from "../commands/bench.ts";

/** `mq bench`, as a definition. */
export const command: CommandDefinition = {
  name: "bench",
  summary: "measure messages/s, MB/s and latency on the current backend",
  description:
    "Publish N messages of a size to a throwaway topic while reading them back; report messages/s, MB/s and publish->receive latency percentiles.",
  arguments: [{
    name: "mode",
    help: "pub, sub or work",
    default: "pub",
    complete: ["pub", "sub", "work"],
  }],
  options: [
    {
      long: "count",
      short: "n",
      value: "n",
      help: "messages",
      parse: wholeNumber("--count", 1),
      default: 10000,
    },
    {
      long: "size",
      value: "bytes",
      help: "payload bytes per message",
      parse: wholeNumber("--size"),
      default: 128,
    },
    {
      long: "batch",
      value: "n",
      help: "messages per publish call",
      parse: wholeNumber("--batch", 1),
      default: 100,
    },
    { long: "json", help: "print the report as one JSON object on stdout" },
  ],
  examples: [
    ["mq bench", "pub: 10000 messages of 128 bytes"],
    ["mq bench pub -n 20000 --size 1024", "publish throughput and publish->receive latency"],
    ["mq bench sub --json", "end-to-end receive throughput, as JSON"],
    ["mq bench work --batch 10", "a group that takes and acks, small batches"],
    ["mq --url kv:./bench.sqlite bench", "the same on Deno KV"],
  ],
  notes: `
Modes: pub (messages/s of publishing), sub (of receiving, without a group),
work (of taking and acking as a group member). In every mode a reader runs
alongside the publisher and latency is publish->receive (from the start of the
publish call of a message's batch to its arrival): p50, p99, p99.9.
A throwaway topic (mq-bench-...) is created and removed afterwards.
--json prints one object: mode, backend, messages, size, batch, seconds,
msgs_per_sec, mb_per_sec, p50_ms, p99_ms, p999_ms.`,
  run: async (call) => {
    const { benchCommand } = await load<typeof Bench>(import.meta.url, "../commands/bench.ts");
    await benchCommand(call.args.mode, call.options as Bench.BenchOptions, call);
  },
};
