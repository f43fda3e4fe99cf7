import { conformance } from "./conformance.ts";
import { available, type Broker, startNats } from "../../scripts/brokers.ts";
import { connectNats, NatsAdapter } from "../../adapters/nats/mod.ts";
import { parseBackendUrl } from "../../core/backend_url.ts";

const nats = available("nats-server");
let broker: Broker | undefined;
await conformance("nats", {
  skip: nats.ok ? undefined : nats.reason,
  open: async () =>
    NatsAdapter.open(await connectNats(parseBackendUrl((broker ??= await startNats()).url))),
});
Deno.test({ name: "nats: stop the test broker", ignore: !nats.ok, fn: () => broker?.stop() });
