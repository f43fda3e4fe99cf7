/**
 * A small MQTT 3.1.1 / 5 client over `Deno.connect` (`Deno.connectTls` for
 * `mqtts://`), for what the connector needs: QoS 0, 1 and 2 PUBLISHes out
 * in a bounded window of unacknowledged packet ids, many PUBLISHes encoded
 * into one write; PUBLISHes in, read from the buffer in one loop and
 * acknowledged when the caller says (after its store), many PUBACKs in one
 * write; SUBSCRIBE, keepalive, reconnect with backoff, DISCONNECT.
 *
 * @module
 */
import { Link, timeout } from "./_link.ts";
import {
  CONNACK,
  CONNACK_REASONS,
  type ConnectPacket,
  DISCONNECT,
  PINGRESP,
  type Properties,
  PUBACK,
  PUBCOMP,
  PUBLISH,
  PUBREC,
  type RawPacket,
  readProperties,
  SUBACK,
  TopicCache,
  u16,
  writeAck,
  writeConnect,
  writeDisconnect,
  writePublish,
  Writer,
  writeSubscribe,
} from "./_packets.ts";

/** How a client connects. */
export interface ClientOptions extends Omit<ConnectPacket, "version"> {
  host: string;
  port: number;
  tls: boolean;
  version: 4 | 5;
  /** `host:port`, for messages. */
  where: string;
  /** Connect (and CONNACK) timeout. */
  timeoutMs: number;
  /** Most PUBLISHes awaiting their acknowledgement at once (the broker's Receive Maximum may lower it). */
  window: number;
  /** Each PUBLISH that comes in, as it is read (no await in between). */
  onMessage?: (m: Incoming) => void;
  /** Each change of the connection's state, as one line. */
  onState?: (line: string) => void;
}

/** A PUBLISH that came in. */
export interface Incoming {
  topic: string;
  payload: Uint8Array;
  properties?: Properties;
  dup: boolean;
  qos: number;
  /** Its packet id (0 at QoS 0). */
  id: number;
  /** The connection it came on (its PUBACK is void on another). */
  conn: number;
}

/** A CONNACK that refused the connection. */
export class ConnackError extends Error {
  /** The return code (3.1.1) or reason code (5). */
  code: number;
  constructor(code: number) {
    super(`Connection refused: ${CONNACK_REASONS[code] ?? `code ${code}`}`);
    this.code = code;
  }
}

/** Messages published together, settled once each is acknowledged or one fails. */
interface Batch {
  topic: string;
  topicBytes: Uint8Array;
  qos: number;
  payloads: Uint8Array[];
  props?: (i: number) => Properties | undefined;
  sent: number;
  done: number;
  settled: boolean;
  resolve: () => void;
  reject: (e: Error) => void;
}

/** A SUBSCRIBE awaiting its SUBACK. */
interface Sub {
  resolve: (codes: number[]) => void;
  reject: (e: Error) => void;
}

function isBatch(b: Batch | Sub | undefined): b is Batch {
  return b !== undefined && "payloads" in b;
}
const enc = new TextEncoder();

/**
 * An MQTT client connection that reconnects (250 ms doubling to 5 s) once
 * it was up, one `onState` line per change.
 *
 * @example
 * ```ts ignore
 * const c = await MqttClient.connect({ host: "127.0.0.1", port: 1883, tls: false, version: 5,
 *   where: "127.0.0.1:1883", timeoutMs: 5000, window: 1024, clientId: "x", clean: true, keepaliveS: 30 });
 * await c.publish("a/b", [new Uint8Array([1])], undefined, 1);
 * ```
 */
export class MqttClient {
  readonly options: ClientOptions;
  readonly version: 4 | 5;
  #link: Link | undefined;
  #n = 0;
  #ended = false;
  #window: number;
  #queue: Batch[] = [];
  #slots: (Batch | Sub | undefined)[] = new Array(65536);
  #inflight = 0;
  #nextId = 0;
  #out = new Writer();
  #topics = new TopicCache();
  #filters: string[] = [];
  #subQos = 1;
  #paused = false;
  #resume: (() => void) | undefined;
  #wakeReconnect: (() => void) | undefined;

  private constructor(options: ClientOptions) {
    this.options = options;
    this.version = options.version;
    this.#window = options.window;
  }

  /**
   * Makes the first connection.
   *
   * @throws {ConnackError} the broker refused it
   * @throws {Error} the network (refused, timed out, closed)
   */
  static async connect(options: ClientOptions): Promise<MqttClient> {
    const c = new MqttClient(options);
    await c.#dial();
    return c;
  }

  /** Whether the connection is up. */
  get connected(): boolean {
    return !!this.#link?.up;
  }

  async #dial(): Promise<void> {
    const o = this.options;
    const [limit, cancel] = timeout(o.timeoutMs);
    try {
      const link = await Link.open(o.host, o.port, o.tls, limit, ++this.#n);
      let connack: { resolve: (p: RawPacket) => void; reject: (e: Error) => void } | undefined;
      const acked = new Promise<RawPacket>((resolve, reject) => connack = { resolve, reject });
      this.#link = link;
      link.read(
        (p, keep) => {
          if (p.type !== CONNACK) return this.#onPacket(link, p, keep);
          connack?.resolve({
            ...p,
            buf: p.buf.slice(p.start, p.end),
            start: 0,
            end: p.end - p.start,
          });
        },
        () => this.#pump(),
        () => this.#paused ? new Promise<void>((r) => this.#resume = r) : undefined,
      ).then((e) => {
        connack?.reject(e ?? new Error("the connection closed"));
        this.#lost(link, e);
      });
      const w = new Writer(256);
      writeConnect(w, { ...o, version: this.version });
      link.write(w.take()).catch(() => {});
      const p = await Promise.race([acked, limit]).catch((e) => {
        link.close();
        throw e;
      });
      connack = undefined;
      const code = p.buf[p.start + 1];
      if (code !== 0) {
        link.close();
        throw new ConnackError(code);
      }
      if (this.version === 5 && p.end - p.start > 2) {
        const max = readProperties(p.buf, p.start + 2)[0].receiveMaximum;
        if (max) this.#window = Math.min(o.window, max);
      }
      link.up = true;
      link.keepalive(o.keepaliveS, () => this.#paused);
    } finally {
      cancel();
    }
  }

  #onPacket(link: Link, p: RawPacket, keep: () => void): void {
    const { buf, start, end } = p;
    switch (p.type) {
      case PUBLISH: {
        const qos = (p.flags >> 1) & 3;
        const tl = u16(buf, start);
        const topic = this.#topics.decode(buf, start + 2, start + 2 + tl);
        let at = start + 2 + tl;
        let id = 0;
        if (qos > 0) {
          id = u16(buf, at);
          at += 2;
        }
        let properties: Properties | undefined;
        if (this.version === 5) [{ user: properties }, at] = readProperties(buf, at);
        keep();
        this.options.onMessage?.({
          topic,
          payload: buf.subarray(at, end),
          properties,
          dup: (p.flags & 8) !== 0,
          qos,
          id,
          conn: link.n,
        });
        break;
      }
      case PUBACK:
      case PUBCOMP:
        this.#acked(u16(buf, start), this.version === 5 && end - start > 2 ? buf[start + 2] : 0);
        break;
      case PUBREC: {
        const id = u16(buf, start);
        const reason = this.version === 5 && end - start > 2 ? buf[start + 2] : 0;
        if (reason >= 0x80) this.#acked(id, reason);
        else writeAck(this.#out, 0x62, id);
        break;
      }
      case SUBACK: {
        const id = u16(buf, start);
        const at = this.version === 5 ? readProperties(buf, start + 2)[1] : start + 2;
        const sub = this.#slots[id] as Sub | undefined;
        this.#slots[id] = undefined;
        sub?.resolve(Array.from(buf.subarray(at, end)));
        break;
      }
      case PINGRESP:
      case DISCONNECT:
        break; // a DISCONNECT from the broker: it closes the connection next
      default:
        throw new Error(`unexpected MQTT packet (type ${p.type})`);
    }
  }

  #acked(id: number, reason: number): void {
    const b = this.#slots[id];
    if (!isBatch(b)) return;
    this.#slots[id] = undefined;
    this.#inflight--;
    if (b.settled) return;
    if (reason >= 0x80) {
      this.#fail(
        b,
        new Error(
          `the MQTT broker at ${this.options.where} refused a PUBLISH to ${
            JSON.stringify(b.topic)
          }: ${CONNACK_REASONS[reason] ?? "reason"} (${reason})`,
        ),
      );
    } else if (++b.done === b.payloads.length) {
      b.settled = true;
      b.resolve();
    }
  }

  #fail(b: Batch, e: Error): void {
    b.settled = true;
    const at = this.#queue.indexOf(b);
    if (at >= 0) this.#queue.splice(at, 1);
    b.reject(e);
  }

  #id(): number {
    do this.#nextId = this.#nextId % 65535 + 1; while (this.#slots[this.#nextId] !== undefined);
    return this.#nextId;
  }

  /**
   * Publishes `payloads` to `topic` at `qos`, each with `props(i)` as its
   * MQTT 5 user properties; resolves once every one is acknowledged (at QoS
   * 0, written), rejects at the first refusal or when the connection is
   * lost (then the rest is not sent).
   */
  publish(
    topic: string,
    payloads: Uint8Array[],
    props: ((i: number) => Properties | undefined) | undefined,
    qos: number,
  ): Promise<void> {
    if (payloads.length === 0) return Promise.resolve();
    if (!this.connected) return Promise.reject(this.#down());
    return new Promise((resolve, reject) => {
      this.#queue.push({
        topic,
        topicBytes: enc.encode(topic),
        qos,
        payloads,
        props,
        sent: 0,
        done: 0,
        settled: false,
        resolve,
        reject,
      });
      this.#pump();
    });
  }

  #down(): Error {
    return new Error(
      this.#ended
        ? "the MQTT client is closed"
        : `not connected to the MQTT broker at ${this.options.where}`,
    );
  }

  /** Fills the window from the queued batches, all in one write (with any PUBRELs due). */
  #pump(): void {
    const link = this.#link;
    if (!link?.up) return;
    const w = this.#out;
    const v5 = this.version === 5;
    let zero: [Batch, number][] | undefined;
    while (this.#queue.length > 0 && this.#inflight < this.#window) {
      const b = this.#queue[0];
      const start = b.sent;
      while (b.sent < b.payloads.length && this.#inflight < this.#window) {
        const i = b.sent++;
        let id = 0;
        if (b.qos > 0) this.#slots[id = this.#id()] = b;
        this.#inflight++;
        writePublish(w, v5, b.topicBytes, b.qos, id, b.payloads[i], b.props?.(i));
      }
      if (b.qos === 0) (zero ??= []).push([b, b.sent - start]);
      if (b.sent === b.payloads.length) this.#queue.shift();
    }
    if (w.at === 0) return;
    const written = link.write(w.take());
    written.catch(() => {/* the read loop ends too, and #lost fails the batches */});
    if (zero) {
      const list = zero;
      written.then(() => {
        for (const [b, k] of list) {
          this.#inflight -= k;
          b.done += k;
          if (!b.settled && b.done === b.payloads.length) {
            b.settled = true;
            b.resolve();
          }
        }
        this.#pump();
      }, () => {});
    }
  }

  /** Whether reading is paused ({@link pause}; a lost connection resumes it). */
  get paused(): boolean {
    return this.#paused;
  }

  /** Stops reading (the broker's sends wait in the socket) until {@link resume}. */
  pause(): void {
    this.#paused = true;
  }

  /** Reads again after {@link pause}. */
  resume(): void {
    this.#paused = false;
    this.#resume?.();
    this.#resume = undefined;
  }

  /** Sends the PUBACKs of `messages` in one write (those of an earlier connection are void). */
  ack(messages: Incoming[]): void {
    const link = this.#link;
    if (!link?.up) return;
    const w = new Writer(messages.length * 4 + 4);
    for (const m of messages) if (m.qos > 0 && m.conn === link.n) writeAck(w, 0x40, m.id);
    if (w.at > 0) link.write(w.take()).catch(() => {});
  }

  /**
   * Subscribes to `filters` at `qos` (again after each reconnection);
   * resolves to the SUBACK's codes, one per filter.
   */
  subscribe(filters: string[], qos: number): Promise<number[]> {
    this.#filters = filters;
    this.#subQos = qos;
    return this.#subscribe();
  }

  #subscribe(): Promise<number[]> {
    const link = this.#link;
    if (!link?.up) return Promise.reject(this.#down());
    return new Promise((resolve, reject) => {
      const id = this.#id();
      this.#slots[id] = { resolve, reject };
      const w = new Writer(256);
      writeSubscribe(w, this.version === 5, id, this.#filters, this.#subQos);
      link.write(w.take()).catch(() => {});
    });
  }

  /** What a lost connection leaves: every batch and SUBSCRIBE fails; then reconnect. */
  #lost(link: Link, error?: Error): void {
    const wasUp = link.up;
    link.up = false;
    if (this.#link !== link || !wasUp) return;
    const e = new Error(
      `the connection to the MQTT broker at ${this.options.where} was lost${
        error ? ` (${error.message})` : ""
      }`,
    );
    const slots = this.#slots;
    this.#slots = new Array(65536);
    this.#inflight = 0;
    const queue = this.#queue;
    this.#queue = [];
    this.#out = new Writer();
    for (const b of new Set([...queue, ...slots])) {
      if (isBatch(b)) {
        if (!b.settled) this.#fail(b, e);
      } else b?.reject(e);
    }
    this.resume();
    if (this.#ended) return;
    this.options.onState?.(
      `disconnected from the MQTT broker at ${this.options.where}; reconnecting`,
    );
    this.#reconnect();
  }

  async #reconnect(): Promise<void> {
    for (let period = 250; !this.#ended; period = Math.min(period * 2, 5000)) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, period);
        this.#wakeReconnect = () => {
          clearTimeout(t);
          r();
        };
      });
      if (this.#ended) return;
      try {
        await this.#dial();
      } catch {
        continue;
      }
      if (this.#ended) {
        await this.end();
        return;
      }
      this.options.onState?.(`reconnected to the MQTT broker at ${this.options.where}`);
      if (this.#filters.length > 0) this.#subscribe().catch(() => {});
      return;
    }
  }

  /** Sends DISCONNECT and closes; what is pending fails. */
  async end(): Promise<void> {
    this.#ended = true;
    this.#wakeReconnect?.();
    const link = this.#link;
    if (!link) return;
    if (link.up) {
      const w = new Writer(4);
      writeDisconnect(w);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        link.write(w.take()).catch(() => {}),
        new Promise((r) => timer = setTimeout(r, 1000)),
      ]);
      clearTimeout(timer);
    }
    link.close();
    this.resume();
  }
}
