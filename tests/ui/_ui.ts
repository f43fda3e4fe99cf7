/** Starts `mq ui` as a subprocess on a free loopback port and reads the address it prints. */
import { spawnMq } from "../cli/_mq.ts";

/** A running `mq ui`. */
export interface UiServer {
  /** The first line it printed: the address with `?token=`. */
  url: string;
  /** `http://127.0.0.1:PORT` */
  origin: string;
  /** The token of that address. */
  token: string;
  /** Stops it (SIGTERM) and resolves to its exit code and stderr. */
  stop(): Promise<{ code: number; err: string }>;
}

/** Runs `mq ui --port 0 ...args` in `home`, resolving once it printed its address. */
export async function startUi(
  home: string,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<UiServer> {
  const child = spawnMq(home, ["ui", "--port", "0", ...args], "null", env);
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  const deadline = Date.now() + 20_000;
  while (!out.includes("\n")) {
    const r = await Promise.race([
      lines.read(),
      new Promise<{ done: true; value: undefined }>((res) =>
        setTimeout(() => res({ done: true, value: undefined }), Math.max(0, deadline - Date.now()))
      ),
    ]);
    if (r.done) {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      const { stderr } = await child.output().catch(() => ({ stderr: new Uint8Array() }));
      throw new Error(`mq ui printed no address: ${out} ${new TextDecoder().decode(stderr)}`);
    }
    out += r.value;
  }
  const url = out.split("\n")[0];
  const u = new URL(url);
  const errText = child.stderr.pipeThrough(new TextDecoderStream());
  let err = "";
  const errDone = (async () => {
    for await (const chunk of errText) err += chunk;
  })();
  (async () => {
    while (!(await lines.read().catch(() => ({ done: true }))).done) { /* drop */ }
  })();
  return {
    url,
    origin: u.origin,
    token: u.searchParams.get("token") ?? "",
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      const status = await child.status;
      await errDone;
      return { code: status.code, err };
    },
  };
}
