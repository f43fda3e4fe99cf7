/**
 * Filters of a plain read (no group): by key, by headers, by a regular
 * expression on the payload, and their inverse.
 *
 * @module
 */
import type { RecordBlock } from "./record_block.ts";

/**
 * Which messages a plain read keeps. A message matches when it matches every
 * part given; with `invert`, the messages that do not match are kept instead.
 *
 * @example
 * ```ts
 * import type { MessageFilter } from "./read_filter.ts";
 * const errors: MessageFilter = { headers: { level: "error" }, grep: /timeout/i };
 * ```
 */
export interface MessageFilter {
  /** Only messages with this key. */
  key?: string;
  /** Only messages with every one of these headers, of these values. */
  headers?: Record<string, string>;
  /** Only messages whose payload (as UTF-8 text) this matches. */
  grep?: RegExp;
  /**
   * Keep the messages that do not match instead.
   * @default false
   */
  invert?: boolean;
}

/**
 * True when `f` filters anything.
 *
 * @example
 * ```ts
 * import { filters } from "./read_filter.ts";
 * filters({}); // false
 * filters({ key: "a" }); // true
 * ```
 */
export function filters(f: MessageFilter | undefined): f is MessageFilter {
  return f !== undefined &&
    (f.key !== undefined || (f.headers !== undefined && Object.keys(f.headers).length > 0) ||
      f.grep !== undefined || f.invert === true);
}

/**
 * A test of the records of a block against `f`: given a block, the test of
 * its record `i` (true when the record is kept).
 *
 * @example
 * ```ts
 * import { blockMatcher } from "./read_filter.ts";
 * import { blockOf } from "./record_block.ts";
 * const block = blockOf([{ offset: 0, timestamp: 0, payload: new TextEncoder().encode("disk error") }]);
 * blockMatcher({ grep: /error/ })(block)(0); // true
 * ```
 *
 * The payloads a regular expression sees are decoded once per block: copied
 * side by side and decoded as UTF-8 in one call; when that text is ASCII (one
 * character per byte), a payload's text is a slice of it, else each payload
 * is decoded on its own.
 */
export function blockMatcher(
  f: MessageFilter,
): (block: RecordBlock) => (i: number) => boolean {
  const utf8 = new TextDecoder();
  // A global or sticky expression keeps state between tests: drop those flags.
  const grep = f.grep ? new RegExp(f.grep.source, f.grep.flags.replace(/[gy]/g, "")) : undefined;
  const headers = f.headers ? Object.entries(f.headers) : [];
  const key = f.key;
  const invert = f.invert === true;
  return (block) => {
    const { data, starts, ends } = block;
    let text: string | undefined;
    let at: Uint32Array | undefined;
    const decodeAll = () => {
      const n = block.count;
      let total = 0;
      for (let i = 0; i < n; i++) total += ends[i] - starts[i];
      const joined = new Uint8Array(total);
      at = new Uint32Array(n + 1);
      let p = 0;
      for (let i = 0; i < n; i++) {
        at[i] = p;
        const s = starts[i], e = ends[i];
        if (e - s < 64) { for (let k = s; k < e; k++) joined[p++] = data[k]; }
        else (joined.set(data.subarray(s, e), p), (p += e - s));
      }
      at[n] = p;
      const decoded = utf8.decode(joined);
      // One character per byte and no replacement: every byte was ASCII.
      text = decoded.length === total && decoded.indexOf("\ufffd") < 0 ? decoded : "";
    };
    const payloadText = (i: number): string => {
      if (text === undefined) decodeAll();
      if (text === "") return utf8.decode(data.subarray(starts[i], ends[i]));
      return text!.substring(at![i], at![i + 1]);
    };
    return (i) => {
      let match = true;
      const m = block.meta?.[i];
      if (key !== undefined && m?.key !== key) match = false;
      if (match && headers.length > 0) {
        const h = m?.headers;
        for (const [name, value] of headers) {
          if (h?.[name] !== value) {
            match = false;
            break;
          }
        }
      }
      if (match && grep) match = grep.test(payloadText(i));
      return match !== invert;
    };
  };
}
