/**
 * Issue 10, "ids reserved before a killed append": a publisher killed -9
 * right where its records would be stored must leave none of their ids
 * counted, so that the retry (a bridge re-reading its broker, a publisher
 * retrying) stores them. Before the fix the core reserved the ids in state
 * documents first, and the retry was dropped as duplicates: lost for good.
 *
 * The child process below publishes with ids through an adapter whose
 * appends kill the process (SIGKILL, no clean-up of any kind) the moment
 * they are called: exactly the point between the reservation and the append.
 */
import { deepStrictEqual as eq } from "node:assert/strict";
import { Mq } from "../../core/client.ts";
import { MemoryAdapter } from "../../adapters/memory/mod.ts";
import { FsAdapter } from "../../adapters/fs/mod.ts";
import { KvAdapter } from "../../adapters/kv/mod.ts";
import type { StorageAdapter } from "../../core/adapter.ts";
import { RESERVATION_GRACE_MS } from "../../core/_dedup.ts";

/** Waits (real time, up to 20 s: the machine may be busy) until `cond` holds. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (const end = Date.now() + 20_000; !cond();) {
    if (Date.now() > end) throw new Error(`not within 20 s: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const N = 500;
const messages = Array.from({ length: N }, (_, i) => ({ payload: `m${i}`, id: `id-${i}` }));

const CHILD = `
import { Mq } from ${JSON.stringify(new URL("../../core/client.ts", import.meta.url).href)};
import { FsAdapter } from ${
  JSON.stringify(new URL("../../adapters/fs/mod.ts", import.meta.url).href)
};
import { KvAdapter } from ${
  JSON.stringify(new URL("../../adapters/kv/mod.ts", import.meta.url).href)
};
const [kind, path, n] = Deno.args;
const inner = kind === "fs" ? await FsAdapter.open(path) : await KvAdapter.open(path);
const kill = () => { Deno.kill(Deno.pid, "SIGKILL"); return new Promise(() => {}); };
const adapter = new Proxy(inner, {
  get(target, prop) {
    const append = prop === "append" || prop === "appendDeduplicated" || prop === "appendAtomic";
    if (append && prop in target) return kill;
    const v = Reflect.get(target, prop);
    return typeof v === "function" ? v.bind(target) : v;
  },
});
const mq = new Mq(adapter);
await mq.topics.create("t", {});
const messages = Array.from({ length: Number(n) }, (_, i) => ({ payload: "m" + i, id: "id-" + i }));
await mq.publishBatch("t", messages);
console.log("not killed");
`;

/** Runs the child on a store; it must die by SIGKILL before storing anything. */
async function killedPublish(kind: "fs" | "kv", path: string): Promise<void> {
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(script, CHILD);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--unstable-kv", script, kind, path, String(N)],
      stdout: "piped",
      stderr: "piped",
    }).output();
    eq(out.signal, "SIGKILL", new TextDecoder().decode(out.stderr));
  } finally {
    await Deno.remove(script);
  }
}

/** The retry on a fresh client: every message stored, each once. */
async function retry(adapter: StorageAdapter): Promise<void> {
  const mq = new Mq(adapter);
  try {
    const r = await mq.publishBatch("t", messages);
    eq([r.count, r.duplicates], [N, 0], "the retry stores every message the killed run did not");
    const again = await mq.publishBatch("t", messages);
    eq([again.count, again.duplicates], [0, N], "and a second retry is all duplicates");
    const end = (await adapter.bounds("t", 0)).end;
    eq(end, N);
  } finally {
    await mq.close();
  }
}

Deno.test("fs: a publisher killed -9 before its append leaves no id reserved", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await killedPublish("fs", dir);
    await retry(await FsAdapter.open(dir));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("kv: a publisher killed -9 before its append leaves no id reserved", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await killedPublish("kv", `${dir}/mq.sqlite`);
    await retry(await KvAdapter.open(`${dir}/mq.sqlite`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("memory: a publish abandoned at its append leaves no id reserved", async () => {
  const inner = new MemoryAdapter();
  // The append never returns: the publisher is stopped right there (as a kill would).
  let reached = false;
  const stuck = new Proxy(inner, {
    get(target, prop) {
      const append = prop === "append" || prop === "appendDeduplicated";
      if (append && prop in target) {
        return () => {
          reached = true;
          return new Promise(() => {});
        };
      }
      const v = Reflect.get(target, prop);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  const first = new Mq(stuck);
  await first.topics.create("t", {});
  void first.publishBatch("t", messages);
  await until(() => reached, "the abandoned publish reached its append");
  await retry(inner);
});

Deno.test("fs: ids stored by another client count (read back from the log), and leave after the window", async () => {
  const dir = await Deno.makeTempDir();
  const a = new Mq(await FsAdapter.open(dir));
  const b = new Mq(await FsAdapter.open(dir));
  try {
    await a.topics.create("t", { dedupWindowMs: 1500 });
    eq((await a.publishBatch("t", messages.slice(0, 300))).count, 300);
    // Another client (as another process would be) sees them, and a repeat within its batch.
    const r = await b.publishBatch("t", [...messages.slice(250, 400), messages[399]]);
    eq([r.count, r.duplicates], [100, 51]);
    // The first client learns of the second one's appends too.
    eq((await a.publishBatch("t", messages.slice(390, 410))).count, 10);
    // A client opened afresh reads the window back from the log and its time index.
    const c = new Mq(await FsAdapter.open(dir));
    try {
      eq((await c.publishBatch("t", messages.slice(0, 410))).duplicates, 410);
      await new Promise((res) => setTimeout(res, 1600));
      eq((await c.publishBatch("t", messages.slice(0, 10))).count, 10, "out of the window");
    } finally {
      await c.close();
    }
    const d = new Mq(await FsAdapter.open(dir));
    try {
      const again = await d.publishBatch("t", messages.slice(0, 20));
      eq([again.count, again.duplicates], [10, 10], "a fresh client times each append");
    } finally {
      await d.close();
    }
  } finally {
    await a.close();
    await b.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fs: ids of a topic removed by another client do not count in the topic made again", async () => {
  const dir = await Deno.makeTempDir();
  const a = new Mq(await FsAdapter.open(dir));
  const b = new Mq(await FsAdapter.open(dir));
  try {
    const ten = messages.slice(0, 10);
    eq((await a.publishBatch("t", ten)).count, 10);
    // The other client removes the topic and makes it again, to the same end offset:
    // the ids the first one remembers are checked against the records stored now.
    await b.topics.remove("t");
    eq((await b.publishBatch("t", ten.map((m) => ({ payload: m.payload })))).count, 10);
    const r = await a.publishBatch("t", ten);
    eq([r.count, r.duplicates], [10, 0], "the old topic's ids are gone with it");
  } finally {
    await a.close();
    await b.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a topic of 4 partitions (ids reserved in state documents): a publish stopped at its append delays the retry, loses nothing", async () => {
  const dirs: string[] = [];
  for (
    const open of [
      () => Promise.resolve(new MemoryAdapter()),
      async () => await FsAdapter.open(dirs[dirs.length] = await Deno.makeTempDir()),
    ]
  ) {
    const inner = await open();
    let reached = false;
    const stuck = new Proxy(inner, {
      get(target, prop) {
        const append = prop === "append" || prop === "appendDeduplicated" ||
          prop === "appendAtomic";
        if (append && prop in target) {
          return () => {
            reached = true;
            return new Promise(() => {});
          };
        }
        const v = Reflect.get(target, prop);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const first = new Mq(stuck);
    await first.topics.create("p4", { partitions: 4 });
    const batch = messages.slice(0, 100);
    void first.publishBatch("p4", batch);
    // Its ids are reserved once it reaches its append.
    await until(() => reached, "the stopped publish reached its append");
    const mq = new Mq(inner);
    try {
      const t = performance.now();
      const r = await mq.publishBatch("p4", batch);
      eq([r.count, r.duplicates], [100, 0], "the retry stores every message");
      eq(performance.now() - t >= RESERVATION_GRACE_MS - 200, true, "after the grace");
      // Stored now: a repeat is a duplicate at once.
      const again = await mq.publishBatch("p4", batch);
      eq([again.count, again.duplicates], [0, 100]);
      // A second client's retry while the first is still storing (within the grace) is not stored twice.
      const more = messages.slice(100, 200);
      const [x, y] = await Promise.all([mq.publishBatch("p4", more), mq.publishBatch("p4", more)]);
      eq(x.count + y.count, 100);
    } finally {
      await mq.close();
    }
  }
  for (const d of dirs) await Deno.remove(d, { recursive: true });
});
