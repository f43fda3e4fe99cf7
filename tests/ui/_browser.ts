/**
 * Headless Chromium driven over the DevTools protocol, spoken directly on a
 * WebSocket (no npm dependency): Debian's `/usr/bin/chromium` with a fresh
 * profile, loopback only. Enough for the dashboard's cases: open a page,
 * wait for a condition, click, type, read the DOM, take a screenshot, and
 * record every JavaScript dialog (an XSS payload that ran would open one).
 */

/** Where Chromium is (override with `CHROMIUM`). */
export const CHROMIUM = Deno.env.get("CHROMIUM") ?? "/usr/bin/chromium";

/** Whether the browser can run here, and why not. */
export function browserAvailable(): { ok: true } | { ok: false; reason: string } {
  try {
    Deno.statSync(CHROMIUM);
    return { ok: true };
  } catch {
    return { ok: false, reason: `${CHROMIUM} is not installed (apt-get install chromium)` };
  }
}

interface Pending {
  resolve: (v: any) => void;
  reject: (e: Error) => void;
  method: string;
}

/** One page of a headless Chromium. */
export class Browser {
  #child: Deno.ChildProcess;
  #ws: WebSocket;
  #id = 0;
  #pending = new Map<number, Pending>();
  #session = "";
  #profile: string;
  /** Messages of every JavaScript dialog (alert, confirm, prompt) the page opened. */
  readonly dialogs: string[] = [];
  /** Exceptions thrown in the page and not caught. */
  readonly errors: string[] = [];

  private constructor(child: Deno.ChildProcess, ws: WebSocket, profile: string) {
    this.#child = child;
    this.#ws = ws;
    this.#profile = profile;
    ws.onmessage = (ev) => {
      const msg = JSON.parse(ev.data as string);
      if (msg.id !== undefined) {
        const p = this.#pending.get(msg.id);
        if (!p) return;
        this.#pending.delete(msg.id);
        if (msg.error) p.reject(new Error(`${p.method}: ${msg.error.message}`));
        else p.resolve(msg.result);
        return;
      }
      if (msg.method === "Page.javascriptDialogOpening") {
        this.dialogs.push(msg.params.message);
        this.#send("Page.handleJavaScriptDialog", { accept: false }).catch(() => {});
      } else if (msg.method === "Runtime.exceptionThrown") {
        const d = msg.params.exceptionDetails;
        this.errors.push(d.exception?.description ?? d.text);
      }
    };
  }

  /** Starts Chromium headless with a fresh profile and opens a blank page. */
  static async launch(): Promise<Browser> {
    const profile = await Deno.makeTempDir({ prefix: "mq-chromium-" });
    const child = new Deno.Command(CHROMIUM, {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        `--user-data-dir=${profile}`,
        "--window-size=1280,900",
        "about:blank",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID"
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "", url: string | undefined;
    const deadline = Date.now() + 30_000;
    while (!url) {
      const r = await Promise.race([
        reader.read(),
        new Promise<{ done: true; value: undefined }>((res) =>
          setTimeout(
            () => res({ done: true, value: undefined }),
            Math.max(0, deadline - Date.now()),
          )
        ),
      ]);
      if (r.done) {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
        throw new Error(`chromium did not start: ${seen.slice(-2000)}`);
      }
      seen += r.value;
      url = seen.match(/DevTools listening on (ws:\/\/\S+)/)?.[1];
    }
    // Keep draining stderr so the browser never blocks on a full pipe.
    (async () => {
      while (!(await reader.read().catch(() => ({ done: true }))).done) { /* drop */ }
    })();
    const ws = new WebSocket(url);
    await new Promise((res, rej) => {
      ws.onopen = res;
      ws.onerror = () => rej(new Error(`cannot connect to ${url}`));
    });
    const b = new Browser(child, ws, profile);
    const { targetId } = await b.#send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await b.#send("Target.attachToTarget", { targetId, flatten: true });
    b.#session = sessionId;
    await b.#send("Page.enable");
    await b.#send("Runtime.enable");
    await b.#send("Emulation.setDeviceMetricsOverride", {
      width: 1280,
      height: 800,
      deviceScaleFactor: 1,
      mobile: false,
    });
    return b;
  }

  #send(method: string, params: Record<string, unknown> = {}): Promise<any> {
    const id = ++this.#id;
    const msg: Record<string, unknown> = { id, method, params };
    if (this.#session && !method.startsWith("Target.")) msg.sessionId = this.#session;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, method });
      this.#ws.send(JSON.stringify(msg));
    });
  }

  /** Opens `url` and waits for its load event. */
  async goto(url: string): Promise<void> {
    const loaded = new Promise<void>((res) => {
      const prev = this.#ws.onmessage!;
      this.#ws.onmessage = (ev) => {
        prev.call(this.#ws, ev);
        if (JSON.parse(ev.data as string).method === "Page.loadEventFired") {
          this.#ws.onmessage = prev;
          res();
        }
      };
    });
    const r = await this.#send("Page.navigate", { url });
    if (r.errorText) throw new Error(`cannot open ${url}: ${r.errorText}`);
    await loaded;
  }

  /** The value of a JavaScript expression in the page (awaited if a promise). */
  async eval<T = unknown>(expression: string): Promise<T> {
    const r = await this.#send("Runtime.evaluate", {
      expression,
      awaitPromise: true,
      returnByValue: true,
    });
    if (r.exceptionDetails) {
      throw new Error(
        `in the page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`,
      );
    }
    return r.result.value as T;
  }

  /** Waits until `expression` is truthy in the page; returns its value. */
  async waitFor<T = unknown>(expression: string, timeoutMs = 10_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
      try {
        last = await this.eval(expression);
        if (last) return last as T;
      } catch (e) {
        last = e;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const where = await this.eval<string>(
      `location.pathname + " [" + document.body.dataset.page + "] " + (document.querySelector("main")?.textContent ?? "").slice(0, 300)`,
    ).catch((e) => String(e));
    throw new Error(
      `timed out waiting for ${expression} (last: ${String(last)}) at ${where}; page errors: ${
        this.errors.join(" | ")
      }`,
    );
  }

  /** Clicks the element `selector` names (through the DOM, as a user's click would reach it). */
  async click(selector: string): Promise<void> {
    await this.waitFor(`document.querySelector(${JSON.stringify(selector)})`);
    await this.eval(`document.querySelector(${JSON.stringify(selector)}).click()`);
  }

  /** Sets the value of an input and fires its input and change events. */
  async fill(selector: string, value: string): Promise<void> {
    await this.waitFor(`document.querySelector(${JSON.stringify(selector)})`);
    await this.eval(`(() => {
      const e = document.querySelector(${JSON.stringify(selector)});
      e.value = ${JSON.stringify(value)};
      e.dispatchEvent(new Event("input", { bubbles: true }));
      e.dispatchEvent(new Event("change", { bubbles: true }));
    })()`);
  }

  /** The text of every element `selector` matches. */
  texts(selector: string): Promise<string[]> {
    return this.eval(
      `[...document.querySelectorAll(${JSON.stringify(selector)})].map((e) => e.textContent)`,
    );
  }

  /** A PNG of the viewport, written to `path`. */
  async screenshot(path: string): Promise<void> {
    const { data } = await this.#send("Page.captureScreenshot", { format: "png" });
    await Deno.writeFile(path, Uint8Array.from(atob(data), (c) => c.charCodeAt(0)));
  }

  /** Stops the browser and removes its profile. */
  async close(): Promise<void> {
    try {
      await this.#send("Browser.close");
    } catch { /* gone */ }
    try {
      this.#ws.close();
    } catch { /* closed */ }
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 5000);
    await this.#child.status;
    clearTimeout(timer);
    await Deno.remove(this.#profile, { recursive: true }).catch(() => {});
  }
}
