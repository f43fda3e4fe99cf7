/**
 * Routing benchmark: with 10,000 topic-pattern bindings, what routing one
 * message costs with the trie (`Router`), side by side with the naive floor
 * (a regular expression per binding, scanned); and the real path on the fs
 * backend: `mq.exchanges.route` (reads the exchange's head, uses the router
 * cached for its generation) and `publishVia` of one message per call.
 * Target: well under 1 ms per message.
 *
 * Run: `deno task bench:routing` (`--json` for JSON).
 */
import { type Binding, Router } from "../core/routing.ts";
import { connect } from "../mod.ts";

const N = 10_000, KEYS = 20_000;
let seed = 42;
const rand = (n: number) => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed % n;
};
const words = ["orders", "users", "eu", "us", "new", "paid", "shipped", "v1", "v2", "audit"];
const bindings: Binding[] = [];
for (let i = 0; i < N; i++) {
  const len = 2 + rand(4);
  const parts: string[] = [];
  for (let j = 0; j < len; j++) {
    const r = rand(20);
    parts.push(r === 0 ? "#" : r < 4 ? "*" : `${words[rand(words.length)]}${rand(50)}`);
  }
  bindings.push({ destination: `t${i}`, destinationKind: "topic", key: parts.join(".") });
}
const keys = Array.from({ length: KEYS }, () => {
  const len = 2 + rand(4);
  return Array.from({ length: len }, () => `${words[rand(words.length)]}${rand(50)}`).join(".");
});

const t0 = performance.now();
const router = new Router("topic", bindings);
const buildMs = performance.now() - t0;

let matched = 0;
let t = performance.now();
for (const k of keys) matched += router.route(k).length;
const trieUs = ((performance.now() - t) * 1000) / KEYS;

const regexes = bindings.map((b) =>
  new RegExp(
    "^" +
      b.key!.split(".").map((
        w,
      ) => (w === "#" ? "(?:[^.]*(?:\\.[^.]*)*)?" : w === "*" ? "[^.]*" : w)).join("\\.")
        .replaceAll("\\.(?:[^.]*(?:\\.[^.]*)*)?", "(?:\\.[^.]*)*") +
      "$",
  )
);
let naiveMatched = 0;
const sample = keys.slice(0, 2000);
t = performance.now();
for (const k of sample) for (const re of regexes) if (re.test(k)) naiveMatched++;
const naiveUs = ((performance.now() - t) * 1000) / sample.length;

// The real path, on the fs backend.
const dir = await Deno.makeTempDir({ prefix: "mq-bench-routing-" });
const mq = await connect(`file:${dir}`);
let routeUs = 0, publishUs = 0, bindMs = 0;
try {
  await mq.exchanges.create("ev", "topic");
  t = performance.now();
  await mq.exchanges.bindMany("ev", bindings);
  bindMs = performance.now() - t;
  await mq.exchanges.route("ev", keys[0]); // builds and caches the router
  const R = 2000;
  t = performance.now();
  for (let i = 0; i < R; i++) await mq.exchanges.route("ev", keys[i]);
  routeUs = ((performance.now() - t) * 1000) / R;
  // publishVia through an exchange of 10,000 bindings where each key reaches one topic.
  await mq.exchanges.create("regions", "topic");
  await mq.exchanges.bindMany(
    "regions",
    Array.from({ length: N }, (_, i) => ({
      destination: `region-${i % 100}`,
      destinationKind: "topic" as const,
      key: `orders.r${i}.*`,
    })),
  );
  const routable = Array.from({ length: 500 }, (_, i) => `orders.r${(i * 37) % N}.new`);
  await mq.publishVia("regions", routable[0], ["warm-up"]);
  t = performance.now();
  for (const k of routable) await mq.publishVia("regions", k, ["x"]);
  publishUs = ((performance.now() - t) * 1000) / routable.length;
} finally {
  await mq.close();
  await Deno.remove(dir, { recursive: true });
}

const pass = trieUs < 1000 && routeUs < 1000;
const result = {
  bindings: N,
  keys: KEYS,
  build_ms: Number(buildMs.toFixed(1)),
  trie_us_per_message: Number(trieUs.toFixed(2)),
  naive_scan_us_per_message: Number(naiveUs.toFixed(1)),
  speedup: Number((naiveUs / trieUs).toFixed(1)),
  fs_bind_10000_ms: Math.round(bindMs),
  fs_route_us_per_message: Number(routeUs.toFixed(1)),
  fs_publish_via_us_per_message: Number(publishUs.toFixed(0)),
  matches_per_message: Number((matched / KEYS).toFixed(2)),
  naive_matches_per_message: Number((naiveMatched / sample.length).toFixed(2)),
  target: "< 1000 us per message",
  pass,
};
if (Deno.args.includes("--json")) console.log(JSON.stringify(result));
else {
  console.log(
    `routing with ${N.toLocaleString("en")} topic bindings (build ${result.build_ms} ms):`,
  );
  console.log(
    `${
      pass ? "PASS" : "FAIL"
    }  trie: ${result.trie_us_per_message} us/message | naive regex scan (floor of a scan): ${result.naive_scan_us_per_message} us/message | ${result.speedup}x faster | target ${result.target}`,
  );
  console.log(
    `fs backend: bindMany(10,000) ${result.fs_bind_10000_ms} ms | mq.exchanges.route ${result.fs_route_us_per_message} us/message (head read + cached trie) | publishVia of one message (route + a synced append) ${result.fs_publish_via_us_per_message} us`,
  );
  console.log(
    `matches per message: trie ${result.matches_per_message}, naive ${result.naive_matches_per_message} (sample)`,
  );
}
