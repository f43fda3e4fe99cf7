/**
 * The shape of the code, read from its import statements:
 * - no import cycles in core/, adapters/ and cli/ (static and type imports,
 *   `export ... from`, literal `import()`, and the lazy loads by computed
 *   specifier: `lazy(import.meta.url, "./x.ts")`, `load(import.meta.url,
 *   "./x.ts")`, `importLazily("../adapters/x/mod.ts")`);
 * - the CLI is a client of the library: what a file under cli/ imports from
 *   outside cli/ is an entry point the package exports (deno.json `exports`);
 * - the client loads on start only what publishing needs: consuming,
 *   transactions, receipts, peeking, request/reply, the doctor and the
 *   reading machinery come by lazy import.
 *
 * @module
 */
import { deepStrictEqual as eq, ok } from "node:assert/strict";

const root = new URL("../", import.meta.url);
const rootPath = root.pathname;

/** Every .ts file under `dir` (relative to the checkout), as paths relative to it. */
function tsFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of Deno.readDirSync(new URL(rel, root))) {
      const p = `${rel}/${e.name}`;
      if (e.isDirectory) walk(p);
      else if (e.isFile && e.name.endsWith(".ts")) out.push(p);
    }
  };
  walk(dir);
  return out.sort();
}

/** An import of one file: where to, and whether it is loaded when the file is. */
interface Edge {
  to: string;
  /** A static import of values (not `import type`, not lazy): loaded with the file. */
  eager: boolean;
  /** A literal `import("...")` (not a type query): Deno reads it when the program starts, used or not. */
  literal?: boolean;
}

/** Comments out of the way (an import in a doc example is not one of the file's). */
function withoutComments(src: string): string {
  return src.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`])\/\/.*$/gm, "$1");
}

/** The local imports of `file` (a path relative to the checkout), resolved. */
function importsOf(file: string): Edge[] {
  const src = withoutComments(Deno.readTextFileSync(new URL(file, root)));
  const edges: Edge[] = [];
  const add = (spec: string, eager: boolean, literal = false) => {
    if (!spec.startsWith(".")) return; // npm:, node:, jsr: and bare names
    const url = new URL(spec, new URL(file, root));
    edges.push({ to: url.pathname.slice(rootPath.length), eager, literal });
  };
  // import x from "..."; import { a, type b } from "..."; export { a } from "..."; import "...";
  const statement =
    /(?:^|;|\n)\s*(import|export)(\s+type)?\s*(?:([\w*{}\s,$]+?)\s*from\s*)?["']([^"']+)["']/g;
  for (const m of src.matchAll(statement)) {
    const typeOnly = m[2] !== undefined ||
      (m[3] !== undefined && /^\{[^}]*\}$/.test(m[3].trim()) &&
        m[3].replace(/[{}]/g, "").split(",").map((s) => s.trim()).filter(Boolean)
          .every((s) => s.startsWith("type ")));
    add(m[4], !typeOnly);
  }
  // import("..."), typeof import("..."): literal dynamic imports and type queries.
  for (const m of src.matchAll(/(typeof\s+)?import\(\s*["']([^"']+)["']\s*\)/g)) {
    add(m[2], false, m[1] === undefined);
  }
  // The lazy loads by computed specifier.
  for (
    const m of src.matchAll(
      /\b(?:lazy|load)(?:<[^()]*?>)?\(\s*import\.meta\.url,\s*["']([^"']+)["']/g,
    )
  ) add(m[1], false);
  for (const m of src.matchAll(/\bimportLazily(?:<[^()]*?>)?\(\s*["']([^"']+)["']/g)) {
    add(m[1], false);
  }
  return edges;
}

/**
 * What evaluating files evaluates: `visit(f)` adds `f` and, followed
 * through, every file it imports statically (not `import type`, not lazily).
 */
function eagerClosure(): { eager: Set<string>; visit: (file: string) => void } {
  const eager = new Set<string>();
  const visit = (f: string) => {
    if (eager.has(f)) return;
    eager.add(f);
    for (const e of importsOf(f)) if (e.eager) visit(e.to);
  };
  return { eager, visit };
}

/** The cycles of the graph (strongly connected components of more than one file, or a self-import). */
function cycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>(), low = new Map<string, number>();
  const stack: string[] = [], on = new Set<string>(), out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

const SOURCES = ["core", "adapters", "cli"].flatMap(tsFiles);

Deno.test("shape: no import cycles in core/, adapters/ and cli/", () => {
  const graph = new Map<string, string[]>();
  for (const f of SOURCES) graph.set(f, importsOf(f).map((e) => e.to));
  ok(graph.get("core/client.ts")!.includes("core/_publish.ts"), "the reader finds imports");
  eq(cycles(graph), []);
});

Deno.test("shape: the cycle finder finds a cycle through a lazy load", () => {
  const graph = new Map([["a.ts", ["b.ts"]], ["b.ts", ["c.ts"]], ["c.ts", ["a.ts"]], [
    "d.ts",
    ["a.ts"],
  ]]);
  eq(cycles(graph), [["a.ts", "b.ts", "c.ts"]]);
});

Deno.test("shape: the CLI imports the library only through the package's entry points", () => {
  const config = JSON.parse(Deno.readTextFileSync(new URL("deno.json", root)));
  const entries = new Set(
    Object.values(config.exports as Record<string, string>).map((p) => p.replace(/^\.\//, "")),
  );
  ok(entries.has("mod.ts") && entries.has("core/internal.ts"));
  const outside: string[] = [];
  let seen = 0;
  for (const f of tsFiles("cli")) {
    for (const e of importsOf(f)) {
      // deno.json (the version) is data, not the library.
      if (e.to.startsWith("cli/") || !e.to.endsWith(".ts")) continue;
      seen++;
      if (!entries.has(e.to)) outside.push(`${f} imports ${e.to}`);
    }
  }
  ok(seen > 20, `the CLI's imports of the library are found (${seen})`);
  eq(outside, []);
});

Deno.test("shape: the client loads eagerly only what every use needs", () => {
  const { eager, visit } = eagerClosure();
  visit("core/client.ts");
  ok(eager.has("core/_topic_configs.ts") && eager.has("core/errors.ts"));
  const lazyOnly = [
    "core/consume.ts",
    "core/transaction.ts",
    "core/_receipts.ts",
    "core/_group_consumer.ts",
    "core/_group_peek.ts",
    "core/_log_source.ts",
    "core/request_reply.ts",
    "core/doctor.ts",
    "core/bridge.ts",
    // Administration, routing and the rules only some publishes need.
    "core/topic_admin.ts",
    "core/exchanges.ts",
    "core/routing.ts",
    "core/_group_store.ts",
    "core/_lease_table.ts",
    "core/_dedup.ts",
    "core/_retention.ts",
    "core/_delayed_index.ts",
  ];
  eq(lazyOnly.filter((f) => eager.has(f)), []);
});

Deno.test("shape: reading through the client evaluates none of publishing", () => {
  const { eager, visit } = eagerClosure();
  for (const f of ["core/client.ts", "core/_log_source.ts"]) visit(f);
  const lazyOnly = ["core/_publish.ts", "core/_publish_records.ts", "core/_retention.ts"];
  eq(lazyOnly.filter((f) => eager.has(f)), []);
});

Deno.test("shape: listing topics evaluates no group state, leases or exchanges", () => {
  const { eager, visit } = eagerClosure();
  visit("core/topic_admin.ts");
  const lazyOnly = ["core/_group_store.ts", "core/_lease_table.ts", "core/exchanges.ts"];
  eq(lazyOnly.filter((f) => eager.has(f)), []);
});

Deno.test("shape: the fs backend loads eagerly neither its reader nor the id index", () => {
  const { eager, visit } = eagerClosure();
  visit("adapters/fs/mod.ts");
  ok(eager.has("adapters/fs/partition_writer.ts"));
  const lazyOnly = ["adapters/fs/_segment_reader.ts", "core/_dedup.ts", "core/record_block.ts"];
  eq(lazyOnly.filter((f) => eager.has(f)), []);
});

Deno.test("shape: importing the core (./core, ./internal) loads no adapter, nor any lazily", () => {
  for (const entry of ["core/mod.ts", "core/internal.ts"]) {
    const reached = new Set<string>();
    const visit = (f: string) => {
      if (reached.has(f)) return;
      reached.add(f);
      for (const e of importsOf(f)) {
        if (e.to.endsWith(".ts") && !e.to.includes("_test")) visit(e.to);
      }
    };
    visit(entry);
    ok(reached.has("core/client.ts") || entry === "core/internal.ts");
    eq([...reached].filter((f) => !f.startsWith("core/")), [], entry);
  }
});

Deno.test("shape: mq pub, sub, topics and groups read none of the library's views at start", () => {
  // What Deno reads when the command's code and the fs backend are loaded:
  // static imports of values and literal import()s, followed through.
  const read = new Set<string>();
  const visit = (f: string) => {
    if (read.has(f)) return;
    read.add(f);
    for (const e of importsOf(f)) if (e.eager || e.literal) visit(e.to);
  };
  for (const c of ["pub", "sub", "topics", "groups"]) visit(`cli/commands/${c}.ts`);
  // What cli/runtime.ts and adapters/builtin.ts load on the first open of file:.
  visit("connect.ts");
  visit("adapters/fs/mod.ts");
  ok(read.has("core/client.ts") && read.has("adapters/fs/fs_adapter.ts"));
  const unused = [
    "mod.ts",
    "core/mod.ts",
    "core/overview.ts",
    "core/dead_letters.ts",
    "core/browse.ts",
    "core/metrics.ts",
    "core/bridge.ts",
    "adapters/fs/_doctor.ts",
    "adapters/fs/_transactions.ts",
  ];
  eq(unused.filter((f) => read.has(f)), []);
});

Deno.test("shape: mq pub of arguments evaluates neither stdin reading, envelopes nor ./internal", () => {
  const { eager, visit } = eagerClosure();
  visit("cli/commands/pub.ts");
  ok(eager.has("cli/commands/_pub_records.ts") && eager.has("connect.ts"));
  const lazyOnly = [
    "cli/commands/_pub_lines.ts",
    "cli/line_batcher.ts",
    "cli/envelope.ts",
    "core/internal.ts",
    "core/record_block.ts",
  ];
  eq(lazyOnly.filter((f) => eager.has(f)), []);
});

Deno.test("shape: mq info evaluates neither the client nor the fs adapter", () => {
  const { eager, visit } = eagerClosure();
  // The command, and what the registry's file: describer imports.
  visit("cli/main.ts");
  visit("cli/commands/info.ts");
  visit("adapters/fs/_data_folder.ts");
  ok(eager.has("core/registry.ts"));
  const lazyOnly = [
    "core/client.ts",
    "connect.ts",
    "adapters/fs/fs_adapter.ts",
    "adapters/fs/partition_writer.ts",
  ];
  eq(lazyOnly.filter((f) => eager.has(f)), []);
});
