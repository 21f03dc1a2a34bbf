// The server's life through the shipped commands: a graceful stop (exit 0), a restart on the same data dir that keeps
// installed plugins, policies and plugin KV, a degraded start that names what failed, and a strict start that stops.
import assert from "node:assert/strict";
import { join } from "node:path";
import { watFixture } from "../_test_utils.ts";
import {
  bearer,
  echoManifest,
  expectStatus,
  type Keycard,
  listPlugins,
  makeSite,
  pluginDir,
  pluginForm,
  Run,
  type Site,
  startKeycard,
} from "./_server.ts";

const PERMIT_HELLO_CLOCK = `@id("ops.hello-clock")
permit (principal == Plugin::"hello", action == Action::"clock.now", resource);
`;

async function kvCounter(kc: Keycard, site: Site): Promise<string> {
  const response = await kc.fetch("/v1/plugins/stamp/invoke/kv_counter", {
    method: "POST",
    headers: bearer(site.callerToken),
  });
  return await expectStatus(kc, response, 200);
}

Deno.test("a stop and a start on the same data dir keep plugins, policies and KV; stops exit 0", async (t) => {
  await using site = await makeSite();
  let adminToken = "";

  await t.step("first start: install echo, put a policy, count to 2 in stamp's KV, stop with SIGINT", async () => {
    await using kc = await startKeycard(site);
    adminToken = kc.adminToken;
    const admin = bearer(kc.adminToken);
    const install = await kc.fetch("/v1/plugins/echo", {
      method: "PUT",
      headers: admin,
      body: pluginForm(await watFixture("http_echo"), echoManifest("echo")),
    });
    await expectStatus(kc, install, 201);
    const put = await kc.fetch("/v1/policies/ops-hello-clock", {
      method: "PUT",
      headers: admin,
      body: PERMIT_HELLO_CLOCK,
    });
    await expectStatus(kc, put, 200);
    assert.equal(await kvCounter(kc, site), "1");
    assert.equal(await kvCounter(kc, site), "2");
    // What strict validation passed is remembered in the data dir, for the next start.
    const remembered = [...Deno.readDirSync(join(site.dataDir, "policy-cache"))].map((e) => e.name);
    assert.equal(remembered.length, 1, JSON.stringify(remembered));
    assert.match(remembered[0]!, /^[0-9a-f]{64}\.json$/);

    const status = await kc.stop("SIGINT");
    assert.equal(status.code, 0, kc.run.output());
    assert.equal(kc.run.stdout.lines.filter(Boolean).at(-1), "keycard stopped");
    await assert.rejects(fetch(`${kc.base}/healthz`, { signal: AbortSignal.timeout(5_000) }), TypeError);
  });

  await t.step("second start: no new token, echo and the policy are there, the count goes on at 3", async () => {
    await using kc = await startKeycard(site);
    assert.equal(kc.printedToken, false);
    assert.doesNotMatch(kc.run.stdout.text(), /admin token/);
    assert.equal(kc.adminToken, adminToken);
    assert.ok((await listPlugins(kc)).some((p) => p.startsWith("echo@1.0.0")), kc.run.output());
    const echo = await kc.fetch("/v1/plugins/echo/invoke/echo", {
      method: "POST",
      headers: bearer(site.callerToken),
      body: "kept",
    });
    assert.equal(await expectStatus(kc, echo, 200), "kept");
    const policies = JSON.parse(
      await expectStatus(kc, await kc.fetch("/v1/policies", { headers: bearer(adminToken) }), 200),
    );
    assert.ok(
      policies.policies.some((p: { id: string }) => p.id === "ops.hello-clock"),
      JSON.stringify(policies.policies),
    );
    assert.equal(await kvCounter(kc, site), "3");

    const status = await kc.stop("SIGTERM");
    assert.equal(status.code, 0, kc.run.output());
    assert.equal(kc.run.stdout.lines.filter(Boolean).at(-1), "keycard stopped");
  });
});

/** A site whose plugins are hello, a directory with plugin.yaml and no build, and a kept-warm .wasm whose start code traps. */
async function degradedSite(strictStart: boolean): Promise<{ site: Site; noBuild: string; initTrap: string }> {
  const site = await makeSite({ strictStart, plugins: [] });
  const noBuild = join(site.dir, "nobuild");
  await Deno.mkdir(noBuild);
  await Deno.writeTextFile(
    join(noBuild, "plugin.yaml"),
    "name: nobuild\nversion: 1.0.0\nexports:\n  - name: run\ncapabilities: []\n",
  );
  const initTrap = join(site.dir, "init-trap.wasm");
  await Deno.writeFile(initTrap, await watFixture("reactor_init_trap"));
  await Deno.writeTextFile(
    join(site.dir, "init-trap.yaml"),
    // Kept warm (minInstances), so its start code runs at start; on demand it would first run at a call.
    "name: init-trap\nversion: 1.0.0\nexports:\n  - name: run\ncapabilities: []\nlimits:\n  minInstances: 1\n",
  );
  await site.writeConfig({ strictStart, plugins: [pluginDir("hello"), noBuild, initTrap], routes: [] });
  return { site, noBuild, initTrap };
}

Deno.test("a plugin that fails at start is skipped: degraded, named by /readyz and GET /v1/plugins", async (t) => {
  const { site, noBuild } = await degradedSite(false);
  await using _site = site;
  await using kc = await startKeycard(site);

  await t.step("/readyz answers degraded and names both failures", async () => {
    const ready = JSON.parse(await expectStatus(kc, await kc.fetch("/readyz"), 200));
    assert.equal(ready.status, "degraded", JSON.stringify(ready));
    const failed = JSON.stringify(ready.failed);
    assert.equal(ready.failed.length, 2, failed);
    assert.match(failed, /init-trap/);
    assert.ok(failed.includes(noBuild) || failed.includes("nobuild"), failed);
  });

  await t.step("GET /v1/plugins shows each failed plugin with state failed and its error", async () => {
    const response = await kc.fetch("/v1/plugins", { headers: bearer(kc.adminToken) });
    const { plugins } = JSON.parse(await expectStatus(kc, response, 200)) as {
      plugins: { name: string; state?: string; error?: string }[];
    };
    for (const name of ["init-trap", "nobuild"]) {
      const plugin = plugins.find((p) => p.name === name);
      assert.ok(plugin, `${name} is not listed: ${JSON.stringify(plugins)}`);
      assert.equal(plugin.state, "failed", JSON.stringify(plugin));
      assert.equal(typeof plugin.error, "string", JSON.stringify(plugin));
    }
    assert.equal(plugins.find((p) => p.name === "hello")?.state, "loaded");
  });

  await t.step("the others serve: hello answers", async () => {
    const response = await kc.fetch("/v1/plugins/hello/invoke/greet", {
      method: "POST",
      headers: bearer(site.callerToken),
      body: "degraded",
    });
    assert.equal(await expectStatus(kc, response, 200), "Hello, degraded!");
  });
});

Deno.test("strictStart: true makes a plugin that fails at start stop the start, exit non-zero", async () => {
  const { site } = await degradedSite(true);
  await using _site = site;
  await using run = new Run(["task", "start", site.configPath]);
  const status = await run.exit(60_000);
  assert.notEqual(status.code, 0, run.output());
  assert.doesNotMatch(run.stdout.text(), /keycard serving on/);
  assert.match(run.stderr.text(), /nobuild|init-trap/, run.output());
  assert.doesNotMatch(run.stderr.text(), /^\s+at /m, `no stack trace:\n${run.output()}`);
});
