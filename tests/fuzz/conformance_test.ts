// Bounded fuzzing in the gate: the saved regression cases, then a fixed budget of seeded cases (see _targets.ts for
// what must hold; `deno task fuzz` runs the same target far longer).
import assert from "node:assert/strict";
import { describeFindings, fuzz, summary } from "./_fuzz.ts";
import { conformance } from "./_targets.ts";

Deno.test("fuzz conformance: runConformance answers a report for any module", async () => {
  const result = await fuzz(conformance);
  console.log(summary(result));
  assert.equal(result.findings.length, 0, `cases that broke ${conformance.name}:\n${describeFindings(result)}`);
});
