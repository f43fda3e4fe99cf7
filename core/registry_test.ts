import { deepStrictEqual as eq, rejects } from "node:assert/strict";
import { Registry } from "./registry.ts";
import { MqError } from "./errors.ts";
import { MemoryAdapter } from "../adapters/memory/mod.ts";
import { builtinRegistry } from "../adapters/builtin.ts";

Deno.test("registry capabilities: a scheme's describer answers without opening the backend", async () => {
  const registry = new Registry().register(
    "memory",
    () => Promise.reject(new Error("the adapter was loaded")),
    () =>
      Promise.resolve((url) =>
        Promise.resolve({ persistent: url.body === "", multiProcess: false })
      ),
  );
  eq(await registry.capabilities("memory:"), { persistent: true, multiProcess: false });
  await rejects(registry.open("memory:"), /the adapter was loaded/);
});

Deno.test("registry capabilities: without a describer the backend is opened, read and closed", async () => {
  let closed = 0;
  const registry = new Registry().register("memory", () =>
    Promise.resolve(() => {
      const adapter = new MemoryAdapter();
      const close = adapter.close.bind(adapter);
      adapter.close = () => (closed++, close());
      return Promise.resolve(adapter);
    }));
  eq(await registry.capabilities("memory:"), { ...new MemoryAdapter().capabilities });
  eq(closed, 1);
});

Deno.test("registry capabilities: a store that does not exist is null; other failures are thrown", async () => {
  const failing = (message: string) =>
    new Registry().register(
      "kv",
      () => Promise.resolve(() => Promise.reject(new MqError("IO", message))),
    );
  eq(await failing("the store /x does not exist").capabilities("kv:/x", { create: false }), null);
  await rejects(failing("disk on fire").capabilities("kv:/x"), /disk on fire/);
  await rejects(new Registry().capabilities("memory:"), (e) => MqError.is(e, "UNKNOWN_SCHEME"));
});

Deno.test("registry capabilities: file: is described from the folder alone, creating nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mq-describe-" });
  try {
    const caps = await builtinRegistry().capabilities(`file:${dir}/missing`, { create: false });
    eq(caps?.persistent, true);
    eq(caps?.multiProcess, true);
    eq([...Deno.readDirSync(dir)].length, 0);
    await Deno.writeTextFile(`${dir}/plain`, "");
    await rejects(
      builtinRegistry().capabilities(`file:${dir}/plain`),
      (e) => MqError.is(e, "IO") && /not a directory/.test(e.message),
    );
    await rejects(
      builtinRegistry().capabilities(`file:${dir}?fsync=sometimes`),
      (e) => MqError.is(e, "INVALID_URL"),
    );
    // The same capabilities as the opened adapter's.
    const adapter = await builtinRegistry().open(`file:${dir}/store`);
    eq(caps, { ...adapter.capabilities });
    await adapter.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
