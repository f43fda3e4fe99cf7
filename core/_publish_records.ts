/**
 * What the publish pipeline does to a batch's records: splits them over a
 * topic's partitions, lists their ids, notes the delayed ones.
 *
 * @module
 */
import type { PartitionWrite } from "./adapter.ts";
import { MqError } from "./errors.ts";
import { partitionOf } from "./_partitioner.ts";
import { pickRecords, type RecordBatch } from "./record.ts";

/**
 * `batch` split over a topic's `n` partitions: all to `partition` when one
 * is asked for; else by key (records without one together, to the next
 * partition of `sticky`), or all to the next partition of `sticky`.
 *
 * @throws {MqError} `INVALID_ARGUMENT` for a partition the topic does not have
 */
export function splitOverPartitions(
  topic: string,
  n: number,
  batch: RecordBatch,
  partition: number | undefined,
  sticky: () => number,
): PartitionWrite[] {
  if (partition !== undefined) {
    if (!Number.isInteger(partition) || partition < 0 || partition >= n) {
      throw new MqError(
        "INVALID_ARGUMENT",
        `partition ${partition} does not exist: topic "${topic}" has ${n} (0 to ${n - 1})`,
      );
    }
    return [{ topic, partition, batch }];
  }
  const keyed = n > 1 && batch.meta?.some((m) => m?.key !== undefined);
  if (!keyed) return [{ topic, partition: n > 1 ? sticky() % n : 0, batch }];
  const groups: number[][] = Array.from({ length: n }, () => []);
  const unkeyed = sticky() % n;
  for (let i = 0; i < batch.count; i++) {
    const key = batch.meta?.[i]?.key;
    groups[key === undefined ? unkeyed : partitionOf(key, n)].push(i);
  }
  const out: PartitionWrite[] = [];
  for (let p = 0; p < n; p++) {
    if (groups[p].length > 0) {
      out.push({ topic, partition: p, batch: pickRecords(batch, groups[p]) });
    }
  }
  return out;
}

/** The ids of a batch's records that have one. */
export function* idsOf(batch: RecordBatch): Generator<string> {
  if (!batch.meta) return;
  for (let i = 0; i < batch.count; i++) {
    const id = batch.meta[i]?.id;
    if (id !== undefined) yield id;
  }
}

/**
 * Adds the delayed records of `run`, written to `partition` from offset
 * `first` (only those at `kept`, in order, when some were dropped), to
 * `delayed`: their id (else `partition-offset`, as consumers name them) and
 * when they are due.
 */
export function noteDelayed(
  delayed: [string, number][],
  run: RecordBatch,
  partition: number,
  first: number,
  kept?: number[],
): void {
  if (!run.meta) return;
  const n = kept ? kept.length : run.count;
  for (let j = 0; j < n; j++) {
    const m = run.meta[kept ? kept[j] : j];
    if (m?.deliverAt !== undefined) {
      delayed.push([m.id ?? `${partition}-${first + j}`, m.deliverAt]);
    }
  }
}
