import { connect } from "../../mod.ts";
const dir = await Deno.makeTempDir();
const mq = await connect(`file:${dir}`);
const N = 20000, B = Number(Deno.args[0] ?? 1024);
let t = performance.now();
for (let i = 0; i < N; i += B) {
  await mq.publishBatch(
    "t",
    Array.from({ length: B }, (_, j) => ({ payload: `m-${i + j}`, id: `redis:s:${i + j}-0` })),
  );
}
console.log("with ids", B, Math.round(N / ((performance.now() - t) / 1000)), "/s");
t = performance.now();
for (let i = 0; i < N; i += B) {
  await mq.publishBatch("u", Array.from({ length: B }, (_, j) => ({ payload: `m-${i + j}` })));
}
console.log("no ids", B, Math.round(N / ((performance.now() - t) / 1000)), "/s");
await mq.close();
