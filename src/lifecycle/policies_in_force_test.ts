import assert from "node:assert/strict";
import { join } from "node:path";
import { copyPolicies, examplePlugin } from "../../tests/_test_utils.ts";
import { loadConfig } from "../config/mod.ts";
import { createGateway } from "../gateway/mod.ts";
import { FileStore, parseManifest, Registry } from "../registry/mod.ts";
import { policiesInForce, readPolicyDir } from "./policies_in_force.ts";

const repo = new URL("../../", import.meta.url).pathname;
const ADMIN = "admin-token-0123456789abcdef";

/** A temp dir with keycard.yaml (hello and stamp configured), a policies copy and a data dir. */
async function site(dir: string, extra = ""): Promise<string> {
  const policies = await copyPolicies(dir);
  const configPath = join(dir, "keycard.yaml");
  await Deno.writeTextFile(
    configPath,
    `dataDir: ${JSON.stringify(join(dir, "data"))}\npolicies: ${JSON.stringify(policies)}\nplugins:\n` +
      `  - path: ${JSON.stringify(join(repo, "plugins", "hello"))}\n` +
      `  - path: ${JSON.stringify(join(repo, "plugins", "stamp"))}\n${extra}`,
  );
  return configPath;
}

/** Installs a plugin in the data dir's registry, as the gateway's install does. */
async function install(dataDir: string, name: string, version: string, grants: string): Promise<void> {
  const manifest = parseManifest(`name: ${name}\nversion: ${version}\ngrants:\n${grants}`, "plugin.yaml");
  await new Registry(new FileStore(dataDir)).install(await examplePlugin("hello"), manifest);
}

Deno.test("policiesInForce() reads the sources the gateway loads: policy files, then configured and installed grants", async () => {
  await examplePlugin("hello");
  await examplePlugin("stamp");
  const dir = await Deno.makeTempDir();
  try {
    const configPath = await site(dir);
    const dataDir = join(dir, "data");
    await install(dataDir, "fetch", "1.0.0", "  - http.request: { host: api.example.com }\n");
    // A higher installed version of a configured plugin wins, as registry.get() returns the latest.
    await install(dataDir, "stamp", "2.0.0", "  - clock.now: {}\n");
    const inForce = await policiesInForce({ config: configPath, env: {} });
    assert.deepEqual(inForce.sources.map((s) => s.name), [
      "api.cedar",
      "base.cedar",
      "grants/fetch",
      "grants/hello",
      "grants/stamp",
    ]);
    assert.deepEqual(
      [...inForce.plugins.values()].map((p) => [p.name, p.version, p.from]),
      [["fetch", "1.0.0", "registry"], ["hello", "1.0.0", "config"], ["stamp", "2.0.0", "registry"]],
    );
    assert.match(inForce.plugins.get("hello")!.sha256, /^[0-9a-f]{64}$/);

    const { config } = await loadConfig({ path: configPath, env: {} });
    const gateway = await createGateway(config, { adminToken: ADMIN, spareWorkers: 0, log: () => {} });
    try {
      const served = gateway.services.policies.sources().map((s) => ({ name: s.name, text: s.text }));
      assert.deepEqual(served, inForce.sources.map((s) => ({ name: s.name, text: s.text })));
    } finally {
      await gateway.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("policiesInForce() with policies: another directory, its schema or the shipped one; the config's plugins", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const configPath = await site(dir);
    const candidate = join(dir, "candidate");
    await Deno.mkdir(candidate);
    await Deno.writeTextFile(
      join(candidate, "ops.cedar"),
      'permit (principal, action == Action::"clock.now", resource);',
    );
    await Deno.writeTextFile(join(candidate, "notes.txt"), "not a policy");
    const inForce = await policiesInForce({ config: configPath, env: {}, policies: candidate });
    assert.deepEqual(inForce.sources.map((s) => s.name), ["ops.cedar", "grants/hello", "grants/stamp"]);
    assert.equal(inForce.policies.schemaFile, join(repo, "policies", "keycard.cedarschema"));
    assert.equal(inForce.policies.trusted, true);
    await assert.rejects(readPolicyDir(candidate), /Cannot read schema ".*keycard\.cedarschema": no such file/);
    await assert.rejects(
      policiesInForce({ config: configPath, env: {}, policies: join(dir, "nope") }),
      /Cannot read policies directory ".*nope": no such directory/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("policiesInForce() refuses a configured plugin with an invalid manifest, naming it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bad = join(dir, "bad");
    await Deno.mkdir(bad);
    await Deno.writeTextFile(join(bad, "plugin.yaml"), "name: bad\ngrants:\n  - fs.rm: { dir: x }\n");
    const configPath = await site(dir, `  - path: ${JSON.stringify(bad)}\n`);
    await assert.rejects(policiesInForce({ config: configPath, env: {} }), /bad/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
