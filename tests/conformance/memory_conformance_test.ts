import { conformance } from "./conformance.ts";
import { MemoryAdapter } from "../../adapters/memory/mod.ts";

await conformance("memory", {
  open: () => Promise.resolve(new MemoryAdapter()),
});
