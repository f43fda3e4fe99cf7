/** `mq work`: run a command once per message, with retries and dead letters. */
import { type CommandDefinition, load, wholeNumber } from "../definition.ts";
import type * as Work from "../commands/work.ts";

/** `mq work`, as a definition. */
export const command: CommandDefinition = {
  name: "work",
  summary: "run a command per message, with retries and dead letters",
  description: "Run COMMAND once per message of a group, the payload on its stdin.",
  arguments: [
    { name: "topic", required: true, help: "topic to work on", complete: "topic" },
    {
      name: "command",
      required: true,
      variadic: true,
      help: "the command and its arguments (after --)",
      complete: "file",
    },
  ],
  options: [
    {
      long: "group",
      short: "g",
      value: "group",
      help: "the group whose messages to work on",
      default: "default",
      complete: "group",
    },
    {
      long: "concurrency",
      short: "c",
      value: "n",
      help: "commands running at once",
      parse: wholeNumber("--concurrency", 1),
      default: 1,
    },
    {
      long: "max-attempts",
      value: "n",
      help: "attempts before a message is dead-lettered (default: the topic's, 5)",
      parse: wholeNumber("--max-attempts", 1),
    },
    {
      long: "backoff",
      value: "dur[,max]",
      help: "delay before a retry, doubling up to max, with jitter",
      default: "1s,1m",
    },
    {
      long: "visibility",
      value: "dur",
      help: "a run that takes longer is killed and retried",
      default: "5m",
    },
    {
      long: "ordered",
      help: "at most one message per key in flight (per-key order, keys in parallel)",
    },
    { long: "exit", short: "e", help: "exit when the topic is drained and nothing is in flight" },
    {
      long: "count",
      short: "n",
      value: "n",
      help: "stop after N messages",
      parse: wholeNumber("--count", 1),
    },
    {
      long: "grace",
      value: "dur",
      help: "on SIGINT/SIGTERM, how long running commands may finish",
      default: "10s",
    },
    {
      long: "prefetch",
      value: "n",
      help: "messages claimed ahead of the free slots (default: what the slots finish in ~100ms)",
      parse: wholeNumber("--prefetch", 0),
    },
    {
      long: "out",
      value: "topic",
      help: "stdout lines become messages of TOPIC, committed with the input's ack (exactly once)",
      complete: "topic",
    },
    { long: "out-key-from-input", help: "with --out: each output gets the input's key" },
  ],
  examples: [
    ["mq work jobs -- ./handle.sh", "one run per message, payload on stdin"],
    ["mq work jobs -c 4 -e -- python3 job.py", "four at a time, exit when drained"],
    ["mq work mail --max-attempts 3 --backoff 5s,5m -- ./send.sh"],
    ["mq work jobs --visibility 30s -- ./slow.sh", "kill and retry a run that takes longer"],
    ["mq work jobs -e -- ./handle.sh || mq dlq ls jobs", "see what failed, and its stderr"],
    ["mq work raw --out clean -c 4 -e -- ./clean.sh", 'stdout lines become messages of "clean"'],
  ],
  notes: `
The command gets the payload on stdin and MQ_TOPIC, MQ_GROUP, MQ_ID, MQ_OFFSET,
MQ_PARTITION, MQ_KEY, MQ_ATTEMPT and MQ_HEADER_<NAME> in its environment. Exit 0
acks; any other exit retries after the backoff; after --max-attempts the message
moves to the dead-letter topic (<topic>.dlq, see mq dlq) with the last lines of
the command's stderr (at most 2 KiB, header mq-dlq-stderr). A summary line (done,
retried, dead-lettered) goes to stderr unless -q; with -e or -n, mq work exits 1
when any message of the run was dead-lettered (as xargs does). On SIGINT/SIGTERM mq
stops taking and lets running commands finish for --grace; then it stops them
(SIGTERM to the command and what it started, SIGKILL 2s later), releases their
messages without counting an attempt, and exits 0. A second signal ends the
grace at once. On a terminal each command runs in a process group of its own,
so Ctrl-C reaches mq alone.

With --out TOPIC each line the command prints on stdout becomes a message of
TOPIC, and those messages and the input's ack are one transaction: a crash at
any point loses no input and repeats no output (on nats: effectively once, the
outputs' ids derived from the input, deduplicated within TOPIC's dedup window).
--out-key-from-input gives each output the input's key.`,
  run: async (call) => {
    const { workCommand } = await load<typeof Work>(import.meta.url, "../commands/work.ts");
    await workCommand(call.args.topic, call.args.command, call.options as Work.WorkOptions, call);
  },
};
