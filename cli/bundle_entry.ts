/**
 * What `deno task mq` and the installed `mq` run, bundled into `cli/mq.js` by
 * `deno task bundle`: `cli/main.ts` with the fast commands and the fs and
 * memory adapters in one file, so that `mq pub t x` in a shell loop reads one
 * module instead of some sixty. Everything else (commander and the other
 * commands, the kv and nats adapters) still loads from the sources when used;
 * `tests/cli/cli_bundle_test.ts` checks that `cli/mq.js` is up to date.
 *
 * Never imported: it only runs.
 *
 * @module
 */
import { type FastCommands, runMq } from "./fast_path.ts";
import { registerPub } from "./commands/pub.ts";
import { registerSub } from "./commands/sub.ts";
import { registerWork } from "./commands/work.ts";
import { registerTake } from "./commands/take.ts";
import { registerPeek } from "./commands/peek.ts";
import { registerRequest } from "./commands/request.ts";

const BUNDLED: FastCommands = {
  pub: () => Promise.resolve(registerPub),
  sub: () => Promise.resolve(registerSub),
  work: () => Promise.resolve(registerWork),
  take: () => Promise.resolve(registerTake),
  ack: () => Promise.resolve(registerTake),
  nack: () => Promise.resolve(registerTake),
  peek: () => Promise.resolve(registerPeek),
  cancel: () => Promise.resolve(registerPeek),
  request: () => Promise.resolve(registerRequest),
  reply: () => Promise.resolve(registerRequest),
};

Deno.exit(await runMq(Deno.args, BUNDLED));
