/** `mq exchange create|ls|rm`, `mq bind`, `mq unbind`. */
import type { Call } from "../definition.ts";
import { MqError } from "../../core/errors.ts";
import type { Binding } from "../../mod.ts";
import { headerFlags, note, openBackend, print } from "../runtime.ts";
import { describeBinding, table } from "../format.ts";

/** The options of `mq bind`, as parsed. */
export interface BindOptions {
  key?: string;
  match?: string;
  header: string[];
  toExchange?: boolean;
}

/** `mq exchange create <name> --type TYPE`. */
export async function exchangeCreate(
  name: string,
  opts: { type: string },
  cmd: Call,
): Promise<void> {
  const { mq } = await openBackend(cmd);
  try {
    await mq.exchanges.create(name, opts.type);
    note(`mq: exchange "${name}" (${opts.type}) is there`);
  } finally {
    await mq.close();
  }
}

/** `mq exchange ls`: exchanges with their bindings. */
export async function exchangeList(opts: { json?: boolean }, cmd: Call): Promise<void> {
  const { mq } = await openBackend(cmd);
  try {
    const list = await mq.exchanges.list();
    if (opts.json) return await print(JSON.stringify(list) + "\n");
    if (list.length === 0) {
      return note("mq: no exchanges yet (mq exchange create NAME --type TYPE)");
    }
    const rows: (string | number)[][] = [];
    for (const e of list) {
      if (e.bindings.length === 0) rows.push([e.name, e.type, "-", "-"]);
      for (const b of e.bindings) {
        rows.push([e.name, e.type, describeBinding(b), `${b.destinationKind} ${b.destination}`]);
      }
    }
    await print(table(["EXCHANGE", "TYPE", "BINDING", "TO"], rows));
  } finally {
    await mq.close();
  }
}

/** `mq exchange rm <name>`: an exchange and its bindings removed. */
export async function exchangeRemove(name: string, cmd: Call): Promise<void> {
  const { mq } = await openBackend(cmd);
  try {
    await mq.exchanges.remove(name);
    note(`mq: removed exchange "${name}"`);
  } finally {
    await mq.close();
  }
}

/** `mq bind <exchange> <topic>`: a topic (or exchange) bound to an exchange. */
export async function bindCommand(
  exchange: string,
  destination: string,
  opts: BindOptions,
  cmd: Call,
): Promise<void> {
  const binding: Binding = {
    destination,
    destinationKind: opts.toExchange ? "exchange" : "topic",
    key: opts.key,
    headers: bindingHeaders(opts.header, opts.match),
    match: opts.match as Binding["match"],
  };
  const { mq } = await openBackend(cmd);
  try {
    await mq.exchanges.bind(exchange, binding);
    note(
      `mq: bound ${binding.destinationKind} "${destination}" to "${exchange}" (${
        describeBinding(binding)
      })`,
    );
  } finally {
    await mq.close();
  }
}

/** `mq unbind <exchange> <topic>`: its bindings (or the one with --key) removed. */
export async function unbindCommand(
  exchange: string,
  destination: string,
  opts: { key?: string },
  cmd: Call,
): Promise<void> {
  const { mq } = await openBackend(cmd);
  try {
    const n = await mq.exchanges.unbind(exchange, destination, opts.key);
    if (n === 0) {
      throw new MqError(
        "INVALID_ARGUMENT",
        `"${destination}" is not bound to "${exchange}"${
          opts.key ? ` with key ${JSON.stringify(opts.key)}` : ""
        }`,
      );
    }
    note(`mq: removed ${n} binding${n === 1 ? "" : "s"} of "${destination}" to "${exchange}"`);
  } finally {
    await mq.close();
  }
}

/**
 * The headers of a binding from repeated `-H NAME=VALUE`: with `--match any`
 * a name may come several times (any of its values matches); else once.
 *
 * @example
 * ```ts
 * import { bindingHeaders } from "./exchange.ts";
 * bindingHeaders(["type=png", "type=jpg"], "any"); // { type: ["png", "jpg"] }
 * ```
 * @throws {MqError} `INVALID_ARGUMENT` for a malformed header, or a repeated name without `--match any`
 */
export function bindingHeaders(
  list: readonly string[],
  match: string | undefined,
): Record<string, string | string[]> | undefined {
  if (match !== "any") {
    try {
      return headerFlags(list);
    } catch (e) {
      if (!MqError.is(e) || !e.message.includes("given twice")) throw e;
      throw new MqError("INVALID_ARGUMENT", `${e.message}; several values need --match any`);
    }
  }
  const out: Record<string, string | string[]> = {};
  for (const h of list) {
    const [name, value] = Object.entries(headerFlags([h])!)[0];
    const had = out[name];
    out[name] = had === undefined ? value : [...(Array.isArray(had) ? had : [had]), value];
  }
  return list.length === 0 ? undefined : out;
}
