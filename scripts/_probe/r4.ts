import { createClient, RESP_TYPES } from "@redis/client";
import { Buffer } from "node:buffer";
const port = Number(Deno.args[0]);
let connected = false;
const mk = (p: number, extra = {}) =>
  createClient({
    socket: {
      host: "127.0.0.1",
      port: p,
      connectTimeout: 2000,
      reconnectStrategy: (retries: number, cause: Error) =>
        connected ? Math.min(100 * 2 ** retries, 2000) : cause,
    },
    RESP: 2,
    ...extra,
  }).withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
{
  const c = mk(1);
  c.on("error", (e: Error) => console.log("ev error", e.message));
  try {
    await c.connect();
  } catch (e) {
    console.log("unreach:", (e as Error).constructor.name, (e as Error).message);
  }
}
{
  const c = mk(port, { password: "wrong" });
  c.on("error", (e: Error) => console.log("ev error", e.message));
  try {
    await c.connect();
  } catch (e) {
    console.log("auth:", (e as Error).constructor.name, (e as Error).message);
  }
}
const c = mk(port);
c.on("error", (e: Error) => console.log("ev error", e.message));
c.on("ready", () => console.log("ev ready"));
c.on("reconnecting", () => console.log("ev reconnecting"));
await c.connect();
connected = true;
await c.sendCommand(["SET", "str", "x"]);
try {
  const m = c.multi();
  m.addCommand(["XADD", "ok", "*", "a", "b"]);
  m.addCommand(["XADD", "str", "*", "a", "b"]);
  const r = await m.execAsPipeline();
  console.log("pipeline result", r);
} catch (e) {
  console.log(
    "pipeline err:",
    (e as Error).constructor.name,
    (e as Error).message,
    Object.keys(e as object),
  );
}
try {
  await c.sendCommand(["XADD", "str", "*", "a", "b"]);
} catch (e) {
  console.log("single err:", (e as Error).constructor.name, (e as Error).message);
}
console.log(
  await c.sendCommand(["XREADGROUP", "GROUP", "g", "c", "COUNT", "2", "STREAMS", "ok", ">"]).catch((
    e,
  ) => e.message),
);
await c.sendCommand(["XGROUP", "CREATE", "ok", "g", "0", "MKSTREAM"]);
console.log(
  JSON.stringify(
    await c.sendCommand(["XREADGROUP", "GROUP", "g", "c", "COUNT", "2", "STREAMS", "ok", ">"]),
  ),
);
console.log(
  await c.sendCommand(["XREADGROUP", "GROUP", "g", "c", "COUNT", "2", "STREAMS", "ok", ">"]),
);
console.log(JSON.stringify(await c.sendCommand(["XAUTOCLAIM", "ok", "g", "c2", "0", "0-0"])));
await c.close();
