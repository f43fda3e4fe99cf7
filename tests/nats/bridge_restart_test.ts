/**
 * Faults of `mq bridge --to nats://...` with a stream covering the subjects:
 * the nats-server stops in the middle of a 100,000-message bridge and starts
 * again; the bridge is killed with SIGKILL mid-run and run again. Either way
 * every message is in JetStream exactly once (count and every payload checked
 * with a separate consumer): the position moves only after the broker acked,
 * and `Nats-Msg-Id` makes a resend a no-op.
 */
import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { available, startNats } from "../../scripts/brokers.ts";
import {
  addStream,
  assertNumbered,
  lastStoredAt,
  MQ_MAIN,
  publishNumbered,
  streamCount,
} from "./_nats.ts";

const nats = available("nats-server");
const N = 100_000;

function bridgeTo(url: string, home: string, args: string[] = ["-e"]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MQ_MAIN, "bridge", "--to", url, ...args],
    env: { MQ_HOME: home },
    stdout: "null",
    stderr: "piped",
  }).spawn();
}

/** Resolves once the stream holds at least `atLeast` messages; resolves to the count seen. */
async function waitForCount(port: number, atLeast: number, ms: number): Promise<number> {
  const end = Date.now() + ms;
  for (;;) {
    const n = await streamCount(port, "ORDERS");
    if (n >= atLeast) return n;
    if (Date.now() > end) throw new Error(`the stream held ${n} < ${atLeast} in time`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

Deno.test({
  name: "bridge: a nats-server restart mid-stream loses nothing and duplicates nothing",
  ignore: !nats.ok,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const broker = await startNats();
    const home = await Deno.makeTempDir({ prefix: "mq-bridge-" });
    try {
      await publishNumbered(home, "orders.eu", N);
      await addStream(broker.port, "ORDERS", ["orders.>"]);
      const bridge = bridgeTo(broker.url, home);
      // Stop the broker once part of the stream has arrived, then start it again.
      await waitForCount(broker.port, 1, 30_000);
      await broker.stop({ keepStore: true });
      const stoppedAt = Date.now();
      await new Promise((r) => setTimeout(r, 1500));
      await broker.restart();
      const out = await bridge.output();
      const stderr = new TextDecoder().decode(out.stderr);
      eq(out.code, 0, stderr);
      await assertNumbered(broker.port, "ORDERS", N, true);
      // The broker did stop in the middle: the last message came after the restart.
      ok((await lastStoredAt(broker.port, "ORDERS")).getTime() > stoppedAt, "all had arrived");
      // One line per state change, not one per failed publish.
      const lines = stderr.trim().split("\n");
      const count = (re: RegExp) => lines.filter((l) => re.test(l)).length;
      eq(count(/disconnected from NATS/), 1, stderr);
      eq(count(/reconnected to NATS/), 1, stderr);
      ok(count(/target unavailable/) <= 1, stderr);
      eq(new Set(lines).size, lines.length, stderr);
      ok(lines.at(-1)!.endsWith(`forwarded ${N} messages from 1 topic(s)`), stderr);
    } finally {
      await broker.stop();
      await Deno.remove(home, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "bridge: mq bridge --to killed with SIGKILL mid-run and run again: each message once",
  ignore: !nats.ok,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const broker = await startNats();
    const home = await Deno.makeTempDir({ prefix: "mq-bridge-" });
    try {
      await publishNumbered(home, "orders.eu", N);
      await addStream(broker.port, "ORDERS", ["orders.>"]);
      // Leases of 5 s, not 30: the rerun first waits for the killed run's to expire.
      const first = bridgeTo(broker.url, home, ["-e", "--visibility", "5s"]);
      await waitForCount(broker.port, 20_000, 60_000);
      first.kill("SIGKILL");
      eq((await first.status).signal, "SIGKILL");
      const arrived = await streamCount(broker.port, "ORDERS");
      ok(arrived < N, `all ${N} had arrived before the kill`);
      const again = await bridgeTo(broker.url, home).output();
      const stderr = new TextDecoder().decode(again.stderr);
      eq(again.code, 0, stderr);
      // The second run resent at most what the first had not committed.
      const resent = Number(/forwarded (\d+) messages/.exec(stderr)?.[1]);
      ok(resent <= N - 20_000 + 8192 && resent >= N - arrived, stderr);
      // Each once; not in order: the killed run's leased batch comes back after
      // the group's visibility timeout, behind what the second run sent first.
      await assertNumbered(broker.port, "ORDERS", N, false);
    } finally {
      await broker.stop();
      await Deno.remove(home, { recursive: true }).catch(() => {});
    }
  },
});
