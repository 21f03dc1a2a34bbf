// Bounded fuzzing in the gate: the saved regression cases, then a fixed budget of seeded cases (see _targets.ts for
// what must hold; `deno task fuzz` runs the same target far longer).
import assert from "node:assert/strict";
import { describeFindings, fuzz, summary } from "./_fuzz.ts";
import { manifest } from "./_targets.ts";

Deno.test("fuzz manifest: parseManifest answers a Manifest or a ManifestError, nothing else", async () => {
  const result = await fuzz(manifest);
  console.log(summary(result));
  assert.equal(result.findings.length, 0, `cases that broke ${manifest.name}:\n${describeFindings(result)}`);
});
