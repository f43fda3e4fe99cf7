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

/** True when `f` filters anything. */
export function filters(f: MessageFilter | undefined): f is MessageFilter {
  return f !== undefined &&
    (f.key !== undefined || (f.headers !== undefined && Object.keys(f.headers).length > 0) ||
      f.grep !== undefined || f.invert === true);
}

/**
 * A test of the records of a block against `f`: given a block, the test of
 * its record `i` (true when the record is kept).
 *
 * The payloads a regular expression sees are decoded once per block: the
 * block's bytes as Latin-1 (one character per byte, so a payload's bytes are
 * a slice of the text), and, for a payload with a byte over 127, as UTF-8 on
 * its own.
 */
export function blockMatcher(
  f: MessageFilter,
): (block: RecordBlock) => (i: number) => boolean {
  const utf8 = new TextDecoder();
  const latin1 = new TextDecoder("latin1");
  // A global or sticky expression keeps state between tests: drop those flags.
  const grep = f.grep ? new RegExp(f.grep.source, f.grep.flags.replace(/[gy]/g, "")) : undefined;
  const headers = f.headers ? Object.entries(f.headers) : [];
  const key = f.key;
  const invert = f.invert === true;
  return (block) => {
    const { data, starts, ends } = block;
    let text: string | undefined;
    let base = 0;
    const payloadText = (i: number): string => {
      const s = starts[i], e = ends[i];
      for (let k = s; k < e; k++) if (data[k] > 127) return utf8.decode(data.subarray(s, e));
      if (text === undefined) {
        base = starts[0];
        text = latin1.decode(data.subarray(base, ends[block.count - 1]));
      }
      return text.substring(s - base, e - base);
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
