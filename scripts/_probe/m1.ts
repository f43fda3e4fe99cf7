import mqtt from "mqtt";
import { Buffer } from "node:buffer";
const port = Number(Deno.args[0]);
const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
  protocolVersion: 5,
  clean: true,
  reconnectPeriod: 0,
});
console.log("connected", (c as any)._serverProperties ?? "");
const N = 100000;
const payload = Buffer.alloc(100, 120);
let t = performance.now();
for (let b = 0; b < N; b += 1024) {
  const ps = [];
  for (let i = 0; i < 1024; i++) {
    ps.push(
      c.publishAsync("bench/x", payload, {
        qos: 1,
        properties: { userProperties: { "mq-id": `x:${b + i}` } },
      }),
    );
  }
  await Promise.all(ps);
}
console.log("qos1 pub/s", Math.round(N / ((performance.now() - t) / 1000)));
t = performance.now();
for (let b = 0; b < N; b += 1024) {
  const ps = [];
  for (let i = 0; i < 1024; i++) ps.push(c.publishAsync("bench/x", payload, { qos: 1 }));
  await Promise.all(ps);
}
console.log("qos1 no props pub/s", Math.round(N / ((performance.now() - t) / 1000)));
await c.endAsync();
