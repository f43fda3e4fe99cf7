/**
 * The MQTT link's keepalive against a scripted broker on a loopback port,
 * which answers each PINGREQ with a PINGRESP and sends nothing else: a
 * client that writes all the time (a QoS 0 publisher, which hears nothing
 * back) must still ping, so that the broker's answers keep the link open.
 */
import { deepStrictEqual as eq } from "node:assert/strict";
import { Link, timeout } from "../../adapters/mqtt/_link.ts";

Deno.test("mqtt link: a client that writes all the time still pings, and stays connected", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let pings = 0;
  const serving = (async () => {
    const conn = await listener.accept();
    const buf = new Uint8Array(4096);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        // The client's writes below are PUBLISHes with no 0xc0 byte in them: each one is a PINGREQ.
        for (let i = 0; i < n; i++) {
          if (buf[i] === 0xc0) (pings++, await conn.write(new Uint8Array([0xd0, 0x00])));
        }
      }
    } catch { /* closed */ }
    conn.close();
  })();
  const [limit, cancel] = timeout(5000);
  const link = await Link.open("127.0.0.1", (listener.addr as Deno.NetAddr).port, false, limit, 1);
  cancel();
  let ended = false;
  const reading = link.read(() => {}, () => {}, () => undefined).then(() => ended = true);
  link.keepalive(1, () => false); // ping after 0.5 s quiet, close after 1.5 s unheard
  // A QoS 0 PUBLISH to "t" every 50 ms for 3 s: writing never goes quiet.
  const publish = new Uint8Array([0x30, 0x03, 0x00, 0x01, 0x74]);
  const until = Date.now() + 3000;
  while (Date.now() < until && !ended) {
    await link.write(publish).catch(() => {});
    await new Promise((r) => setTimeout(r, 50));
  }
  const wasEnded = ended;
  link.close();
  await reading;
  listener.close();
  await serving;
  eq({ closedByKeepalive: wasEnded, pinged: pings > 0 }, {
    closedByKeepalive: false,
    pinged: true,
  });
});
