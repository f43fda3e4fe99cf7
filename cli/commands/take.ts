/** `mq take`, `mq ack`, `mq nack`: leased messages for scripts in any language. */
import type { Command } from "commander";
import { MqError } from "../../core/errors.ts";
import { assertName } from "../../core/names.ts";
import { parseDuration } from "../../core/duration.ts";
import { toEnvelope } from "../envelope.ts";
import { note, openBackend, print } from "../runtime.ts";

const TAKE_EXAMPLES = `
Examples:
  job=$(mq take jobs 2>/tmp/r) && ./handle "$job" && mq ack jobs "$(sed 's/^receipt: //' /tmp/r)"
  mq take jobs --wait 30s --format json    the envelope, with its "receipt"
  mq nack jobs <receipt> --delay 1m        deliver it again in a minute

A lease not settled within --visibility is delivered again.`;

/** Adds `take`, `ack` and `nack` to the program. */
export function registerTake(program: Command): void {
  program
    .command("take")
    .summary("lease one message and print it (settle it with mq ack / mq nack)")
    .description(
      "Lease one message of a group, print its payload, and print `receipt: <R>` on stderr.",
    )
    .argument("<topic>")
    .option("-g, --group <group>", "the group", "default")
    .option("--visibility <dur>", "how long the lease lasts", "30s")
    .option("--wait <dur>", "wait this long for a message (exit 3 if none)")
    .option("-f, --format <format>", "raw or json", "raw")
    .addHelpText("after", TAKE_EXAMPLES)
    .action(
      async (
        topic: string,
        opts: { group: string; visibility: string; wait?: string; format: string },
        cmd: Command,
      ) => {
        assertName("topic", topic);
        assertName("group", opts.group);
        if (opts.format !== "raw" && opts.format !== "json") {
          throw new MqError(
            "INVALID_ARGUMENT",
            `--format must be raw or json, not ${JSON.stringify(opts.format)}`,
          );
        }
        const visibilityMs = parseDuration(opts.visibility);
        const waitMs = opts.wait === undefined ? 0 : parseDuration(opts.wait);
        const { mq } = await openBackend(cmd);
        const stop = new AbortController();
        const timer = waitMs > 0 ? setTimeout(() => stop.abort(), waitMs) : undefined;
        try {
          const sub = mq.subscribe(topic, {
            group: opts.group,
            follow: waitMs > 0,
            // Without --wait: what is deliverable now, or exit 3 at once (not
            // waiting for others' leases or for retries to come due).
            awaitInFlight: false,
            count: 1,
            batchSize: 1,
            visibilityMs,
            signal: stop.signal,
          });
          const batch = await sub.take(1);
          await sub.detach();
          if (!batch || batch.length === 0) {
            throw new MqError(
              "TIMEOUT",
              waitMs > 0
                ? `no message arrived within ${opts.wait}`
                : `no message is available in "${topic}"`,
            );
          }
          const m = batch[0];
          if (opts.format === "json") await print(toEnvelope(m, { receipt: m.receipt }) + "\n");
          else {
            const out = new Uint8Array(m.payload.length + 1);
            out.set(m.payload);
            out[m.payload.length] = 10;
            let n = 0;
            while (n < out.length) n += await Deno.stdout.write(out.subarray(n));
          }
          note(`receipt: ${m.receipt}`);
        } finally {
          clearTimeout(timer);
          await mq.close();
        }
      },
    );

  program
    .command("ack")
    .summary("settle a taken message as done")
    .description("Ack the message a receipt (from mq take) names.")
    .argument("<topic>")
    .argument("<receipt>")
    .addHelpText(
      "after",
      `
Examples:
  r=$(mq take jobs 2>&1 >job.txt | sed -n 's/^receipt: //p')
  ./handle < job.txt && mq ack jobs "$r"     done: never delivered again`,
    )
    .action(async (topic: string, receipt: string, _opts: unknown, cmd: Command) => {
      assertName("topic", topic);
      const { mq } = await openBackend(cmd);
      try {
        await mq.ack(topic, receipt);
      } finally {
        await mq.close();
      }
    });

  program
    .command("nack")
    .summary("give a taken message back for another attempt")
    .description(
      "Nack the message a receipt names: delivered again after --delay (default: backoff), dead-lettered on its last attempt.",
    )
    .argument("<topic>")
    .argument("<receipt>")
    .option("--delay <dur>", "deliver it again after this long")
    .option("--reason <text>", "why it failed (kept in the dead letter's headers)")
    .addHelpText(
      "after",
      `
Examples:
  mq nack jobs "$r"                          again after the backoff
  mq nack jobs "$r" --delay 5m --reason "upstream down"`,
    )
    .action(
      async (
        topic: string,
        receipt: string,
        opts: { delay?: string; reason?: string },
        cmd: Command,
      ) => {
        assertName("topic", topic);
        const delayMs = opts.delay === undefined ? undefined : parseDuration(opts.delay);
        const { mq } = await openBackend(cmd);
        try {
          await mq.nack(topic, receipt, { delayMs, reason: opts.reason });
        } finally {
          await mq.close();
        }
      },
    );
}
