/**
 * Core NATS publishing of batches without the client's cost per message
 * (see {@link coreFrames}), for the subject bridge.
 *
 * @module
 */
import type { MsgHdrs, NatsConnection } from "@nats-io/transport-node";
import { MqError } from "../../core/errors.ts";

/** The part of the client's protocol handler that {@link coreFrames} writes through. */
interface RawProtocol {
  sendCommand(cmd: string | Uint8Array, ...payloads: Uint8Array[]): void;
  outMsgs: number;
  outBytes: number;
}

const FRAME_CHUNK = 256 * 1024;
const CRLF = 0x0d0a;

/**
 * Core NATS publishing of many messages to one subject without the client's
 * cost per message (a protocol line encoded and three buffers queued for
 * each): the `PUB`/`HPUB` frames of a batch are written into large buffers
 * and handed to the connection's protocol handler as they fill, so they go
 * out in order with everything else on the connection. Undefined where the
 * client does not offer that handler (then `publish` is used).
 *
 * @throws {Error} as `publish` would: a closed or draining connection, a
 * subject with white space, a message over the server's max_payload
 */
export function coreFrames(nc: NatsConnection, subject: string) {
  const protocol = (nc as unknown as { protocol?: RawProtocol }).protocol;
  if (typeof protocol?.sendCommand !== "function") return undefined;
  if (nc.isClosed() || nc.isDraining()) throw new Error("the NATS connection is closed");
  if (subject.length === 0 || /\s/.test(subject)) throw new Error(`invalid subject ${subject}`);
  const max = nc.info?.max_payload ?? 1024 * 1024;
  const subj = new TextEncoder().encode(subject);
  let buf = new Uint8Array(FRAME_CHUNK);
  let at = 0, msgs = 0, bytes = 0;
  const ascii = (s: string) => {
    for (let i = 0; i < s.length; i++) buf[at++] = s.charCodeAt(i);
  };
  const flush = () => {
    if (at === 0) return;
    protocol.sendCommand(buf.subarray(0, at));
    protocol.outMsgs += msgs;
    protocol.outBytes += bytes;
    buf = new Uint8Array(FRAME_CHUNK);
    at = msgs = bytes = 0;
  };
  return {
    add(payload: Uint8Array, headers?: MsgHdrs) {
      const hdr = headers ? (headers as unknown as { encode(): Uint8Array }).encode() : undefined;
      const len = payload.length + (hdr?.length ?? 0);
      if (len > max) {
        throw new MqError(
          "MESSAGE_TOO_LARGE",
          `a message of ${subject} is ${len} bytes with its headers; the NATS server takes at most ${max} (max_payload)`,
        );
      }
      const size = subj.length + len + 40;
      if (at + size > buf.length) {
        flush();
        if (size > buf.length) buf = new Uint8Array(size);
      }
      ascii(hdr ? "HPUB " : "PUB ");
      buf.set(subj, at);
      at += subj.length;
      ascii(hdr ? ` ${hdr.length} ${len}\r\n` : ` ${len}\r\n`);
      if (hdr) {
        buf.set(hdr, at);
        at += hdr.length;
      }
      buf.set(payload, at);
      at += payload.length;
      buf[at++] = CRLF >> 8;
      buf[at++] = CRLF & 0xff;
      msgs++;
      bytes += len;
    },
    end: flush,
  };
}
