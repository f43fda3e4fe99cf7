/**
 * `mq bridge` to and from Kafka, on librdkafka's mock cluster (held by a
 * `kcat` process for this file), checked with `kcat -C` / `kcat -P` as the
 * other program.
 */
import { deepStrictEqual as eq } from "node:assert/strict";
import { available, type KafkaMock, startKafkaMock } from "../../scripts/brokers.ts";
import { errorLine, mq, spawnMq, withHome } from "../cli/_mq.ts";
import { assertWithinWindow, recordingTarget } from "../_store_windows.ts";
import { parseBackendUrl } from "../../core/backend_url.ts";
import { bridgeInto } from "../../adapters/kafka/_bridge.ts";

const dec = new TextDecoder();
const kcat = available("kcat");

/** Runs kcat against the mock; resolves to its stdout. */
async function kcatRun(k: KafkaMock, args: string[], stdin?: string): Promise<string> {
  const child = new Deno.Command("kcat", {
    args: ["-b", k.bootstrap, ...args],
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  if (!out.success) throw new Error(`kcat ${args.join(" ")}: ${dec.decode(out.stderr)}`);
  return dec.decode(out.stdout);
}

/** Every record of a topic as `kcat -f` prints it, one string each. */
async function records(k: KafkaMock, topic: string, format: string): Promise<string[]> {
  const out = await kcatRun(k, ["-C", "-t", topic, "-e", "-q", "-f", format + "\\x1e"]);
  return out === "" ? [] : out.split("\x1e").slice(0, -1);
}

async function payloads(home: string, topic: string): Promise<string[]> {
  const r = await mq(home, ["sub", topic, "-e"]);
  eq(r.code, 0, r.err);
  return r.out === "" ? [] : r.out.slice(0, -1).split("\n");
}

const numbered = (n: number, prefix = "m-") => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
const sorted = (a: string[]) => [...a].sort();

async function waitUntil(what: string, ok: () => Promise<boolean>, ms = 60_000) {
  const until = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > until) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

Deno.test({
  name: "bridge kafka: the mock cluster both ways, faults and bad input",
  ignore: !kcat.ok,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const k = await startKafkaMock();
    try {
      await t.step(
        "100,000 out with keys: exact, per-key order, as kcat reads them",
        () =>
          withHome(async (home) => {
            const sent = numbered(100_000).map((p, i) => `k${i % 13}:${p}`);
            eq(
              (await mq(home, ["pub", "big", "-K", ":"], { stdin: sent.join("\n") + "\n" })).code,
              0,
            );
            const out = await mq(home, ["bridge", "--to", k.url, "--topics", "big", "-e", "-q"]);
            eq([out.code, out.err], [0, ""]);
            // kcat sees every record once, with its key, per key in order.
            const seen = await records(k, "big", "%k:%s");
            eq(seen.length, 100_000);
            eq(sorted(seen), sorted(sent));
            const perKey = (list: string[], key: string) =>
              list.filter((l) => l.startsWith(`${key}:`));
            eq(perKey(seen, "k7"), perKey(sent, "k7"));
          }),
      );

      await t.step(
        "100,000 in from kcat -P: exact, ids from partition and offset, a rerun adds none",
        () =>
          withHome(async (home) => {
            const sent = numbered(100_000, "p-");
            await kcatRun(
              k,
              ["-P", "-t", "lines", "-K", "\t"],
              sent.map((s) => `key-${s}\t${s}`).join("\n") + "\n",
            );
            const r = await mq(home, [
              "bridge",
              "--from",
              k.url,
              "--subjects",
              "lines",
              "--into",
              "in",
              "-e",
              "-q",
            ]);
            eq([r.code, r.err], [0, ""]);
            const got = await payloads(home, "in");
            eq(got.length, 100_000);
            eq(sorted(got), sorted(sent));
            const first = JSON.parse(
              (await mq(home, ["sub", "in", "-e", "-n", "1", "--format", "json"])).out,
            );
            eq(
              first.id,
              `kafka:lines:${first.headers["kafka-partition"]}:${first.headers["kafka-offset"]}`,
            );
            eq([first.key, first.headers["kafka-topic"]], [`key-${first.payload}`, "lines"]);
            // The group committed everything: a rerun has nothing new.
            const again = await mq(home, [
              "bridge",
              "--from",
              k.url,
              "--subjects",
              "lines",
              "--into",
              "in",
              "-e",
            ]);
            eq(again.err.trim().split("\n").at(-1), 'mq: bridge: stored 0 messages in "in"');
            // Another group reads every record again: each is a duplicate by its id.
            const other = await mq(home, [
              "bridge",
              "--from",
              k.url,
              "--subjects",
              "lines",
              "--into",
              "in",
              "-g",
              "other",
              "-e",
            ]);
            eq(other.err.trim().split("\n").at(-1), 'mq: bridge: stored 0 messages in "in"');
            eq((await payloads(home, "in")).length, 100_000);
          }),
      );

      await t.step(
        "headers, keys and bytes both ways, and --target",
        () =>
          withHome(async (home) => {
            const lines = [
              {
                key: "k1",
                headers: { trace: "t-1", "content-type": "application/json" },
                payload: "{}",
              },
              { headers: { region: "eu" }, payload_base64: "/wD+gA==" },
            ].map((o) => JSON.stringify(o)).join("\n") + "\n";
            eq((await mq(home, ["pub", "meta", "--json-lines"], { stdin: lines })).code, 0);
            const to = await mq(home, [
              "bridge",
              "--to",
              k.url,
              "--topics",
              "meta",
              "--target",
              "mq.{topic}",
              "-e",
              "-q",
            ]);
            eq(to.code, 0, to.err);
            const seen = await records(k, "mq.meta", "%k|%h|%s");
            eq(sorted(seen.map((s) => s.replace(/mq-id=[^,|]*/, "mq-id=ID"))), [
              "k1|trace=t-1,content-type=application/json,mq-id=ID|{}",
              `|region=eu,mq-id=ID|${dec.decode(new Uint8Array([0xff, 0x00, 0xfe, 0x80]))}`,
            ]);
            const raw = await new Deno.Command("kcat", {
              args: [
                "-b",
                k.bootstrap,
                "-C",
                "-t",
                "mq.meta",
                "-e",
                "-q",
                "-f",
                "%k:%s\n",
              ],
              stdout: "piped",
            }).output();
            // The keyless record's value, byte for byte: ":" ff 00 fe 80 "\n".
            const hex = [...raw.stdout].map((b) => b.toString(16).padStart(2, "0")).join("");
            eq(hex.includes("3aff00fe800a"), true, hex);
            // Back in: payload, key and headers as they left, the origin added.
            const back = await mq(home, [
              "bridge",
              "--from",
              k.url,
              "--subjects",
              "mq.meta",
              "--into",
              "m2",
              "-g",
              "meta-in",
              "-e",
              "-q",
            ]);
            eq(back.code, 0, back.err);
            const got = (await mq(home, ["sub", "m2", "-e", "--format", "json"])).out.trim().split(
              "\n",
            )
              .map((l) => JSON.parse(l))
              // Two partitions may hold them: the keyed one first.
              .sort((a, b) => (a.key === null ? 1 : 0) - (b.key === null ? 1 : 0));
            const origin = (o: number) => ({
              "kafka-topic": "mq.meta",
              "kafka-partition": String(got[o].headers["kafka-partition"]),
              "kafka-offset": String(got[o].headers["kafka-offset"]),
            });
            eq(
              got.map((
                m,
                i,
              ) => [m.key, m.headers, m.payload ?? m.payload_json ?? m.payload_base64, i]),
              [
                // A JSON object payload is printed as JSON (payload_json), the same bytes.
                ["k1", { trace: "t-1", "content-type": "application/json", ...origin(0) }, {}, 0],
                [null, { region: "eu", ...origin(1) }, "/wD+gA==", 1],
              ],
            );
            // From another program: kcat's headers come in as headers.
            await kcatRun(k, ["-P", "-t", "other", "-H", "level=info", "-k", "kk"], "hello\n");
            eq(
              (await mq(home, [
                "bridge",
                "--from",
                k.url,
                "--subjects",
                "other",
                "--into",
                "m3",
                // A group of its own: the mock makes a group that changes its topics
                // wait out the last member's session (about 30 s) before it rejoins.
                "-g",
                "other-in",
                "-e",
                "-q",
              ])).code,
              0,
            );
            const m = JSON.parse((await mq(home, ["sub", "m3", "-e", "--format", "json"])).out);
            eq([m.payload, m.key, m.headers.level, m.id], [
              "hello",
              "kk",
              "info",
              `kafka:other:${m.headers["kafka-partition"]}:0`,
            ]);
          }),
      );

      await t.step(
        "in: stored and committed in windows of 1 MiB and 4,096 records, of one fetch or several",
        async () => {
          // Small records (the count bounds a window) and large ones (the bytes do).
          const small = numbered(4000, "s-");
          const large = Array.from({ length: 600 }, (_, i) => `${i}-`.padEnd(4000, "x"));
          await kcatRun(k, ["-P", "-t", "windows"], [...small, ...large].join("\n") + "\n");
          // The same records again, in producer batches of 25: the mock gives a
          // fetch one such batch a partition, so a store a fetch would be 184 or more.
          await kcatRun(
            k,
            ["-X", "batch.num.messages=25", "-P", "-t", "windows-small"],
            [...small, ...large].join("\n") + "\n",
          );
          for (const topic of ["windows", "windows-small"]) {
            const { target, stores } = await recordingTarget();
            try {
              const n = await bridgeInto(parseBackendUrl(k.url), target, {
                subjects: [topic],
                into: "in",
                group: topic,
                follow: false,
              });
              eq(n, 4600);
              assertWithinWindow(stores, 4600, 4096);
              // Small records are stored (and committed) many at once, not in
              // 1,024s nor a producer batch at a time: one sync and one commit a window.
              eq(stores.some(([m]) => m > 1024), true, JSON.stringify(stores));
              eq(stores.length < 40, true, `${topic}: ${stores.length} stores`);
            } finally {
              await target.close();
            }
          }
        },
      );

      await t.step(
        "in: stores that fail are retried: nothing lost, each once, one line each",
        async () => {
          const sent = numbered(9000, "f-");
          await kcatRun(
            k,
            ["-X", "batch.num.messages=500", "-P", "-t", "failing"],
            sent.join("\n") + "\n",
          );
          const { target, stores } = await recordingTarget();
          // The second and third stores fail (a disk that is full for a moment, say).
          const publish = target.publishBatch.bind(target);
          let calls = 0;
          target.publishBatch = (topic, messages) => {
            calls++;
            if (calls === 2 || calls === 3) {
              return Promise.reject(new Error("no space left on device (os error 28)"));
            }
            return publish(topic, messages);
          };
          const said: string[] = [];
          try {
            const n = await bridgeInto(parseBackendUrl(k.url), target, {
              subjects: ["failing"],
              into: "in",
              group: "failing",
              follow: false,
              onState: (line) => said.push(line),
            });
            eq(n, 9000);
            const got: string[] = [];
            for await (const m of target.subscribe("in", { follow: false })) got.push(m.text());
            eq([got.length, new Set(got).size], [9000, 9000]);
            eq(new Set(got), new Set(sent));
            // Each failed store says so once (and is stored again: by a retry a second
            // later, or by kafkajs running the batch again).
            eq(
              said.filter((l) => /failed/.test(l)),
              Array(2).fill(
                "Kafka in: storing or committing failed (no space left on device (os error 28)); retrying",
              ),
              said.join("\n"),
            );
            eq(stores.length, calls - 2);
          } finally {
            await target.close();
          }
        },
      );

      await t.step(
        "kill -9 of the bridge, then a rerun: nothing lost; in, each once",
        () =>
          withHome(async (home) => {
            const sent = numbered(20_000, "c-");
            eq((await mq(home, ["pub", "crash"], { stdin: sent.join("\n") + "\n" })).code, 0);
            const child = spawnMq(home, ["bridge", "--to", k.url, "--topics", "crash", "-q"]);
            await waitUntil(
              "some are out",
              async () => (await records(k, "crash", "%o")).length > 2000,
            );
            child.kill("SIGKILL");
            await child.output();
            eq(
              (await mq(home, ["bridge", "--to", k.url, "--topics", "crash", "-e", "-q"])).code,
              0,
            );
            const out = await records(k, "crash", "%s");
            eq(out.length >= 20_000, true);
            eq(sorted([...new Set(out)]), sorted(sent));
            // In: killed mid-stream, then rerun: each record of the Kafka topic once (its id is
            // its partition and offset; the dedup window drops what the rerun reads again).
            const args = ["bridge", "--from", k.url, "--subjects", "crash", "--into", "c2", "-q"];
            const inChild = spawnMq(home, args);
            await waitUntil("some are in", async () => {
              const r = await mq(home, ["topics", "--json"]);
              const c2 = r.code === 0
                ? JSON.parse(r.out).find((x: { name: string }) => x.name === "c2")
                : undefined;
              return (c2?.messages ?? 0) > 500;
            });
            inChild.kill("SIGKILL");
            await inChild.output();
            eq((await mq(home, [...args, "-e"])).code, 0);
            const got = await payloads(home, "c2");
            eq(got.length, out.length, "each Kafka record once");
            eq(sorted([...new Set(got)]), sorted([...new Set(out)]));
          }),
      );

      await t.step("bad URLs and templates: one line, exit 2 or 1", () =>
        withHome(async (home) => {
          eq((await mq(home, ["pub", "bad", "x"])).code, 0);
          const cases: [string[], number, string][] = [
            [
              ["--to", "kafka://nohost"],
              2,
              'mq: error: invalid Kafka URL "kafka://nohost": expected kafka://host:port[,host:port...]',
            ],
            [
              ["--to", `${k.url}?acks=1`],
              2,
              'mq: error: unknown kafka: URL option "acks" (known: client_id)',
            ],
            [
              ["--to", k.url, "--target", "{partition"],
              2,
              'mq: error: --target "{partition": unbalanced "{" at character 1',
            ],
            [
              ["--to", k.url, "--target", "a/{topic}"],
              2,
              'mq: error: Kafka topic "a/bad" (message bad/0/0) may contain only A-Z a-z 0-9 . _ - (1 to 249)',
            ],
            [
              ["--from", k.url, "--subjects", "a b", "--into", "x"],
              2,
              'mq: error: Kafka topic "a b" may contain only A-Z a-z 0-9 . _ -',
            ],
            [
              ["--from", k.url, "--bind", "e:p", "--into", "x"],
              2,
              "mq: error: --bind is for amqp:// sources; Kafka reads --subjects topics",
            ],
          ];
          for (const [args, code, line] of cases) {
            const res = await mq(home, ["bridge", ...args, "-e", "-q"]);
            eq([res.code, errorLine(res)], [code, line], args.join(" "));
          }
          const down = await mq(home, ["bridge", "--to", "kafka://127.0.0.1:1", "-e", "-q"]);
          eq(
            [
              down.code,
              errorLine(down).startsWith("mq: error: cannot connect to Kafka at 127.0.0.1:1: "),
            ],
            [1, true],
            down.err,
          );
          eq((await mq(home, ["peek", "bad", "--group", "bridge"])).out, "x\n");
        }));
    } finally {
      await k.stop();
    }
  },
});
