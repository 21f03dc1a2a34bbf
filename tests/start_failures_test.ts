// A gateway whose configured plugins fail at start: reported and skipped
// (degraded), or the start refused (strictStart). Real plugins and files.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { loadConfig } from "../src/config/mod.ts";
import { createGateway, StartError } from "../src/gateway/mod.ts";
import { copyPolicies, examplePlugin, watFixture } from "./_test_utils.ts";

const repo = new URL("../", import.meta.url).pathname;
const ADMIN = "admin-token-for-start-failures";

interface Layout {
  dir: string;
  configPath: string;
  trapSha: string;
}

/**
 * Writes a config whose plugins are: the repo's hello (good); a directory
 * named "hello" outside the repo whose manifest says "mine" and holds its own
 * build; a directory without a build; one whose build is older than its
 * source; a .wasm whose start code traps; and a route over that plugin.
 */
async function layout(dir: string, strict: boolean, warm = true): Promise<Layout> {
  await examplePlugin("hello");
  const policies = await copyPolicies(dir);
  const trap = await watFixture("trap");
  const mine = join(dir, "p", "hello");
  await Deno.mkdir(join(mine, "build"), { recursive: true });
  await Deno.writeTextFile(join(mine, "plugin.yaml"), "name: mine\nversion: 1.0.0\n");
  await Deno.writeFile(join(mine, "build", "plugin.wasm"), trap);
  const nobuild = join(dir, "p", "nobuild");
  await Deno.mkdir(nobuild, { recursive: true });
  await Deno.writeTextFile(join(nobuild, "plugin.yaml"), "name: nobuild\nversion: 1.0.0\n");
  const stale = join(dir, "p", "stale");
  await Deno.mkdir(join(stale, "build"), { recursive: true });
  await Deno.mkdir(join(stale, "assembly"));
  await Deno.writeTextFile(join(stale, "plugin.yaml"), "name: stale\nversion: 1.0.0\n");
  await Deno.writeFile(join(stale, "build", "plugin.wasm"), trap);
  await Deno.writeTextFile(join(stale, "assembly", "index.ts"), "// newer than the build\n");
  await Deno.utime(join(stale, "build", "plugin.wasm"), 1, 1);
  await Deno.writeFile(join(dir, "p", "init.wasm"), await watFixture("reactor_init_trap"));
  const configPath = join(dir, "keycard.yaml");
  await Deno.writeTextFile(
    configPath,
    [
      `dataDir: ${JSON.stringify(join(dir, "data"))}`,
      `policies: ${JSON.stringify(policies)}`,
      `strictStart: ${strict}`,
      // One instance of each plugin starts at start, so that a start code fault shows then (on demand, at a call).
      ...(warm ? ["limits: { minInstances: 1 }"] : []),
      "plugins:",
      `  - path: ${JSON.stringify(join(repo, "plugins", "hello"))}`,
      `  - path: ${JSON.stringify(mine)}`,
      `  - path: ${JSON.stringify(nobuild)}`,
      `  - path: ${JSON.stringify(stale)}`,
      `  - path: ${JSON.stringify(join(dir, "p", "init.wasm"))}`,
      "routes:",
      "  - { name: broken, match: { path: /broken }, auth: public, handler: { plugin: init, export: run } }",
      "",
    ].join("\n"),
  );
  return { dir, configPath, trapSha: createHash("sha256").update(trap).digest("hex") };
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "keycard-start-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("createGateway() skips plugins that fail at start, names them, and serves the others", async () => {
  await withDir(async (dir) => {
    const { configPath, trapSha } = await layout(dir, false);
    const { config } = await loadConfig({ path: configPath, env: {} });
    const logged: string[] = [];
    const gateway = await createGateway(config, { adminToken: ADMIN, spareWorkers: 0, log: (l) => logged.push(l) });
    try {
      const auth = { authorization: `Bearer ${ADMIN}` };
      const ready = await (await gateway.app.request("http://k.test/readyz")).json();
      assert.equal(ready.status, "degraded");
      const failed: string[] = ready.failed.map((f: { error: string }) => f.error);
      assert.ok(failed.some((e) => /"nobuild".*no build\/plugin\.wasm/.test(e)), failed.join("\n"));
      assert.ok(failed.some((e) => /"stale".*older than its source/.test(e)), failed.join("\n"));
      assert.ok(failed.some((e) => /"init" failed to load/.test(e)), failed.join("\n"));
      assert.ok(failed.some((e) => /Route "broken" is not served/.test(e)), failed.join("\n"));
      assert.equal(logged.length, failed.length, "one log line per failure");

      // The directory named "hello" is plugin "mine", with its own build, not the repo's hello.
      const mine = await (await gateway.app.request("http://k.test/v1/plugins/mine", { headers: auth })).json();
      assert.equal(mine.sha256, trapSha);
      assert.equal(mine.state, "loaded");
      const listed = await (await gateway.app.request("http://k.test/v1/plugins", { headers: auth })).json();
      const states = Object.fromEntries(
        (listed.plugins ?? listed).map((p: { name: string; state: string }) => [p.name, p.state]),
      );
      assert.deepEqual(states, { hello: "loaded", mine: "loaded", nobuild: "failed", stale: "failed", init: "failed" });
      const nobuild = await (await gateway.app.request("http://k.test/v1/plugins/nobuild", { headers: auth })).json();
      assert.match(nobuild.error, /no build\/plugin\.wasm/);
      const init = await (await gateway.app.request("http://k.test/v1/plugins/init", { headers: auth })).json();
      assert.equal(init.state, "failed");
      assert.match(init.error, /failed to load/);

      const greet = await gateway.app.request("http://k.test/v1/plugins/hello/invoke/greet", {
        method: "POST",
        headers: auth,
        body: "degraded",
      });
      assert.equal(await greet.text(), "Hello, degraded!");
      assert.equal((await gateway.app.request("http://k.test/broken")).status, 404, "the broken route is not served");
    } finally {
      await gateway.close();
    }
  });
});

Deno.test("createGateway() with strictStart refuses to start when a configured plugin fails, naming it", async () => {
  await withDir(async (dir) => {
    // Without minInstances: a strict start starts one instance of each plugin, so start code is proven before serving.
    const { configPath } = await layout(dir, true, false);
    const { config } = await loadConfig({ path: configPath, env: {} });
    await assert.rejects(
      createGateway(config, { adminToken: ADMIN, spareWorkers: 0, log: () => {} }),
      (error: unknown) => error instanceof StartError && /"nobuild"/.test(error.message),
    );
  });
});

Deno.test("createGateway() with instances on demand reports and skips a plugin whose start code fails at its first call", async () => {
  await withDir(async (dir) => {
    const { configPath } = await layout(dir, false, false);
    const { config } = await loadConfig({ path: configPath, env: {} });
    const logged: string[] = [];
    const gateway = await createGateway(config, { adminToken: ADMIN, spareWorkers: 0, log: (l) => logged.push(l) });
    try {
      const auth = { authorization: `Bearer ${ADMIN}` };
      const state = async () =>
        (await (await gateway.app.request("http://k.test/v1/plugins/init", { headers: auth })).json()) as {
          state: string;
          error?: string;
        };
      assert.equal((await state()).state, "loaded", "loading compiles; start code runs at the first call");
      const first = await gateway.app.request("http://k.test/v1/plugins/init/invoke/run", {
        method: "POST",
        headers: auth,
      });
      assert.ok(first.status >= 500, `the first call failed: ${first.status}`);
      assert.match(await first.text(), /failed to start/);
      // Reported and skipped, as a plugin that fails at start is.
      const ready = await (await gateway.app.request("http://k.test/readyz")).json();
      assert.equal(ready.status, "degraded");
      assert.ok(ready.failed.some((f: { error: string }) => /"init" failed to start/.test(f.error)));
      assert.deepEqual([(await state()).state, /failed to start/.test((await state()).error ?? "")], ["failed", true]);
      assert.ok(logged.some((l) => /skipped: Plugin "init" failed to start/.test(l)), logged.join("\n"));
      const again = await gateway.app.request("http://k.test/v1/plugins/init/invoke/run", {
        method: "POST",
        headers: auth,
      });
      assert.notEqual(again.status, 200);
      await again.body?.cancel();
      assert.equal(
        (await gateway.app.request("http://k.test/v1/plugins/hello/invoke/greet", {
          method: "POST",
          headers: auth,
          body: "on demand",
        })).status,
        200,
      );
    } finally {
      await gateway.close();
    }
  });
});

Deno.test("createGateway() skips a plugin whose grants do not validate against the schema, and serves the others", async () => {
  await withDir(async (dir) => {
    await examplePlugin("stamp");
    const policies = await copyPolicies(dir);
    // An operator schema without clock.now: stamp's clock.now grant no longer validates.
    const schemaPath = join(policies, "keycard.cedarschema");
    const schema = await Deno.readTextFile(schemaPath);
    await Deno.writeTextFile(schemaPath, schema.replace('action "clock.now", "random.get"', 'action "random.get"'));
    const configPath = join(dir, "keycard.yaml");
    await Deno.writeTextFile(
      configPath,
      `dataDir: ${JSON.stringify(join(dir, "data"))}\npolicies: ${JSON.stringify(policies)}\nplugins:\n` +
        `  - path: ${JSON.stringify(join(repo, "plugins", "hello"))}\n` +
        `  - path: ${JSON.stringify(join(repo, "plugins", "stamp"))}\n`,
    );
    const { config } = await loadConfig({ path: configPath, env: {} });
    const logged: string[] = [];
    const gateway = await createGateway(config, { adminToken: ADMIN, spareWorkers: 0, log: (l) => logged.push(l) });
    try {
      const ready = await (await gateway.app.request("http://k.test/readyz")).json();
      assert.equal(ready.status, "degraded");
      assert.equal(ready.policyVersion, 1, "the set in force was loaded once");
      assert.deepEqual(ready.failed.map((f: { plugin: string }) => f.plugin), ["stamp"]);
      assert.match(ready.failed[0].error, /^Plugin "stamp" has invalid grants: Invalid policy in "grants\/stamp"/);
      assert.equal(logged.length, 1);
      const greet = await gateway.app.request("http://k.test/v1/plugins/hello/invoke/greet", {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN}` },
        body: "still",
      });
      assert.equal(await greet.text(), "Hello, still!");
    } finally {
      await gateway.close();
    }
  });
});
