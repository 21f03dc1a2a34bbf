// Bounded fuzzing in the gate: the saved regression cases, then a fixed budget of seeded cases (see _targets.ts for
// what must hold; `deno task fuzz` runs the same target far longer).
import assert from "node:assert/strict";
import { describeFindings, fuzz, summary } from "./_fuzz.ts";
import { wasmLoad } from "./_targets.ts";

Deno.test("fuzz wasm-load: PluginHost.load answers a typed error or a plugin, never a crash, hang or stuck worker", async () => {
  const result = await fuzz(wasmLoad);
  console.log(summary(result));
  assert.equal(result.findings.length, 0, `cases that broke ${wasmLoad.name}:\n${describeFindings(result)}`);
});
