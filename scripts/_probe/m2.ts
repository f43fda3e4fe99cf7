import mqtt from "mqtt";
import { Buffer } from "node:buffer";
const port = Number(Deno.args[0]);
const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
  protocolVersion: 5,
  clean: true,
  reconnectPeriod: 0,
});
const N = 100000;
const payload = Buffer.alloc(100, 120);
let t = performance.now();
for (let b = 0; b < N; b += 1024) {
  for (let i = 0; i < 1024; i++) c.publish("bench/x", payload, { qos: 0 });
  await new Promise((r) => c.publish("bench/x", payload, { qos: 1 }, r));
}
console.log("qos0 pub/s", Math.round(N / ((performance.now() - t) / 1000)));
t = performance.now();
let acked = 0;
await new Promise<void>((resolve) => {
  let sent = 0;
  const pump = () => {
    while (sent - acked < 1024 && sent < N) {
      sent++;
      c.publish("bench/x", payload, { qos: 1 }, () => {
        if (++acked === N) resolve();
        else pump();
      });
    }
  };
  pump();
});
console.log("qos1 cb window pub/s", Math.round(N / ((performance.now() - t) / 1000)));
await c.endAsync();
