import { conformance } from "./conformance.ts";
import { FsAdapter } from "../../adapters/fs/mod.ts";

let dir: string | undefined;
await conformance("fs", {
  open: async () => FsAdapter.open(dir ??= await Deno.makeTempDir({ prefix: "mq-conf-fs-" })),
  cleanup: async () =>
    void (dir && (await Deno.remove(dir, { recursive: true }).catch(() => {}), (dir = undefined))),
});
