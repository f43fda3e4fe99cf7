/** Buffered writing to stdout: one write per many messages. */

/** Raised when the reader of our stdout went away (e.g. `| head`). */
export class OutputClosed extends Error {}

/** A buffered writer over a Deno writer such as `Deno.stdout`. */
export class Output {
  #out: { write(p: Uint8Array): Promise<number> };
  #buf: Uint8Array;
  #len = 0;

  constructor(out: { write(p: Uint8Array): Promise<number> } = Deno.stdout, size = 1 << 20) {
    this.#out = out;
    this.#buf = new Uint8Array(size);
  }

  /** True when the buffer should be flushed before more is added. */
  get full(): boolean {
    return this.#len > this.#buf.length - 65536;
  }

  /** Adds bytes (flushing first if they do not fit). */
  async write(bytes: Uint8Array): Promise<void> {
    if (this.#len + bytes.length > this.#buf.length) {
      await this.flush();
      if (bytes.length > this.#buf.length) return this.#writeAll(bytes);
    }
    this.#buf.set(bytes, this.#len);
    this.#len += bytes.length;
  }

  /** Adds bytes and a delimiter byte, synchronously when they fit; returns false when they do not. */
  tryPut(bytes: Uint8Array, delimiter: number): boolean {
    const n = bytes.length;
    if (this.#len + n + 1 > this.#buf.length) return false;
    const buf = this.#buf;
    let len = this.#len;
    if (n < 64) { for (let i = 0; i < n; i++) buf[len++] = bytes[i]; }
    else (buf.set(bytes, len), (len += n));
    buf[len++] = delimiter;
    this.#len = len;
    return true;
  }

  /**
   * Adds the ranges `data[starts[i], ends[i])` for `i` from `from` to `to`,
   * each followed by a delimiter byte, as many as fit; returns the index of
   * the first range not added (`to` when all were).
   */
  putRanges(
    data: Uint8Array,
    starts: Uint32Array,
    ends: Uint32Array,
    from: number,
    to: number,
    delimiter: number,
  ): number {
    const buf = this.#buf;
    const cap = buf.length;
    let len = this.#len;
    let i = from;
    for (; i < to; i++) {
      const s = starts[i], e = ends[i];
      if (len + (e - s) + 1 > cap) break;
      if (e - s < 64) { for (let k = s; k < e; k++) buf[len++] = data[k]; }
      else (buf.set(data.subarray(s, e), len), (len += e - s));
      buf[len++] = delimiter;
    }
    this.#len = len;
    return i;
  }

  /** Writes out what is buffered. */
  async flush(): Promise<void> {
    if (this.#len === 0) return;
    const data = this.#buf.subarray(0, this.#len);
    this.#len = 0;
    await this.#writeAll(data);
  }

  async #writeAll(data: Uint8Array): Promise<void> {
    try {
      let n = 0;
      while (n < data.length) n += await this.#out.write(data.subarray(n));
    } catch (e) {
      if (e instanceof Deno.errors.BrokenPipe || (e as { code?: string }).code === "EPIPE") {
        throw new OutputClosed("stdout was closed");
      }
      throw e;
    }
  }
}

/** True when `args` hold `--no-color` before a `--`. */
export function noColorFlag(args: readonly string[]): boolean {
  const end = args.indexOf("--");
  return (end < 0 ? args : args.slice(0, end)).includes("--no-color");
}

/**
 * Whether what mq writes to stderr may be coloured: only on a terminal, never
 * with `NO_COLOR` set (to anything but "") or `--no-color` (`flag` false).
 */
export function colorOnStderr(flag: boolean | undefined = true): boolean {
  if (flag === false) return false;
  const no = Deno.env.get("NO_COLOR");
  if (no !== undefined && no !== "") return false;
  return Deno.stderr.isTerminal();
}

/** `text` in an SGR colour (`"31"` red, `"1"` bold, `"2"` dim) when `on`. */
export function paint(on: boolean, sgr: string, text: string): string {
  return on ? `\x1b[${sgr}m${text}\x1b[0m` : text;
}
