// A manifest that declares exports makes them the only ones callable over HTTP.
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadConfig } from "../src/config/mod.ts";
import { createGateway } from "../src/gateway/mod.ts";
import { copyPolicies, watFixture } from "./_test_utils.ts";

const ADMIN = "admin-token-for-declared-exports";

Deno.test("POST /v1/plugins/:name/invoke/:export is 404 for an export the manifest does not declare", async () => {
  const dir = await Deno.makeTempDir({ prefix: "keycard-exports-" });
  try {
    const policies = await copyPolicies(dir);
    await Deno.writeFile(join(dir, "trap.wasm"), await watFixture("trap"));
    await Deno.writeTextFile(join(dir, "trap.yaml"), "name: trap\nversion: 1.0.0\nexports:\n  - name: unreachable\n");
    await Deno.writeFile(join(dir, "open.wasm"), await watFixture("trap"));
    const configPath = join(dir, "keycard.yaml");
    await Deno.writeTextFile(
      configPath,
      `dataDir: ${JSON.stringify(join(dir, "data"))}\npolicies: ${JSON.stringify(policies)}\nplugins:\n` +
        `  - path: ${JSON.stringify(join(dir, "trap.wasm"))}\n  - path: ${JSON.stringify(join(dir, "open.wasm"))}\n`,
    );
    const { config } = await loadConfig({ path: configPath, env: {} });
    const gateway = await createGateway(config, { adminToken: ADMIN, spareWorkers: 0 });
    try {
      const invoke = (plugin: string, name: string) =>
        gateway.app.request(`http://k.test/v1/plugins/${plugin}/invoke/${name}`, {
          method: "POST",
          headers: { authorization: `Bearer ${ADMIN}` },
        });
      const undeclared = await invoke("trap", "out_of_bounds");
      assert.equal(undeclared.status, 404);
      assert.equal(undeclared.headers.get("content-type"), "application/problem+json");
      assert.match((await undeclared.json()).detail, /out_of_bounds/);
      assert.equal((await invoke("trap", "unreachable")).status, 502, "the declared export runs (and traps)");
      // Without a manifest every export is callable.
      assert.equal((await invoke("open", "out_of_bounds")).status, 502);
      const listed = await (await gateway.app.request("http://k.test/v1/plugins/trap", {
        headers: { authorization: `Bearer ${ADMIN}` },
      })).json();
      assert.deepEqual(listed.exports, ["unreachable"]);
    } finally {
      await gateway.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
