/**
 * One TCP (or TLS) connection of the MQTT client: opened with a timeout,
 * its writes queued and flushed one after the other (what is queued
 * meanwhile goes in one write), its bytes read in a loop that hands out
 * whole packets, and a keepalive (PINGREQ when idle, closed when the broker
 * went silent).
 *
 * @module
 */
import { type RawPacket, readPackets, writePing, Writer } from "./_packets.ts";

const READ = 65536;

/** A promise that rejects after `ms` with "connect timed out", and its cancel. */
export function timeout(ms: number): [Promise<never>, () => void] {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const p = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("connect timed out")), ms);
  });
  p.catch(() => {});
  return [p, () => clearTimeout(timer)];
}

/** A connection to a broker. */
export class Link {
  /** Its number (the client counts its connections). */
  readonly n: number;
  /** Whether the broker accepted it (CONNACK 0). */
  up = false;
  #conn: Deno.Conn;
  #pending: Uint8Array[] = [];
  #flushing: Promise<void> | null = null;
  #lastRead = Date.now();
  #lastWrite = Date.now();
  #timer?: ReturnType<typeof setInterval>;

  private constructor(conn: Deno.Conn, n: number) {
    this.#conn = conn;
    this.n = n;
  }

  /**
   * Opens a connection to `host:port` (TLS when `tls`).
   *
   * @throws {Error} refused, timed out
   */
  static async open(
    host: string,
    port: number,
    tls: boolean,
    limit: Promise<never>,
    n: number,
  ): Promise<Link> {
    const connecting = tls
      ? Deno.connectTls({ hostname: host, port })
      : Deno.connect({ hostname: host, port });
    const conn = await Promise.race([connecting, limit]).catch((e) => {
      connecting.then((c) => c.close(), () => {});
      throw e;
    });
    if (!tls) (conn as Deno.TcpConn).setNoDelay(true);
    return new Link(conn, n);
  }

  /** Closes the connection (its read loop then ends). */
  close(): void {
    clearInterval(this.#timer);
    try {
      this.#conn.close();
    } catch { /* closed */ }
  }

  /**
   * Sends a PINGREQ when nothing was written, or nothing read, for half of
   * `keepaliveS` (a QoS 0 publisher writes all the time and hears nothing
   * back: only the ping's answer shows the broker is there); closes when
   * nothing came for 1.5 times it, unless `paused()` (reading stopped on
   * purpose, the broker's answers wait unread).
   */
  keepalive(keepaliveS: number, paused: () => boolean): void {
    const every = keepaliveS * 500;
    this.#timer = setInterval(() => {
      const now = Date.now();
      if (paused()) this.#lastRead = now;
      if (now - this.#lastRead > keepaliveS * 1500) this.close();
      else if (now - this.#lastWrite >= every || now - this.#lastRead >= every) {
        const w = new Writer(4);
        writePing(w);
        this.write(w.take()).catch(() => {});
      }
    }, every);
  }

  /** Writes `bytes` after what is already queued; resolves once written. */
  write(bytes: Uint8Array): Promise<void> {
    this.#pending.push(bytes);
    this.#lastWrite = Date.now();
    return this.#flushing ??= this.#flush();
  }

  async #flush(): Promise<void> {
    try {
      while (this.#pending.length > 0) {
        const chunks = this.#pending;
        this.#pending = [];
        let data = chunks[0];
        if (chunks.length > 1) {
          data = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
          let at = 0;
          for (const c of chunks) {
            data.set(c, at);
            at += c.length;
          }
        }
        for (let at = 0; at < data.length;) at += await this.#conn.write(data.subarray(at));
      }
    } catch (e) {
      this.#pending = [];
      this.close();
      throw e;
    } finally {
      this.#flushing = null;
    }
  }

  /**
   * Reads until the connection ends: `each` on every whole packet of a read
   * (with `keep`, to call when something of the packet's bytes is kept: the
   * next read then goes into a new buffer), `after` once per read, and
   * `paused()` awaited before each read when it gives a promise. Resolves to
   * the error that ended it, if any.
   */
  async read(
    each: (p: RawPacket, keep: () => void) => void,
    after: () => void,
    paused: () => Promise<void> | undefined,
  ): Promise<Error | undefined> {
    let buf = new Uint8Array(READ);
    let end = 0, need = 0;
    let kept = false;
    const keep = () => kept = true;
    const one = (p: RawPacket) => each(p, keep);
    try {
      for (;;) {
        const wait = paused();
        if (wait) {
          await wait;
          this.#lastRead = Date.now();
        }
        if (buf.length - end < Math.max(READ / 4, need - end)) {
          const next = new Uint8Array(Math.max(READ, need, end + READ / 4));
          next.set(buf.subarray(0, end));
          buf = next;
        }
        const n = await this.#conn.read(buf.subarray(end));
        if (n === null) return undefined;
        this.#lastRead = Date.now();
        end += n;
        const r = readPackets(buf, end, one);
        need = r.need;
        if (kept) {
          // Payloads handed out point into this buffer: the next read goes into a new one.
          const next = new Uint8Array(Math.max(READ, need));
          next.set(buf.subarray(r.used, end));
          buf = next;
          kept = false;
        } else if (r.used > 0) buf.copyWithin(0, r.used, end);
        end -= r.used;
        after();
      }
    } catch (e) {
      return e as Error;
    } finally {
      this.close();
    }
  }
}
