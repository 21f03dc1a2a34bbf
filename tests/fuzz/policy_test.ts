// Bounded fuzzing in the gate: the saved regression cases, then a fixed budget of seeded cases (see _targets.ts for
// what must hold; `deno task fuzz` runs the same target far longer).
import assert from "node:assert/strict";
import { describeFindings, fuzz, summary } from "./_fuzz.ts";
import { policy } from "./_targets.ts";

Deno.test("fuzz policy: PolicyEngine.load answers success or PolicyValidationError, and decisions stay right", async () => {
  const result = await fuzz(policy);
  console.log(summary(result));
  assert.equal(result.findings.length, 0, `cases that broke ${policy.name}:\n${describeFindings(result)}`);
});
