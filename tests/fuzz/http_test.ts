// Bounded fuzzing in the gate: the saved regression cases, then a fixed budget of seeded cases (see _targets.ts for
// what must hold; `deno task fuzz` runs the same target far longer).
import assert from "node:assert/strict";
import { describeFindings, fuzz, summary } from "./_fuzz.ts";
import { http } from "./_targets.ts";

Deno.test("fuzz http: bodies on authorize, policies and plugins get a 2xx or a 4xx, never a 5xx", async () => {
  const result = await fuzz(http);
  console.log(summary(result));
  assert.equal(result.findings.length, 0, `cases that broke ${http.name}:\n${describeFindings(result)}`);
});
