// Plugins through the shipped commands: the README's own curl lines, the health endpoints, list, remove, install by
// multipart and by a raw application/wasm body (plugins built here), invoke, and the conformance endpoint.
import assert from "node:assert/strict";
import { join } from "node:path";
import { watFixture } from "../_test_utils.ts";
import {
  bearer,
  builtPlugin,
  echoManifest,
  expectProblem,
  expectStatus,
  listPlugins,
  makeSite,
  pluginDir,
  pluginForm,
  startKeycard,
} from "./_server.ts";

Deno.test("deno task start serves plugins: README curl lines, list, remove, install, invoke, conformance", async (t) => {
  await using site = await makeSite();
  await using kc = await startKeycard(site);
  const admin = bearer(kc.adminToken);
  const caller = bearer(site.callerToken);

  await t.step("the start banner names the plugins and prints the admin token kept in the data dir", async () => {
    assert.ok(kc.printedToken, kc.run.output());
    assert.match(
      kc.run.stdout.text(),
      /^plugins: header-guard@1\.0\.0, hello@1\.0\.0, quoter@1\.0\.0, redact@1\.0\.0, stamp@1\.0\.0$/m,
    );
    const file = join(site.dataDir, "admin-token");
    assert.match(kc.run.stdout.text(), new RegExp(`^admin token \\(shown once; kept in ${file}, mode 0600\\):$`, "m"));
    assert.equal((await Deno.readTextFile(file)).trim(), kc.adminToken);
    assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);
  });

  await t.step(
    "the README's curl lines: TOKEN=$(cat <dataDir>/admin-token), invoke greet, read the audit",
    async () => {
      const token = (await Deno.readTextFile(join(site.dataDir, "admin-token"))).trim();
      // curl -s -X POST -H "authorization: Bearer $TOKEN" --data-binary keycard .../v1/plugins/hello/invoke/greet
      const greet = await kc.fetch("/v1/plugins/hello/invoke/greet", {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/x-www-form-urlencoded" },
        body: "keycard",
      });
      assert.equal(greet.status, 200);
      assert.equal(await greet.text(), "Hello, keycard!");
      // curl -s -H "authorization: Bearer $TOKEN" ".../v1/audit?limit=5"
      const audit = await kc.fetch("/v1/audit?limit=5", { headers: { authorization: `Bearer ${token}` } });
      assert.equal(audit.status, 200);
      const { events } = await audit.json();
      assert.ok(Array.isArray(events) && events.length <= 5, JSON.stringify(events));
      // curl http://127.0.0.1:8080/quote (keycard.yaml's shipped public route)
      const quote = await kc.fetch("/quote");
      assert.equal(quote.status, 200);
      assert.match(quote.headers.get("content-type") ?? "", /^application\/json/);
      assert.equal((await quote.json()).path, "/quote");
    },
  );

  await t.step("healthz, readyz and openapi.json answer without a token; metrics only with one", async () => {
    const health = await kc.fetch("/healthz");
    assert.deepEqual([health.status, await health.json()], [200, { status: "ok" }]);
    const ready = await kc.fetch("/readyz");
    assert.equal(ready.status, 200);
    assert.equal((await ready.json()).status, "ready");
    const anonymous = await kc.fetch("/metrics");
    assert.equal(anonymous.status, 401, "server.metrics defaults to token: plugin names are not disclosed");
    await anonymous.body?.cancel();
    const metrics = await kc.fetch("/metrics", { headers: bearer(kc.adminToken) });
    assert.equal(metrics.status, 200);
    const text = await metrics.text();
    assert.match(text, /keycard_calls_total\{plugin="hello",export="greet",outcome="ok"\} \d+/);
    // Issue 13: each plugin's instances, wasm memory and calls, and the workers.
    assert.match(text, /^keycard_plugin_instances\{plugin="hello"\} [1-9]\d*$/m);
    assert.match(text, /^keycard_plugin_memory_bytes\{plugin="hello"\} [1-9]\d*$/m);
    assert.match(text, /^keycard_plugin_calls_total\{plugin="hello"\} [1-9]\d*$/m);
    assert.match(text, /^keycard_plugin_replacements_total\{plugin="stamp"\} \d+$/m);
    assert.match(text, /^keycard_workers [1-9]\d*$/m);
    const openapi = await kc.fetch("/openapi.json");
    assert.equal(openapi.status, 200);
    const doc = await openapi.json();
    assert.match(doc.openapi, /^3\.1/);
    assert.ok(doc.paths["/v1/plugins/{name}"], Object.keys(doc.paths).join(", "));
  });

  await t.step("GET /v1/plugins lists the configured plugins; GET /v1/plugins/stamp shows its grants", async () => {
    assert.deepEqual((await listPlugins(kc)).map((p) => p.split("#")[0]), [
      "header-guard@1.0.0",
      "hello@1.0.0",
      "quoter@1.0.0",
      "redact@1.0.0",
      "stamp@1.0.0",
    ]);
    const stamp = await kc.fetch("/v1/plugins/stamp", { headers: admin });
    assert.equal(stamp.status, 200);
    const view = await stamp.json();
    assert.equal(view.version, "1.0.0");
    assert.equal(view.state, "loaded");
    assert.match(view.sha256, /^[0-9a-f]{64}$/);
    assert.ok(view.exports.includes("kv_counter"), JSON.stringify(view.exports));
    assert.deepEqual(view.capabilities, ["clock.now", "random.get", "log.write", "kv.get", "kv.set", "fs.read"]);
  });

  await t.step("invoke: the caller role may, with a call id and timing; stamp's host calls work", async () => {
    const response = await kc.fetch("/v1/plugins/stamp/invoke/stamp", { method: "POST", headers: caller, body: "e2e" });
    assert.equal(response.status, 200);
    assert.match(response.headers.get("x-keycard-call-id") ?? "", /^[0-9a-f-]{36}$/);
    assert.match(response.headers.get("server-timing") ?? "", /^plugin;dur=/);
    const record = JSON.parse(await response.text());
    assert.equal(record.input, "e2e");
    assert.equal(typeof record.now.unixMs, "number");
    assert.match(record.nonce, /^[0-9a-f]{16}$/);
    assert.deepEqual(record.errors, []);
  });

  await t.step("DELETE /v1/plugins/hello removes it: 204, gone from the list, invoke 404", async () => {
    const removed = await kc.fetch("/v1/plugins/hello", { method: "DELETE", headers: admin });
    assert.equal(removed.status, 204);
    assert.ok(!(await listPlugins(kc)).some((p) => p.startsWith("hello@")));
    await expectProblem(await kc.fetch("/v1/plugins/hello", { headers: admin }), 404, "not-found");
    await expectProblem(
      await kc.fetch("/v1/plugins/hello/invoke/greet", { method: "POST", headers: caller, body: "x" }),
      404,
      "not-found",
    );
  });

  await t.step("PUT /v1/plugins/hello, multipart of the build here and plugins/hello/plugin.yaml: 201", async () => {
    const wasm = await builtPlugin("hello");
    const manifest = await Deno.readTextFile(join(pluginDir("hello"), "plugin.yaml"));
    const response = await kc.fetch("/v1/plugins/hello", {
      method: "PUT",
      headers: admin,
      body: pluginForm(wasm, manifest),
    });
    assert.equal(response.status, 201, await response.clone().text());
    const installed = await response.json();
    assert.equal(installed.name, "hello");
    assert.equal(installed.version, "1.0.0");
    assert.match(installed.sha256, /^[0-9a-f]{64}$/);
    assert.equal(installed.report.passed, true);
    const greet = await kc.fetch("/v1/plugins/hello/invoke/greet", { method: "POST", headers: caller, body: "again" });
    assert.equal(await greet.text(), "Hello, again!");
  });

  await t.step(
    "PUT /v1/plugins/echo, multipart of a WAT plugin compiled here: installed, listed, invoked",
    async () => {
      const response = await kc.fetch("/v1/plugins/echo", {
        method: "PUT",
        headers: admin,
        body: pluginForm(await watFixture("http_echo"), echoManifest("echo")),
      });
      assert.equal(response.status, 201, await response.clone().text());
      assert.ok((await listPlugins(kc)).some((p) => p.startsWith("echo@1.0.0")));
      const echo = await kc.fetch("/v1/plugins/echo/invoke/echo", { method: "POST", headers: caller, body: "round" });
      assert.equal(await echo.text(), "round");
    },
  );

  await t.step("PUT /v1/plugins/raw?version=2.0.0 with a raw application/wasm body: installed as 2.0.0", async () => {
    const response = await kc.fetch("/v1/plugins/raw?version=2.0.0", {
      method: "PUT",
      headers: { ...admin, "content-type": "application/wasm" },
      body: await watFixture("http_echo") as Uint8Array<ArrayBuffer>,
    });
    assert.equal(response.status, 201, await response.clone().text());
    const installed = await response.json();
    assert.deepEqual([installed.name, installed.version], ["raw", "2.0.0"]);
    const view = await (await kc.fetch("/v1/plugins/raw", { headers: admin })).json();
    assert.equal(view.version, "2.0.0");
    assert.deepEqual(view.grants, []);
    const echo = await kc.fetch("/v1/plugins/raw/invoke/echo", { method: "POST", headers: caller, body: "bare" });
    assert.equal(echo.status, 200);
    assert.equal(await echo.text(), "bare");
  });

  await t.step("a second version: ?version= reads and removes one version, the other stays", async () => {
    const response = await kc.fetch("/v1/plugins/echo", {
      method: "PUT",
      headers: admin,
      body: pluginForm(await watFixture("http_echo"), echoManifest("echo", "1.1.0")),
    });
    assert.equal(response.status, 201, await response.clone().text());
    const latest = await (await kc.fetch("/v1/plugins/echo", { headers: admin })).json();
    assert.equal(latest.version, "1.1.0");
    assert.deepEqual(latest.versions, ["1.1.0", "1.0.0"]);
    const old = await (await kc.fetch("/v1/plugins/echo?version=1.0.0", { headers: admin })).json();
    assert.equal(old.version, "1.0.0");
    const removed = await kc.fetch("/v1/plugins/echo?version=1.1.0", { method: "DELETE", headers: admin });
    assert.equal(removed.status, 204);
    const after = await (await kc.fetch("/v1/plugins/echo", { headers: admin })).json();
    assert.deepEqual(after.versions, ["1.0.0"]);
  });

  await t.step("a non-conformant plugin is refused with 422 and its report; nothing is installed", async () => {
    const before = await listPlugins(kc);
    const trapManifest =
      'name: trap\nversion: 1.0.0\nexports:\n  - name: unreachable\n    samples: [""]\ncapabilities: []\n';
    const response = await kc.fetch("/v1/plugins/trap", {
      method: "PUT",
      headers: admin,
      body: pluginForm(await watFixture("trap"), trapManifest),
    });
    const problem = await expectProblem(response, 422, "not-conformant");
    const report = problem.report as { passed: boolean; checks: { id: string; passed: boolean }[] };
    assert.equal(report.passed, false);
    assert.ok(report.checks.some((c) => c.id === "exports.run" && !c.passed));
    assert.deepEqual(await listPlugins(kc), before);
  });

  await t.step(
    "POST /v1/conformance: a pass (multipart with manifest) and a fail (raw body), installing nothing",
    async () => {
      const before = await listPlugins(kc);
      const pass = await kc.fetch("/v1/conformance", {
        method: "POST",
        headers: admin,
        body: pluginForm(await builtPlugin("stamp"), await Deno.readTextFile(join(pluginDir("stamp"), "plugin.yaml"))),
      });
      const passed = JSON.parse(await expectStatus(kc, pass, 200));
      assert.equal(passed.plugin, "stamp");
      assert.equal(passed.passed, true);
      assert.ok(passed.footprint.some((f: { action: string }) => f.action === "clock.now"), JSON.stringify(passed));
      const fail = await kc.fetch("/v1/conformance", {
        method: "POST",
        headers: { ...admin, "content-type": "application/wasm" },
        body: await watFixture("unknown_import") as Uint8Array<ArrayBuffer>,
      });
      const failed = JSON.parse(await expectStatus(kc, fail, 200));
      assert.equal(failed.passed, false);
      assert.ok(failed.checks.some((c: { id: string; passed: boolean }) => c.id === "imports.known" && !c.passed));
      assert.deepEqual(await listPlugins(kc), before);
    },
  );

  await t.step("invoke errors: an unknown export is 404, a plugin's own error 422, both problem+json", async () => {
    await expectProblem(
      await kc.fetch("/v1/plugins/hello/invoke/no_such_export", { method: "POST", headers: caller, body: "" }),
      404,
      "not-found",
    );
    // stamp's read_file reports a host error (a denied path) as the plugin's own error: 422.
    const denied = await kc.fetch("/v1/plugins/stamp/invoke/read_file", {
      method: "POST",
      headers: caller,
      body: "../../etc/passwd",
    });
    await expectProblem(denied, 422, "plugin-error");
  });
});
