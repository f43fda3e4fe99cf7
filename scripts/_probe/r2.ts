import { createClient, RESP_TYPES } from "@redis/client";
import { Buffer } from "node:buffer";
const port = Number(Deno.args[0]);
const c = createClient({ url: `redis://127.0.0.1:${port}` }).withTypeMapping({
  [RESP_TYPES.BLOB_STRING]: Buffer,
});
await c.connect();
const SCRIPT = `
local out = {}
local i = 1
local n = #ARGV
while i <= n do
  local c = tonumber(ARGV[i])
  if c == 2 then
    out[#out+1] = redis.call('XADD', KEYS[1], '*', ARGV[i+1], ARGV[i+2])
  else
    out[#out+1] = redis.call('XADD', KEYS[1], '*', unpack(ARGV, i+1, i+c))
  end
  i = i + c + 1
end
return out`;
const sha = String(await c.sendCommand(["SCRIPT", "LOAD", SCRIPT]));
const N = 1000000;
const payload = Buffer.alloc(100, 120);
for (const B of [256, 1024, 4096]) {
  await c.sendCommand(["DEL", "ev"]);
  const t = performance.now();
  for (let b = 0; b < N; b += B) {
    const args: (string | Buffer)[] = ["EVALSHA", sha, "1", "ev"];
    for (let i = 0; i < B; i++) args.push("2", "payload", payload);
    // two in flight
    await c.sendCommand(args);
  }
  console.log(
    B,
    "evalsha xadd/s",
    Math.round(N / ((performance.now() - t) / 1000)),
    await c.sendCommand(["XLEN", "ev"]),
  );
}
{
  await c.sendCommand(["DEL", "ev"]);
  const B = 1024;
  const t = performance.now();
  let inflight: Promise<unknown>[] = [];
  for (let b = 0; b < N; b += B) {
    const args: (string | Buffer)[] = ["EVALSHA", sha, "1", "ev"];
    for (let i = 0; i < B; i++) args.push("2", "payload", payload);
    inflight.push(c.sendCommand(args));
    if (inflight.length >= 4) await inflight.shift();
  }
  await Promise.all(inflight);
  console.log(
    "windowed 4x1024 evalsha xadd/s",
    Math.round(N / ((performance.now() - t) / 1000)),
    await c.sendCommand(["XLEN", "ev"]),
  );
}
{
  await c.sendCommand(["DEL", "p"]);
  const B = 1024;
  const t = performance.now();
  for (let b = 0; b < N; b += B) {
    const m = c.multi();
    for (let i = 0; i < B; i++) m.addCommand(["XADD", "p", "*", "payload", payload]);
    await m.execAsPipeline();
  }
  console.log("pipeline 1024 xadd/s", Math.round(N / ((performance.now() - t) / 1000)));
}
await c.close();
