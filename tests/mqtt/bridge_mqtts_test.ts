/**
 * `mq bridge` over `mqtts://` against a private mosquitto with a TLS
 * listener (a CA and a server certificate made with openssl), checked with
 * mosquitto_sub and mosquitto_pub: out and in through TLS, and a broker
 * whose certificate mq does not trust: one line, exit 1.
 */
import { deepStrictEqual as eq } from "node:assert/strict";
import { available, findBinary, startMosquitto } from "../../scripts/brokers.ts";
import { errorLine, mq, withHome } from "../cli/_mq.ts";
import { ipCertificate } from "../nats/_auth.ts";

const tools = (() => {
  for (const bin of ["mosquitto", "mosquitto_sub", "mosquitto_pub", "openssl"]) {
    const a = available(bin);
    if (!a.ok) return a;
  }
  return { ok: true as const };
})();

const dec = new TextDecoder();

async function run(bin: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(findBinary(bin)!, { args, stdout: "piped", stderr: "piped" })
    .output();
  if (out.code !== 0) {
    throw new Error(`${bin} ${args.join(" ")}: exit ${out.code}: ${dec.decode(out.stderr)}`);
  }
  return dec.decode(out.stdout);
}

/** A CA and a certificate of localhost / 127.0.0.1 signed by it, in `dir`, readable by mosquitto. */
async function certificates(dir: string) {
  const files = await ipCertificate(dir, "DNS:localhost,IP:127.0.0.1");
  // mosquitto started as root reads its files as user mosquitto.
  for (const f of Object.values(files)) await Deno.chmod(f, 0o644);
  await Deno.chmod(dir, 0o755);
  return files;
}

Deno.test({
  name: "bridge mqtts: out and in over TLS; an untrusted certificate: one line, exit 1",
  ignore: !tools.ok,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withHome(async (h) => {
      const certs = await Deno.makeTempDir({ prefix: "mq-mqtts-" });
      const files = await certificates(certs);
      const broker = await startMosquitto({
        config: `cafile ${files.ca}\ncertfile ${files.cert}\nkeyfile ${files.key}`,
      });
      try {
        const url = `mqtts://localhost:${broker.port}`;
        const tls = ["--cafile", `${certs}/ca.pem`, "-h", "localhost", "-p", String(broker.port)];
        const env = { DENO_CERT: `${certs}/ca.pem` };
        eq((await mq(h, ["pub", "t", "-q"], { stdin: "one\ntwo\n" })).code, 0);
        // A persistent session first (-E: exit once subscribed), which queues what comes.
        const session = [...tls, "-V", "mqttv5", "-c", "-i", "chk", "-q", "1", "-t", "t"];
        await run("mosquitto_sub", [...session, "-E"]);
        const out = await mq(h, ["bridge", "--to", url, "-e", "-q"], { env });
        eq(out.code, 0, out.err);
        eq(await run("mosquitto_sub", [...session, "-C", "2", "-W", "30"]), "one\ntwo\n");

        const inArgs = ["bridge", "--from", url, "--subjects", "in", "--into", "in", "-e", "-q"];
        eq((await mq(h, inArgs, { env })).code, 0); // the session
        await run("mosquitto_pub", [...tls, "-t", "in", "-q", "1", "-m", "over tls"]);
        const r = await mq(h, inArgs, { env });
        eq(r.code, 0, r.err);
        eq((await mq(h, ["sub", "in", "-e"])).out, "over tls\n");

        const refused = await mq(h, ["bridge", "--to", url, "-e", "-q", "-g", "other"]);
        eq(
          [refused.code, errorLine(refused)],
          [
            1,
            `mq: error: cannot connect to the MQTT broker at localhost:${broker.port}: invalid peer certificate: UnknownIssuer`,
          ],
        );
      } finally {
        await broker.stop();
        await Deno.remove(certs, { recursive: true }).catch(() => {});
      }
    }),
});
