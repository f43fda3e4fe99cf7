/**
 * The streams of the NATS backend: one per topic partition, named by
 * {@link streamName} and stored under {@link subjectOf}; made on first use
 * with the topic's duplicate window and replica count, which
 * {@link NatsStreams} keeps in step. Also the errors JetStream's answers map
 * to.
 *
 * @module
 */
import { type JetStreamManager, StorageType } from "@nats-io/jetstream";
import { MqError } from "../../core/errors.ts";
import { reasonOf, type Retrier } from "./_retry.ts";

/** A stream's duplicate window unless its topic sets one: JetStream's default (ms). */
export const DEFAULT_WINDOW_MS = 120_000;

/** The stream of a topic's partition: a readable name, made unique by a hash. */
export function streamName(topic: string, partition: number): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < topic.length; i++) h = Math.imul(h ^ topic.charCodeAt(i), 0x01000193);
  return `mq_${topic.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 120)}_${
    (h >>> 0).toString(36)
  }_${partition}`;
}

/** The subject a topic's partition is stored under. */
export function subjectOf(topic: string, partition: number): string {
  return `mq.${topic}.${partition}`;
}

/** Streams of one connection, made or changed on first use; see the module doc. */
export class NatsStreams {
  readonly #jsm: JetStreamManager;
  readonly #retry: Retrier;
  readonly #defaultReplicas: () => number;
  /** Streams known to exist, with their duplicate window (ns). */
  readonly #known = new Map<string, number>();

  constructor(jsm: JetStreamManager, retry: Retrier, defaultReplicas: () => number) {
    this.#jsm = jsm;
    this.#retry = retry;
    this.#defaultReplicas = defaultReplicas;
  }

  /**
   * The stream of a partition, created on first use (with `windowMs` as its
   * duplicate window, else JetStream's default of two minutes, and
   * `replicas` copies, else the URL's); given `replicas`, an existing stream
   * with another count is changed to it.
   */
  async ensure(
    topic: string,
    partition: number,
    windowMs?: number,
    replicas?: number,
  ): Promise<string> {
    const name = streamName(topic, partition);
    if (this.#known.has(name) && replicas === undefined) return name;
    const copies = replicas ?? this.#defaultReplicas();
    const window = await this.#retry.run(`about stream ${name}`, async () => {
      try {
        const si = await this.#jsm.streams.info(name);
        if (replicas !== undefined && si.config.num_replicas !== replicas) {
          await this.#jsm.streams.update(name, { ...si.config, num_replicas: replicas });
        }
        return si.config.duplicate_window;
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
      const window = Math.max(1, windowMs ?? DEFAULT_WINDOW_MS) * 1_000_000;
      try {
        await this.#jsm.streams.add({
          name,
          subjects: [subjectOf(topic, partition)],
          storage: StorageType.File,
          duplicate_window: window,
          num_replicas: copies,
        });
        return window;
      } catch (e) {
        if (isPlacement(e)) throw e;
        // Created meanwhile by another client: fine.
        try {
          return (await this.#jsm.streams.info(name)).config.duplicate_window;
        } catch {
          throw e;
        }
      }
    }).catch((e) => {
      if (isPlacement(e)) throw placementError(copies, `topic "${topic}" (stream ${name})`, e);
      throw unreachable(e);
    });
    this.#known.set(name, window);
    return name;
  }

  /** Sets a stream's duplicate window to `windowMs` where it differs. */
  async ensureWindow(stream: string, windowMs: number): Promise<void> {
    const want = Math.max(1, windowMs) * 1_000_000;
    if (this.#known.get(stream) === want) return;
    await this.#retry.run(`about stream ${stream}`, async () => {
      const si = await this.#jsm.streams.info(stream);
      if (si.config.duplicate_window !== want) {
        await this.#jsm.streams.update(stream, { ...si.config, duplicate_window: want });
      }
    }).catch((e) => {
      throw unreachable(e);
    });
    this.#known.set(stream, want);
  }

  /** Forgets a stream that was deleted. */
  forget(name: string): void {
    this.#known.delete(name);
  }
}

/** `e` as an `UNREACHABLE` error (an `MqError` as it is). */
export function unreachable(e: unknown, what = "NATS"): MqError {
  return MqError.is(e) ? e : new MqError("UNREACHABLE", `${what}: ${(e as Error).message}`, {
    cause: e,
  });
}

/** True when JetStream reports that a stream (or consumer) does not exist. */
export function isNotFound(e: unknown): boolean {
  return /not found/i.test((e as Error)?.message ?? "");
}

/** JetStream cannot place the copies asked for (too few servers, or not clustered). */
export function isPlacement(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  return code === 10005 || code === 10023 || code === 10074 ||
    /suitable peers|insufficient resources|replicas > 1 not supported/i.test(
      (e as Error)?.message ?? "",
    );
}

/** The `UNAVAILABLE` error of copies JetStream cannot place. */
export function placementError(replicas: number, what: string, cause: unknown): MqError {
  return new MqError(
    "UNAVAILABLE",
    `NATS cannot keep ${replicas} replicas of ${what}: ${reasonOf(cause)} ` +
      `(replicas must not exceed the JetStream servers of the cluster)`,
    { cause },
  );
}
