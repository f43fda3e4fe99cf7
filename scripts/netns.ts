/**
 * A private network for tests: hosts in network namespaces (`ip netns`),
 * each joined by a veth pair to a bridge in the test's own namespace, on a
 * private /24 that no route of the machine uses. A host can be cut off (its
 * link set down: no packet in or out, no reset) and healed. Needs root and
 * iproute2; {@link makeNetLab} says why not where it cannot make one.
 *
 * @example
 * ```ts ignore
 * import { makeNetLab } from "./netns.ts";
 * const lab = await makeNetLab(3);
 * if ("skip" in lab) console.error(lab.skip);
 * else await lab.close();
 * ```
 *
 * @module
 */

/** A private network of hosts. */
export interface NetLab {
  /** The address of each host (`10.x.y.1`, ...). */
  hosts: string[];
  /** The command prefix that runs a program on host `i`. */
  exec(i: number): string[];
  /** Cuts host `i` off (every packet dropped, no reset). */
  cut(i: number): Promise<void>;
  /** Joins host `i` again. */
  heal(i: number): Promise<void>;
  /** Removes the namespaces, links and the bridge. */
  close(): Promise<void>;
}

async function ip(args: string[]): Promise<void> {
  const out = await new Deno.Command("ip", { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
}

/**
 * Makes `size` hosts on a new bridge, or says why it cannot (not root, no
 * `ip`, namespaces not allowed here).
 */
export async function makeNetLab(size: number): Promise<NetLab | { skip: string }> {
  const id = Math.random().toString(16).slice(2, 6);
  const bridge = `mqbr${id}`;
  const ns = (i: number) => `mqns${id}${i}`;
  const veth = (i: number) => `mqv${id}${i}`;
  let routes = "";
  try {
    routes = new TextDecoder().decode(
      (await new Deno.Command("ip", { args: ["-4", "route"], stdout: "piped" }).output()).stdout,
    );
  } catch (e) {
    return { skip: `cannot run ip (iproute2): ${(e as Error).message}` };
  }
  let net = "";
  for (let tries = 0; tries < 20 && !net; tries++) {
    const candidate = `10.${200 + Math.floor(Math.random() * 50)}.${
      Math.floor(Math.random() * 250)
    }`;
    if (!routes.includes(`${candidate}.`)) net = candidate;
  }
  const made: string[] = [];
  const close = async () => {
    for (let i = 0; i < size; i++) await ip(["netns", "del", ns(i)]).catch(() => {});
    await ip(["link", "del", bridge]).catch(() => {});
  };
  try {
    await ip(["link", "add", bridge, "type", "bridge"]);
    made.push(bridge);
    await ip(["addr", "add", `${net}.254/24`, "dev", bridge]);
    await ip(["link", "set", bridge, "up"]);
    for (let i = 0; i < size; i++) {
      await ip(["netns", "add", ns(i)]);
      await ip(["link", "add", veth(i), "type", "veth", "peer", "name", "eth0", "netns", ns(i)]);
      await ip(["link", "set", veth(i), "master", bridge, "up"]);
      await ip(["-n", ns(i), "addr", "add", `${net}.${i + 1}/24`, "dev", "eth0"]);
      await ip(["-n", ns(i), "link", "set", "eth0", "up"]);
      await ip(["-n", ns(i), "link", "set", "lo", "up"]);
    }
  } catch (e) {
    await close();
    return { skip: `cannot make network namespaces here: ${(e as Error).message}` };
  }
  return {
    hosts: Array.from({ length: size }, (_, i) => `${net}.${i + 1}`),
    exec: (i) => ["ip", "netns", "exec", ns(i)],
    cut: (i) => ip(["link", "set", veth(i), "down"]),
    heal: (i) => ip(["link", "set", veth(i), "up"]),
    close,
  };
}
