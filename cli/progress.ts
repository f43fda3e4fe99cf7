/** A progress line on a terminal: count, failures, rate; nothing elsewhere. */

const enc = new TextEncoder();

/** Shows progress on stderr when it is a terminal. */
export class Progress {
  #on: boolean;
  #label: string;
  #started = performance.now();
  #last = 0;
  #shown = false;

  constructor(on: boolean, label: string) {
    this.#on = on && !Deno.env.get("NO_COLOR_PROGRESS");
    this.#label = label;
  }

  /** Updates the line (at most every 200 ms). */
  update(done: number, failed: number, running: number): void {
    if (!this.#on) return;
    const now = performance.now();
    if (now - this.#last < 200) return;
    this.#last = now;
    const rate = Math.round(done / Math.max(0.001, (now - this.#started) / 1000));
    const line =
      `\r\x1b[2K${this.#label}: ${done} done, ${failed} failed, ${running} running, ${rate}/s`;
    Deno.stderr.writeSync(enc.encode(line));
    this.#shown = true;
  }

  /** Ends the line. */
  done(): void {
    if (this.#shown) Deno.stderr.writeSync(enc.encode("\r\x1b[2K"));
  }
}
