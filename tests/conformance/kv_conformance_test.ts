import { conformance } from "./conformance.ts";
import { KvAdapter } from "../../adapters/kv/mod.ts";

let dir: string | undefined;
await conformance("kv", {
  open: async () =>
    KvAdapter.open(`${dir ??= await Deno.makeTempDir({ prefix: "mq-conf-kv-" })}/kv.sqlite`),
  cleanup: async () =>
    void (dir && (await Deno.remove(dir, { recursive: true }).catch(() => {}), (dir = undefined))),
});
