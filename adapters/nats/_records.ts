/**
 * How a record travels in a JetStream message: its metadata as headers
 * (`Mq-Key`, `Mq-Headers`, ...), its id as `Nats-Msg-Id` (JetStream's dedup)
 * or `Mq-Id`, and back.
 */
import { headers as natsHeaders, type MsgHdrs } from "@nats-io/transport-node";
import type { JsMsg } from "@nats-io/jetstream";
import type { RecordMeta, StoredRecord } from "../../core/record.ts";

/** The headers of a record's metadata. */
const H = {
  key: "Mq-Key",
  id: "Nats-Msg-Id",
  plainId: "Mq-Id",
  headers: "Mq-Headers",
  ts: "Mq-Ts",
  deliver: "Mq-Deliver-At",
  expires: "Mq-Expires-At",
  attempt: "Mq-Attempt",
} as const;

/**
 * Marks a `Nats-Msg-Id` that mq gave a record without an id, so that a
 * publish retried after a lost ack is stored once: `:` never starts an
 * encoded id of a user (`encodeURIComponent` escapes it).
 */
const AUTO_ID = ":";

/**
 * The headers and `Nats-Msg-Id` of a record: with `dedup` its id is the
 * `Nats-Msg-Id` (deduplicated by the server), else it goes as `Mq-Id` and
 * the message gets an id of mq's own, `:<unique>` ({@link AUTO_ID}), so that
 * a publish resent after a lost ack is stored once.
 */
export function publishHeaders(
  m: RecordMeta | undefined,
  dedup: boolean,
  unique: string,
): { headers?: MsgHdrs; msgID: string } {
  let msgID = `${AUTO_ID}${unique}`;
  if (!m) return { msgID };
  const h = natsHeaders();
  if (m.key !== undefined) h.set(H.key, encodeURIComponent(m.key));
  if (m.id !== undefined) {
    if (dedup) msgID = encodeURIComponent(m.id);
    else h.set(H.plainId, encodeURIComponent(m.id));
  }
  if (m.headers && Object.keys(m.headers).length > 0) {
    h.set(H.headers, encodeURIComponent(JSON.stringify(m.headers)));
  }
  if (m.timestamp !== undefined) h.set(H.ts, String(m.timestamp));
  if (m.deliverAt !== undefined) h.set(H.deliver, String(m.deliverAt));
  if (m.expiresAt !== undefined) h.set(H.expires, String(m.expiresAt));
  if (m.attempt) h.set(H.attempt, String(m.attempt));
  return { headers: h, msgID };
}

/** The record a JetStream message holds. */
export function toRecord(m: JsMsg): StoredRecord {
  const d = m.data;
  const r: StoredRecord = {
    offset: m.seq - 1,
    timestamp: Math.floor(m.info.timestampNanos / 1_000_000),
    // A plain Uint8Array view (the client hands out Node Buffers).
    payload: new Uint8Array(d.buffer, d.byteOffset, d.byteLength),
  };
  const h = m.headers;
  if (!h) return r;
  const get = (k: string) => (h.has(k) ? h.get(k) : undefined);
  const key = get(H.key);
  if (key !== undefined) r.key = decodeURIComponent(key);
  const natsId = get(H.id);
  const id = natsId !== undefined && !natsId.startsWith(AUTO_ID) ? natsId : get(H.plainId);
  if (id !== undefined) r.id = decodeURIComponent(id);
  const hdrs = get(H.headers);
  if (hdrs !== undefined) {
    try {
      r.headers = JSON.parse(decodeURIComponent(hdrs));
    } catch {
      r.headers = {};
    }
  }
  const ts = get(H.ts);
  if (ts !== undefined) r.timestamp = Number(ts);
  const deliver = get(H.deliver);
  if (deliver !== undefined) r.deliverAt = Number(deliver);
  const expires = get(H.expires);
  if (expires !== undefined) r.expiresAt = Number(expires);
  const attempt = get(H.attempt);
  if (attempt !== undefined) r.attempt = Number(attempt);
  return r;
}
