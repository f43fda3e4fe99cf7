/**
 * A progress line on stderr (count, rate), redrawn in place, only when stderr
 * is a terminal and `-q` was not given. Piped or redirected stderr gets none.
 *
 * @module
 */

const enc = new TextEncoder();

/** How often the line is redrawn at most (ms); the first count shows at once. */
export const PROGRESS_INTERVAL_MS = 200;

let visible: Progress | undefined;

/** Clears a progress line that is shown, so that a diagnostic line starts clean. */
export function clearProgressLine(): void {
  visible?.done();
}

/** Shows progress on stderr when it is a terminal. */
export class Progress {
  #on: boolean;
  #label: string;
  #started = performance.now();
  #last = -Infinity;
  #shown = false;

  /**
   * A progress line labelled `label` ("pub", "sub", ...), shown when `on`.
   * See {@link Progress.start} for the usual rule.
   */
  constructor(on: boolean, label: string) {
    this.#on = on;
    this.#label = label;
  }

  /**
   * Progress for a command: shown when stderr is a terminal and not `quiet`;
   * with `stdoutToo: false`, also not when stdout is that terminal (a command
   * that prints its data there, as `sub`, would mix both on one screen).
   */
  static start(
    label: string,
    options: { quiet?: boolean; stdoutToo?: boolean } = {},
  ): Progress {
    const on = !options.quiet && Deno.stderr.isTerminal() &&
      (options.stdoutToo !== false || !Deno.stdout.isTerminal());
    return new Progress(on, label);
  }

  /** Whether anything will be shown. */
  get on(): boolean {
    return this.#on;
  }

  /** Shows `count` messages so far and the rate (redrawn at most every 200 ms). */
  count(count: number, unit = "messages"): void {
    const rate = this.#due();
    if (rate === undefined) return;
    this.#draw(`${count} ${unit}, ${Math.round(count / rate)}/s`);
  }

  /** Shows work's counts: done, failed, running, and the rate of done. */
  update(done: number, failed: number, running: number): void {
    const rate = this.#due();
    if (rate === undefined) return;
    this.#draw(
      `${done} done, ${failed} failed, ${running} running, ${Math.round(done / rate)}/s`,
    );
  }

  /**
   * Makes every change of `counter.n` show as {@link Progress.count}; returns
   * `counter` (when off, it is left as it is).
   */
  track<T extends { n: number }>(counter: T): T {
    if (!this.#on) return counter;
    let n = counter.n;
    Object.defineProperty(counter, "n", {
      get: () => n,
      set: (value: number) => {
        n = value;
        this.count(value);
      },
      enumerable: true,
      configurable: true,
    });
    return counter;
  }

  /** A bridge sink whose sends show as progress (messages forwarded). */
  countSends<
    M,
    S extends { send(topic: string, messages: M[]): Promise<void>; close(): Promise<void> },
  >(
    sink: S,
  ): S {
    if (!this.#on) return sink;
    let n = 0;
    const watch = (sink as { watch?: (onState: (line: string) => void) => void }).watch;
    return {
      send: async (topic: string, messages: M[]) => {
        await sink.send(topic, messages);
        this.count(n += messages.length);
      },
      close: () => sink.close(),
      // The sink's connection-state lines go on as they are.
      ...(watch ? { watch: watch.bind(sink) } : {}),
    } as unknown as S;
  }

  /**
   * A client whose publishes (`publishBatch`, `publishRecords`) show as
   * progress (messages stored); everything else goes to `client` itself.
   */
  countPublishes<C extends object>(client: C): C {
    if (!this.#on) return client;
    let n = 0;
    return new Proxy(client, {
      get: (target, name) => {
        const value = Reflect.get(target, name, target);
        if (typeof value !== "function") return value;
        if (name !== "publishBatch" && name !== "publishRecords") return value.bind(target);
        return async (...args: unknown[]) => {
          const result = await value.apply(target, args);
          this.count(n += (result as { count?: number })?.count ?? 0);
          return result;
        };
      },
    });
  }

  /** Seconds since start when a redraw is due, else undefined. */
  #due(): number | undefined {
    if (!this.#on) return undefined;
    const now = performance.now();
    if (now - this.#last < PROGRESS_INTERVAL_MS) return undefined;
    this.#last = now;
    return Math.max(0.001, (now - this.#started) / 1000);
  }

  #draw(text: string): void {
    Deno.stderr.writeSync(enc.encode(`\r\x1b[2K${this.#label}: ${text}`));
    this.#shown = true;
    visible = this;
  }

  /** Clears the line. */
  done(): void {
    if (this.#shown) Deno.stderr.writeSync(enc.encode("\r\x1b[2K"));
    this.#shown = false;
    if (visible === this) visible = undefined;
  }
}
