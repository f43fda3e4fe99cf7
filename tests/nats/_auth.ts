/**
 * Credentials for test brokers: NATS JWTs (operator, account, user) signed
 * with nkeys, a creds file, and a self-signed CA with a server certificate
 * (openssl). What `nsc` and `mkcert` would make, for private nats-servers.
 */
import { nkeys } from "@nats-io/transport-node";

type KeyPair = ReturnType<typeof nkeys.createUser>;

const enc = new TextEncoder();

function base64url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** A NATS v2 JWT of `nats` claims for `subject`, signed by `issuer`. */
async function jwt(
  issuer: KeyPair,
  subject: string,
  name: string,
  nats: Record<string, unknown>,
): Promise<string> {
  const claims: Record<string, unknown> = {
    jti: "",
    iat: Math.floor(Date.now() / 1000),
    iss: issuer.getPublicKey(),
    name,
    sub: subject,
    nats: { ...nats, version: 2 },
  };
  const hash = new Uint8Array(
    await crypto.subtle.digest("SHA-256", enc.encode(JSON.stringify(claims))),
  );
  claims.jti = base64url(hash).toUpperCase().replace(/[^A-Z0-9]/g, "").slice(0, 52);
  const head = base64url(enc.encode(JSON.stringify({ typ: "JWT", alg: "ed25519-nkey" })));
  const body = base64url(enc.encode(JSON.stringify(claims)));
  const sig = base64url(issuer.sign(enc.encode(`${head}.${body}`)));
  return `${head}.${body}.${sig}`;
}

/** Operator-mode server configuration and a user's creds file (JetStream allowed). */
export async function operatorSetup(): Promise<
  { config: string; creds: string; otherCreds: string }
> {
  const operator = nkeys.createOperator();
  const account = nkeys.createAccount();
  const stranger = nkeys.createAccount();
  const user = nkeys.createUser();
  const operatorJwt = await jwt(operator, operator.getPublicKey(), "mq-test", {
    type: "operator",
  });
  const unlimited = {
    subs: -1,
    data: -1,
    payload: -1,
    imports: -1,
    exports: -1,
    wildcards: true,
    conn: -1,
    leaf: -1,
    mem_storage: -1,
    disk_storage: -1,
    streams: -1,
    consumer: -1,
  };
  const accountJwt = await jwt(operator, account.getPublicKey(), "app", {
    type: "account",
    limits: unlimited,
  });
  // JetStream needs a system account.
  const system = nkeys.createAccount();
  const systemJwt = await jwt(operator, system.getPublicKey(), "SYS", {
    type: "account",
    limits: { ...unlimited, mem_storage: 0, disk_storage: 0, streams: 0, consumer: 0 },
  });
  const creds = (signer: KeyPair, u: KeyPair) =>
    jwt(signer, u.getPublicKey(), "app-user", {
      type: "user",
      pub: {},
      sub: {},
      subs: -1,
      data: -1,
      payload: -1,
    }).then((token) =>
      [
        "-----BEGIN NATS USER JWT-----",
        token,
        "------END NATS USER JWT------",
        "",
        "************************* IMPORTANT *************************",
        "",
        "-----BEGIN USER NKEY SEED-----",
        new TextDecoder().decode(u.getSeed()),
        "------END USER NKEY SEED------",
        "",
      ].join("\n")
    );
  return {
    config: [
      `operator: ${JSON.stringify(operatorJwt)}`,
      "resolver: MEMORY",
      `system_account: ${system.getPublicKey()}`,
      "resolver_preload: {",
      `  ${account.getPublicKey()}: ${JSON.stringify(accountJwt)}`,
      `  ${system.getPublicKey()}: ${JSON.stringify(systemJwt)}`,
      "}",
    ].join("\n"),
    creds: await creds(account, user),
    // Signed by an account the server does not know.
    otherCreds: await creds(stranger, nkeys.createUser()),
  };
}

/** A user nkey: its seed and the server's `authorization` block for it. */
export function nkeyUser(): { seed: string; config: string } {
  const user = nkeys.createUser();
  return {
    seed: new TextDecoder().decode(user.getSeed()),
    config: `authorization { users = [ { nkey: ${user.getPublicKey()} } ] }`,
  };
}

/** Whether openssl can be run. */
export function haveOpenssl(): boolean {
  try {
    return new Deno.Command("openssl", { args: ["version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/**
 * A CA and a server certificate for 127.0.0.1 only (an IP SAN, no DNS name,
 * unless `altNames` says otherwise), written to `dir`; returns the file paths.
 */
export async function ipCertificate(
  dir: string,
  altNames = "IP:127.0.0.1",
): Promise<{ ca: string; cert: string; key: string }> {
  const run = async (...args: string[]) => {
    const out = await new Deno.Command("openssl", {
      args,
      cwd: dir,
      stdout: "null",
      stderr: "piped",
    })
      .output();
    if (!out.success) {
      throw new Error(`openssl ${args[0]}: ${new TextDecoder().decode(out.stderr)}`);
    }
  };
  await run(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "2",
    "-subj",
    "/CN=mq test CA",
  );
  await run(
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "server.key",
    "-out",
    "server.csr",
    "-subj",
    "/CN=mq test server",
  );
  await Deno.writeTextFile(`${dir}/ext.cnf`, `subjectAltName=${altNames}\n`);
  await run(
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "server.pem",
    "-days",
    "2",
    "-extfile",
    "ext.cnf",
  );
  return { ca: `${dir}/ca.pem`, cert: `${dir}/server.pem`, key: `${dir}/server.key` };
}
