import { conformance } from "./conformance.ts";
import { MemoryAdapter } from "../../adapters/memory/mod.ts";

conformance("memory", {
  open: () => Promise.resolve(new MemoryAdapter()),
  persistent: false,
  transactions: "atomic",
});
