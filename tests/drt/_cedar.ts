// The DRT's own cedar-wasm instance. In the gate every test module shares one
// module graph, so the package's `nodejs` build is one instance for all of
// them, and a test that kills it on purpose (deep input) would leave the DRT
// comparing against a dead oracle; a fresh copy of its own cannot be touched.
import { freshCedar } from "../../src/policy/_cedar_instance.ts";

/** cedar-wasm, for the DRT alone. */
export const cedar: Awaited<ReturnType<typeof freshCedar>> = await freshCedar();
