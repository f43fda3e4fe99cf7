import { createClient, RESP_TYPES } from "@redis/client";
import { Buffer } from "node:buffer";
const port = Number(Deno.args[0]);
const c = createClient({ url: `redis://127.0.0.1:${port}` }).withTypeMapping({
  [RESP_TYPES.BLOB_STRING]: Buffer,
});
c.on("error", (e) => console.error("error event", e.message));
await c.connect();
const bin = new Uint8Array([0xff, 0xfe, 0, 10, 13, 0x80]);
const id = await c.sendCommand(["XADD", "s", "*", "payload", Buffer.from(bin), "h", "v"]);
console.log("id", id, typeof id);
const r = await c.sendCommand(["XRANGE", "s", "-", "+"]);
console.log(JSON.stringify(r), r);
const N = 200000;
const payload = Buffer.alloc(100, 120);
let t = performance.now();
for (let b = 0; b < N; b += 1000) {
  const ps = [];
  for (let i = 0; i < 1000; i++) ps.push(c.sendCommand(["XADD", "bench", "*", "payload", payload]));
  await Promise.all(ps);
}
console.log("xadd/s", Math.round(N / ((performance.now() - t) / 1000)));
t = performance.now();
for (let b = 0; b < N; b += 1000) {
  const m = c.multi();
  for (let i = 0; i < 1000; i++) m.addCommand(["XADD", "bench2", "*", "payload", payload]);
  await m.execAsPipeline();
}
console.log("pipeline xadd/s", Math.round(N / ((performance.now() - t) / 1000)));
console.log("hello", await c.sendCommand(["HELLO"]).then(() => "ok", (e) => e.message));
await c.close();
