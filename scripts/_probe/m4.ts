import { connectMqtt, parseMqttUrl } from "../../adapters/mqtt/_connection.ts";
import { parseBackendUrl } from "../../core/backend_url.ts";
const conf = parseMqttUrl(parseBackendUrl(`mqtt://127.0.0.1:${Deno.args[0]}`));
const c = await connectMqtt(conf, { clientId: "probe-1", persistent: true, receiveMaximum: 100 });
console.log("opts", c.options.clean, c.options.properties, c.options.protocolVersion);
c.on(
  "packetsend",
  (p: any) => p.cmd !== "pingreq" && console.log("send", p.cmd, JSON.stringify(p.properties ?? {})),
);
c.on("packetreceive", (p: any) => console.log("recv", p.cmd, p.sessionPresent, p.topic ?? ""));
await c.subscribeAsync({ "in/#": { qos: 1 } });
await new Promise((r) => setTimeout(r, 1000));
await c.endAsync();
