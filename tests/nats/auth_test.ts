/**
 * Connecting to NATS servers that want credentials: a token, a user and
 * password, an nkey, a creds file (operator mode, JWTs), TLS with a private
 * CA (a certificate for the IP address only). Each works through the URL;
 * wrong credentials exit 1 with one line; and the secret is never printed by
 * `mq info` or `mq context` against the reachable server.
 */
import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { available, startNats } from "../../scripts/brokers.ts";
import { errorLine, mq, withHome } from "../cli/_mq.ts";
import { haveOpenssl, ipCertificate, nkeyUser, operatorSetup } from "./_auth.ts";

const nats = available("nats-server");
const openssl = haveOpenssl();
if (!openssl) console.error("note: openssl is not installed; skipping the NATS TLS test");

interface AuthCase {
  /** The server's extra configuration. */
  config: string;
  /** URLs (given the broker's host:port) that must work. */
  good: (hostPort: string) => string[];
  /** A URL with wrong credentials, and what its error line must say. */
  bad: (hostPort: string) => [string, RegExp];
  /** Text that must never be printed. */
  secrets: string[];
}

/** Runs a case: every good URL publishes and reads, info and contexts hide the secrets. */
function authCase(name: string, setup: (dir: string) => Promise<AuthCase>, ignore = false): void {
  Deno.test({
    name: `nats auth: ${name}`,
    ignore: !nats.ok || ignore,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: () =>
      withHome(async (h) => {
        const c = await setup(h);
        const broker = await startNats({ config: c.config });
        const hostPort = `127.0.0.1:${broker.port}`;
        const noSecret = (text: string, where: string) => {
          for (const s of c.secrets) ok(!text.includes(s), `${where} shows a secret: ${text}`);
        };
        try {
          for (const [i, url] of c.good(hostPort).entries()) {
            const pub = await mq(h, ["--url", url, "pub", `t${i}`, "hello", "-q"]);
            eq(pub.code, 0, pub.err);
            const sub = await mq(h, ["--url", url, "sub", `t${i}`, "-e"]);
            eq([sub.code, sub.out], [0, "hello\n"], sub.err);
            // Against the reachable server: info and contexts show no secret.
            const info = await mq(h, ["--url", url, "info"]);
            eq(info.code, 0, info.err);
            ok(info.out.includes(`backend: nats://`), info.out);
            noSecret(info.out + info.err, "mq info");
            const json = await mq(h, ["--url", url, "info", "--json"]);
            eq(json.code, 0, json.err);
            noSecret(json.out + json.err, "mq info --json");
            const add = await mq(h, ["context", "add", `c${i}`, url]);
            eq(add.code, 0, add.err);
            noSecret(add.out + add.err, "mq context add");
            const ls = await mq(h, ["context", "ls"]);
            eq(ls.code, 0, ls.err);
            ok(ls.out.includes(`c${i}`), ls.out);
            noSecret(ls.out + ls.err, "mq context ls");
            const show = await mq(h, ["context", "show", `c${i}`]);
            noSecret(show.out + show.err, "mq context show");
            const viaContext = await mq(h, ["--context", `c${i}`, "sub", `t${i}`, "-e"]);
            eq([viaContext.code, viaContext.out], [0, "hello\n"], viaContext.err);
            const infoContext = await mq(h, ["--context", `c${i}`, "info"]);
            eq(infoContext.code, 0, infoContext.err);
            noSecret(infoContext.out + infoContext.err, "mq info (context)");
          }
          const [badUrl, why] = c.bad(hostPort);
          const t = performance.now();
          const bad = await mq(h, ["--url", badUrl, "topics"]);
          eq(bad.code, 1, bad.err);
          ok(why.test(errorLine(bad)), bad.err);
          ok(performance.now() - t < 8000, "a refused login took too long");
          noSecret(bad.err, "the error line");
        } finally {
          await broker.stop();
        }
      }),
  });
}

authCase("a token, in the URL's user part or as ?token=", () =>
  Promise.resolve({
    config: `authorization { token: "tok-s3cret-123" }`,
    good: (hp) => [`nats://tok-s3cret-123@${hp}`, `nats://${hp}?token=tok-s3cret-123`],
    bad: (
      hp,
    ) => [
      `nats://${hp}?token=tok-wrong-999`,
      /^mq: error: cannot connect to NATS at 127\.0\.0\.1:\d+: authorization failed/,
    ],
    secrets: ["tok-s3cret-123", "tok-wrong-999"],
  }));

authCase("a user and password", () =>
  Promise.resolve({
    config: `authorization { user: alice, password: "pw-s3cret-456" }`,
    good: (hp) => [`nats://alice:pw-s3cret-456@${hp}`],
    bad: (hp) => [`nats://alice:pw-wrong-789@${hp}`, /authorization failed/],
    secrets: ["pw-s3cret-456", "pw-wrong-789"],
  }));

authCase("an nkey seed, as a file or in the URL", async (dir) => {
  const { seed, config } = nkeyUser();
  await Deno.writeTextFile(`${dir}/user.nk`, seed + "\n");
  const other = nkeyUser().seed;
  return {
    config,
    good: (hp) => [`nats://${hp}?nkey=${dir}/user.nk`, `nats://${hp}?nkey=${seed}`],
    bad: (hp) => [`nats://${hp}?nkey=${other}`, /authorization failed/],
    secrets: [seed, other],
  };
});

authCase("a creds file (operator mode: JWTs and an nkey)", async (dir) => {
  const { config, creds, otherCreds } = await operatorSetup();
  await Deno.writeTextFile(`${dir}/user.creds`, creds);
  await Deno.writeTextFile(`${dir}/other.creds`, otherCreds);
  const seed = /SU[A-Z0-9]+/.exec(creds)![0];
  return {
    config,
    good: (hp) => [`nats://${hp}?creds=${dir}/user.creds`],
    bad: (hp) => [`nats://${hp}?creds=${dir}/other.creds`, /authorization failed/],
    secrets: [seed, /SU[A-Z0-9]+/.exec(otherCreds)![0]],
  };
});

authCase(
  "TLS with a private CA, connecting by IP (the certificate names only 127.0.0.1)",
  async (dir) => {
    const { ca, cert, key } = await ipCertificate(dir);
    return {
      config: `tls { cert_file: ${JSON.stringify(cert)}, key_file: ${JSON.stringify(key)} }`,
      good: (hp) => [`nats://${hp}?tls_ca=${ca}`, `nats://alice:pw-tls-1@${hp}?tls=1&tls_ca=${ca}`],
      // Without the CA the server's certificate is not trusted.
      bad: (hp) => [`nats://${hp}?tls=1`, /^mq: error: cannot connect to NATS at .*certificate/],
      secrets: ["pw-tls-1"],
    };
  },
  !openssl,
);
