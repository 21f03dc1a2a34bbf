// Hand-written WAT over Extism's host ABI, through the conformance suite and
// the gateway, with its grant and with an empty grant.
import assert from "node:assert/strict";
import { runConformance } from "../../src/conformance/mod.ts";
import { parseManifest } from "../../src/registry/mod.ts";
import { watFixture } from "../_test_utils.ts";
import { compatGateway } from "./_gateway.ts";

const manifestText = await Deno.readTextFile(new URL("../testdata/extism_abi.yaml", import.meta.url));

Deno.test("the Extism ABI fixture passes conformance: its log attempts are its declared footprint", async () => {
  const report = await runConformance(await watFixture("extism_abi"), {
    manifest: parseManifest(manifestText, "extism_abi.yaml"),
  });
  assert.equal(report.passed, true, JSON.stringify(report.checks.filter((c) => !c.passed && !c.skipped)));
  assert.deepEqual([...new Set(report.footprint.map((f) => f.action))], ["log.write"]);
});

Deno.test("the Extism ABI fixture runs through the gateway, with its grant and with none", async () => {
  for (const grants of ["with", "without"]) {
    const manifest = grants === "with"
      ? manifestText
      : manifestText.replace(/grants:\n {2}- log\.write: \{\}\n/, "grants: []\n");
    const g = await compatGateway("extism-abi", await watFixture("extism_abi"), manifest);
    try {
      const invoke = async (name: string, body: string) => {
        const response = await g.request(`/v1/plugins/extism-abi/invoke/${name}`, { method: "POST", body });
        assert.equal(response.status, 200, `${name}: ${await response.clone().text()}`);
        return await response.text();
      };
      assert.equal(await invoke("config", "region"), "eu-west-1");
      assert.equal(await invoke("vars", "kept"), "kept");
      assert.equal(await invoke("echo_unsafe", "as is"), "as is");
      await invoke("log", "a line");
      const logs = await g.audit("log.write");
      const expected = grants === "with" ? "allow" : "deny";
      assert.ok(logs.length === 2 && logs.every((e) => e.decision === expected), JSON.stringify(logs));
    } finally {
      await g.close();
    }
  }
});
