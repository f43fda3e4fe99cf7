/**
 * The connection state that both Redis connections of the connector keep
 * (`_pipe.ts` going out, `_link.ts` coming in): one live connection at a
 * time; a broken one fails what is in flight on it and says so once per
 * outage; the next use connects again (overlapping uses wait for the same
 * connect) and says so; a close also closes a connection still being made.
 *
 * @module
 */

/** A connection and what rides on it. */
export interface Wire {
  conn: Deno.Conn;
  /** Set once the connection failed: everything in flight failed with it. */
  broken?: Error;
}

/**
 * The live connection of one Redis endpoint, made by `open`; `fail` fails
 * what was in flight on a connection that broke; `say` hears the changes of
 * state.
 *
 * @example
 * ```ts ignore
 * const wires = new Reconnecting(async () => ({ conn: await Deno.connect({ port: 6379 }) }), "127.0.0.1:6379", () => {}, console.error);
 * const wire = await wires.up();
 * ```
 */
export class Reconnecting<W extends Wire> {
  #open: () => Promise<W>;
  #where: string;
  #fail: (wire: W, e: Error) => void;
  #say: (line: string) => void;
  #live: W | undefined;
  #connecting: Promise<W> | undefined;
  #down = false;
  #closed = false;

  constructor(
    open: () => Promise<W>,
    where: string,
    fail: (wire: W, e: Error) => void,
    say: (line: string) => void,
  ) {
    this.#open = open;
    this.#where = where;
    this.#fail = fail;
    this.#say = say;
  }

  /** Makes the first connection (its failure is thrown as it is). */
  async start(): Promise<this> {
    this.#live = await this.#open();
    return this;
  }

  /** The live connection, connecting again when there is none. */
  async up(): Promise<W> {
    if (this.#closed) throw new Error("the connection was closed");
    if (this.#live) return this.#live;
    this.#connecting ??= this.#open().then((wire) => {
      if (this.#closed) {
        close(wire);
        throw new Error("the connection was closed");
      }
      this.#live = wire;
      if (this.#down) this.#say(`reconnected to Redis at ${this.#where}`);
      this.#down = false;
      return wire;
    }).finally(() => this.#connecting = undefined);
    return await this.#connecting;
  }

  /**
   * Fails `wire` and what is in flight on it, once; says so once per
   * outage, unless `quiet` (a close of ours, not an outage).
   */
  break(wire: W, e: Error, quiet = false): void {
    if (wire.broken) return;
    wire.broken = e;
    if (this.#live === wire) this.#live = undefined;
    close(wire);
    this.#fail(wire, e);
    if (quiet) return;
    if (!this.#down) {
      this.#say(`disconnected from Redis at ${this.#where} (${e.message}); reconnecting`);
    }
    this.#down = true;
  }

  /** Closes the live connection, quietly; the next {@link up} connects again. */
  cut(): void {
    if (this.#live) this.break(this.#live, new Error("the connection was closed"), true);
  }

  /** Closes for good (a connection still being made is closed once made). */
  close(): void {
    this.#closed = true;
    this.cut();
  }
}

function close(wire: Wire): void {
  try {
    wire.conn.close();
  } catch { /* closed already */ }
}
