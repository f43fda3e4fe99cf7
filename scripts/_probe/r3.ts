import { createClient } from "@redis/client";
import { Buffer } from "node:buffer";
const port = Number(Deno.args[0]);
for (const RESP of [2, 3] as const) {
  const c = createClient({ url: `redis://127.0.0.1:${port}`, RESP });
  await c.connect();
  const N = 500000;
  const payload = Buffer.alloc(100, 120);
  for (const B of [1024, 8192]) {
    await c.sendCommand(["DEL", "p"]);
    const t = performance.now();
    for (let b = 0; b < N; b += B) {
      const m = c.multi();
      for (let i = 0; i < B; i++) m.addCommand(["XADD", "p", "*", "payload", payload]);
      await m.execAsPipeline();
    }
    console.log("RESP", RESP, "pipeline", B, Math.round(N / ((performance.now() - t) / 1000)));
  }
  {
    await c.sendCommand(["DEL", "p"]);
    const B = 1024;
    const t = performance.now();
    for (let b = 0; b < N; b += B) {
      const ps = [];
      for (let i = 0; i < B; i++) ps.push(c.sendCommand(["XADD", "p", "*", "payload", payload]));
      await Promise.all(ps);
    }
    console.log(
      "RESP",
      RESP,
      "sendCommand x1024",
      Math.round(N / ((performance.now() - t) / 1000)),
    );
  }
  await c.sendCommand(["DEL", "p"]);
  await c.close();
}
