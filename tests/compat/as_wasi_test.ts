// An AssemblyScript program on @assemblyscript/wasi-shim, through the
// conformance suite and the gateway, with its grants and with none. The shim
// exits with code 255 when a console write fails, so under an empty grant
// (deny by default: log.write included) the program ends itself: an error it
// chose, audited, never a crash of the host.
import assert from "node:assert/strict";
import { runConformance } from "../../src/conformance/mod.ts";
import { parseManifest } from "../../src/registry/mod.ts";
import { buildAs } from "./_build_as.ts";
import { compatGateway } from "./_gateway.ts";

Deno.test("an AssemblyScript wasi-shim program fails admission only because its console write is denied", async () => {
  const { wasm, manifest } = await buildAs();
  const report = await runConformance(wasm, { manifest: parseManifest(manifest, "wasi_as.yaml") });
  const failed = report.checks.filter((c) => !c.passed && !c.skipped);
  assert.deepEqual(failed.map((c) => c.id), ["exports.run"]);
  assert.match(failed[0]!.detail, /exited with code 255/);
  assert.ok(report.checks.find((c) => c.id === "privileges.none")?.passed);
  assert.deepEqual(report.footprint.map((f) => f.action).sort(), ["env.get", "log.write"]);
});

Deno.test("an AssemblyScript wasi-shim program runs through the gateway, with its grants and with none", async () => {
  const built = await buildAs();
  for (const granted of [true, false]) {
    const manifest = granted ? built.manifest : built.manifest.replace(/grants:\n( {2}- .*\n)+/, "grants: []\n");
    const g = await compatGateway("wasi-as", built.wasm, manifest);
    try {
      const response = await g.request("/v1/plugins/wasi-as/invoke/run", { method: "POST" });
      const text = await response.text();
      if (granted) {
        assert.equal(response.status, 200, text);
        for (const action of ["log.write", "env.get", "clock.now"]) {
          const events = await g.audit(action);
          assert.ok(
            events.length > 0 && events.every((e) => e.decision === "allow"),
            `${action}: ${JSON.stringify(events)}`,
          );
        }
      } else {
        assert.equal(response.status, 502, text);
        assert.match(text, /exited with code 255/);
        const events = await g.audit("log.write");
        assert.ok(events.length > 0 && events.every((e) => e.decision === "deny"), JSON.stringify(events));
        assert.equal((await g.request("/healthz")).status, 200);
      }
    } finally {
      await g.close();
    }
  }
});
