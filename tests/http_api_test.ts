// The HTTP API in process (app.request): every route's happy path and its
// errors, each as application/problem+json, and nothing changed by a refused
// request.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  bearer,
  echoManifest,
  expectProblem,
  type GatewayFixture,
  pluginForm,
  sha256Hex,
  startGateway,
  within,
} from "./_gateway_fixture.ts";
import { examplePlugin, watFixture } from "./_test_utils.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Runs `fn` against a fresh gateway, closed afterwards. */
function withGateway(
  fn: (fx: GatewayFixture) => Promise<void>,
  options?: Parameters<typeof startGateway>[0],
): () => Promise<void> {
  return async () => {
    const fx = await startGateway(options);
    try {
      await fn(fx);
    } finally {
      await fx.close();
    }
  };
}

function admin(fx: GatewayFixture, init: RequestInit = {}): RequestInit {
  return { ...init, headers: { ...bearer(fx.adminToken), ...init.headers as Record<string, string> } };
}

function invoke(fx: GatewayFixture, plugin: string, exportName: string, body: BodyInit = "", token = fx.callerToken) {
  return fx.request(`/v1/plugins/${plugin}/invoke/${exportName}`, { method: "POST", headers: bearer(token), body });
}

/** Names and versions of the installed plugins: what a refused request must leave unchanged. */
async function installed(fx: GatewayFixture): Promise<string[]> {
  const response = await fx.request("/v1/plugins", admin(fx));
  assert.equal(response.status, 200);
  const { plugins } = await response.json() as { plugins: { name: string; versions: string[]; sha256: string }[] };
  return plugins.map((p) => `${p.name}@${p.versions.join(",")}:${p.sha256}`);
}

async function policyState(fx: GatewayFixture): Promise<{ version: number; sources: string }> {
  const response = await fx.request("/v1/policies", admin(fx));
  assert.equal(response.status, 200);
  const body = await response.json() as { version: number; sources: unknown[] };
  return { version: body.version, sources: JSON.stringify(body.sources) };
}

function put(fx: GatewayFixture, name: string, wasm: Uint8Array, manifest?: string) {
  return fx.request(`/v1/plugins/${name}`, admin(fx, { method: "PUT", body: pluginForm(wasm, manifest) }));
}

interface AuditEventView {
  callId: string;
  plugin: string;
  action: string;
  decision: "allow" | "deny";
  caller: string | null;
  time: string;
  policies: string[];
}

async function audit(fx: GatewayFixture, query = ""): Promise<AuditEventView[]> {
  const response = await fx.request(`/v1/audit${query}`, admin(fx));
  assert.equal(response.status, 200, await response.clone().text());
  return (await response.json() as { events: AuditEventView[] }).events;
}

// --- health, metrics, OpenAPI -------------------------------------------------

Deno.test(
  "GET /healthz and /readyz answer without a token; /readyz is 503 once the gateway closes",
  withGateway(async (fx) => {
    const health = await fx.request("/healthz");
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: "ok" });
    const ready = await fx.request("/readyz");
    assert.equal(ready.status, 200);
    const body = await ready.json();
    assert.equal(body.status, "ready");
    assert.equal(typeof body.policyVersion, "number");

    await fx.gateway.close();
    await expectProblem(await fx.request("/readyz"), 503, "not-ready");
    assert.equal((await fx.request("/healthz")).status, 200);
  }),
);

Deno.test(
  "GET /metrics counts calls by plugin and export, decisions by plugin/action/decision, queue depth and rejections",
  withGateway(async (fx) => {
    const greet = await invoke(fx, "hello", "greet", "metrics");
    assert.equal(greet.status, 200);
    await greet.body?.cancel();
    const stamp = await invoke(fx, "stamp", "stamp", "metrics");
    assert.equal(stamp.status, 200);
    await stamp.body?.cancel();
    await expectProblem(await invoke(fx, "hello", "fib", "x"), 422, "plugin-error");

    const response = await fx.request("/metrics", { headers: bearer(fx.adminToken) });
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    const lines = text.split("\n");
    assert.ok(lines.includes('keycard_calls_total{plugin="hello",export="greet",outcome="ok"} 1'), text);
    assert.ok(lines.includes('keycard_calls_total{plugin="stamp",export="stamp",outcome="ok"} 1'), text);
    assert.ok(lines.includes('keycard_calls_total{plugin="hello",export="fib",outcome="plugin-error"} 1'), text);
    assert.ok(lines.includes('keycard_call_duration_seconds_count{plugin="hello",export="greet"} 1'), text);
    assert.ok(lines.includes('keycard_call_duration_seconds_bucket{plugin="hello",export="greet",le="+Inf"} 1'), text);
    assert.ok(lines.includes("# TYPE keycard_call_duration_seconds histogram"), text);
    assert.ok(lines.includes('keycard_decisions_total{plugin="stamp",action="clock.now",decision="allow"} 1'), text);
    assert.ok(lines.includes('keycard_decisions_total{plugin="stamp",action="random.get",decision="allow"} 1'), text);
    assert.ok(lines.includes("keycard_queue_depth 0"), text);
    assert.ok(lines.includes("keycard_rejections_total 0"), text);
    assert.ok(lines.includes("keycard_workers_recycled_total 0"), text);
    assert.ok(lines.includes("keycard_instances_retired_total 0"), text);
    assert.match(text, /^keycard_policy_version \d+$/m);
    // The TypeScript evaluator decides; cedar-wasm checks a sample (none disagreed) and no set fell back.
    assert.ok(lines.includes('keycard_policy_evaluator{evaluator="typescript"} 1'), text);
    assert.ok(lines.includes('keycard_policy_evaluator{evaluator="cedar-wasm"} 0'), text);
    assert.ok(lines.includes("keycard_policy_fallback_sets_total 0"), text);
    assert.ok(lines.includes("keycard_policy_shadow_disagreements_total 0"), text);
    assert.match(text, /^keycard_policy_shadow_checked_total \d+$/m);
  }),
);

Deno.test(
  "GET /metrics shows each plugin's instances, memory, calls and replacements, and the workers",
  withGateway(async (fx) => {
    for (let i = 0; i < 2; i++) {
      const greet = await invoke(fx, "hello", "greet", "metrics");
      assert.equal(greet.status, 200);
      await greet.body?.cancel();
    }
    await expectProblem(await invoke(fx, "trap", "unreachable"), 502, "plugin-failed");

    const text = await (await fx.request("/metrics", { headers: bearer(fx.adminToken) })).text();
    const value = (series: string) => {
      const line = text.split("\n").find((l) => l.startsWith(series + " "));
      assert.ok(line, `no ${series} in\n${text}`);
      return Number(line.slice(series.length + 1));
    };
    for (const name of ["instances", "memory_bytes", "calls_total", "replacements_total"]) {
      const type = name.endsWith("_total") ? "counter" : "gauge";
      assert.ok(text.includes(`# TYPE keycard_plugin_${name} ${type}\n`), text);
      assert.ok(text.includes(`# HELP keycard_plugin_${name} `), text);
    }
    assert.equal(value('keycard_plugin_calls_total{plugin="hello"}'), 2);
    assert.equal(value('keycard_plugin_replacements_total{plugin="hello"}'), 0);
    assert.equal(value('keycard_plugin_instances{plugin="hello"}'), 1);
    // hello is AssemblyScript: at least one 64 KiB page, in whole pages.
    const memory = value('keycard_plugin_memory_bytes{plugin="hello"}');
    assert.ok(memory >= 65536 && memory % 65536 === 0, String(memory));
    assert.equal(value('keycard_plugin_calls_total{plugin="trap"}'), 1);
    assert.equal(value('keycard_plugin_replacements_total{plugin="trap"}'), 1);
    assert.equal(value('keycard_plugin_calls_total{plugin="stamp"}'), 0);
    // Instances start on demand: a plugin never called has none, and no worker.
    assert.equal(value('keycard_plugin_instances{plugin="stamp"}'), 0);
    assert.ok(value("keycard_workers") >= 2, "one worker per called plugin at least");
    assert.equal(value("keycard_worker_plugins"), 1);
    assert.ok(value("keycard_worker_rss_share_bytes") > 0);
  }),
);

Deno.test(
  "GET /openapi.json is OpenAPI 3.1.0 and documents every /v1 route and method",
  withGateway(async (fx) => {
    const response = await fx.request("/openapi.json");
    assert.equal(response.status, 200);
    const doc = await response.json() as { openapi: string; paths: Record<string, Record<string, unknown>> };
    assert.equal(doc.openapi, "3.1.0");
    const expected: Record<string, string[]> = {
      "/healthz": ["get"],
      "/readyz": ["get"],
      "/metrics": ["get"],
      "/v1/plugins": ["get"],
      "/v1/plugins/{name}": ["get", "put", "delete"],
      "/v1/plugins/{name}/invoke/{export}": ["post"],
      "/v1/conformance": ["post"],
      "/v1/policies": ["get"],
      "/v1/policies/{name}": ["put", "delete"],
      "/v1/authorize": ["post"],
      "/v1/audit": ["get"],
      "/v1/audit/stream": ["get"],
    };
    for (const [path, methods] of Object.entries(expected)) {
      assert.ok(doc.paths[path], `${path} is documented`);
      for (const method of methods) {
        assert.ok(doc.paths[path]![method], `${method.toUpperCase()} ${path} is documented`);
      }
    }
  }),
);

Deno.test(
  "an unknown route is a 404 problem",
  withGateway(async (fx) => {
    await expectProblem(await fx.request("/v2/nothing"), 404, "not-found");
  }),
);

// --- plugins: list, get ---------------------------------------------------------

Deno.test(
  "GET /v1/plugins lists the installed plugins with name, version, sha256, exports and grants",
  withGateway(async (fx) => {
    const response = await fx.request("/v1/plugins", admin(fx));
    assert.equal(response.status, 200);
    const { plugins } = await response.json() as {
      plugins: { name: string; version: string; sha256: string; exports: string[]; grants: unknown[] }[];
    };
    assert.deepEqual(plugins.map((p) => p.name).sort(), ["bomb", "hello", "stamp", "trap"]);
    const hello = plugins.find((p) => p.name === "hello")!;
    assert.equal(hello.version, "1.0.0");
    assert.equal(hello.sha256, sha256Hex(await examplePlugin("hello")));
    assert.deepEqual([...hello.exports].sort(), ["count_vowels", "describe", "echo", "fib", "greet", "noop"]);
    assert.deepEqual(hello.grants, []);
    const stamp = plugins.find((p) => p.name === "stamp")!;
    assert.equal(stamp.grants.length, 5);
    assert.deepEqual(stamp.grants[0], { "clock.now": {} });
  }),
);

Deno.test(
  "GET /v1/plugins/:name shows the latest version, ?version= another, and 404 for an unknown plugin or version",
  withGateway(async (fx) => {
    const echo = await watFixture("http_echo");
    assert.equal((await put(fx, "echo", echo, echoManifest("echo", "1.0.0"))).status, 201);
    assert.equal((await put(fx, "echo", echo, echoManifest("echo", "1.1.0"))).status, 201);

    const latest = await fx.request("/v1/plugins/echo", admin(fx));
    assert.equal(latest.status, 200);
    const body = await latest.json();
    assert.equal(body.name, "echo");
    assert.equal(body.version, "1.1.0");
    assert.deepEqual([...body.versions].sort(), ["1.0.0", "1.1.0"]);
    assert.deepEqual(body.exports, ["echo"]);

    const older = await fx.request("/v1/plugins/echo?version=1.0.0", admin(fx));
    assert.equal(older.status, 200);
    assert.equal((await older.json()).version, "1.0.0");

    const unknown = await expectProblem(await fx.request("/v1/plugins/nope", admin(fx)), 404, "not-found");
    assert.equal(unknown.plugin, "nope");
    await expectProblem(await fx.request("/v1/plugins/echo?version=9.9.9", admin(fx)), 404, "not-found");
    await expectProblem(await fx.request("/v1/plugins/bad%20name", admin(fx)), 400, "bad-request");
  }),
);

// --- plugins: install, remove ----------------------------------------------------

Deno.test(
  "PUT /v1/plugins/:name installs a conformant plugin from multipart with 201, its sha256 and report",
  withGateway(async (fx) => {
    const echo = await watFixture("http_echo");
    const response = await put(fx, "echo", echo, echoManifest("echo"));
    assert.equal(response.status, 201);
    const body = await response.json();
    assert.equal(body.name, "echo");
    assert.equal(body.version, "1.0.0");
    assert.equal(body.sha256, sha256Hex(echo));
    assert.equal(body.report.passed, true);
    assert.ok(body.report.checks.some((c: { id: string }) => c.id === "module.valid"));

    assert.ok((await installed(fx)).some((p) => p.startsWith("echo@1.0.0:")));
    const out = await invoke(fx, "echo", "echo", "ping");
    assert.equal(out.status, 200);
    assert.equal(await out.text(), "ping");

    // The same bytes and manifest again: idempotent.
    assert.equal((await put(fx, "echo", echo, echoManifest("echo"))).status, 201);
  }),
);

Deno.test(
  "PUT /v1/plugins/:name refuses a renamed copy of hello with 422 as its describe export disagrees",
  withGateway(async (fx) => {
    // The brief's "hello renamed hello2" cannot pass conformance: describe.matches compares names.
    const manifest = (await Deno.readTextFile(new URL("../plugins/hello/plugin.yaml", import.meta.url)))
      .replace(/^name: hello$/m, "name: hello2");
    const before = await installed(fx);
    const body = await expectProblem(
      await put(fx, "hello2", await examplePlugin("hello"), manifest),
      422,
      "not-conformant",
    );
    const report = body.report as { passed: boolean; checks: { id: string; passed: boolean }[] };
    assert.equal(report.passed, false);
    assert.equal(report.checks.find((c) => c.id === "describe.matches")?.passed, false);
    assert.deepEqual(await installed(fx), before);
  }),
);

Deno.test(
  "PUT /v1/plugins/:name refuses a non-conformant plugin with 422 and the report, and installs nothing",
  withGateway(async (fx) => {
    const before = await installed(fx);
    const manifest = "name: trapper\nversion: 1.0.0\nexports:\n  - name: unreachable\n    samples: ['']\n";
    const body = await expectProblem(
      await put(fx, "trapper", await watFixture("trap"), manifest),
      422,
      "not-conformant",
    );
    const report = body.report as { passed: boolean; checks: { id: string; passed: boolean; detail: string }[] };
    assert.equal(report.passed, false);
    const run = report.checks.find((c) => c.id === "exports.run")!;
    assert.equal(run.passed, false);
    assert.match(run.detail, /unreachable/);
    await expectProblem(await fx.request("/v1/plugins/trapper", admin(fx)), 404, "not-found");
    assert.deepEqual(await installed(fx), before);
  }),
);

Deno.test(
  "PUT /v1/plugins/:name refuses malformed wasm with 422 (module.valid fails) and installs nothing",
  withGateway(async (fx) => {
    const before = await installed(fx);
    const body = await expectProblem(
      await put(fx, "junk", encoder.encode("not wasm at all"), echoManifest("junk")),
      422,
      "not-conformant",
    );
    const checks = (body.report as { checks: { id: string; passed: boolean; detail: string }[] }).checks;
    assert.equal(checks[0]!.id, "module.valid");
    assert.equal(checks[0]!.passed, false);
    assert.match(checks[0]!.detail, /magic number/);
    await expectProblem(await fx.request("/v1/plugins/junk", admin(fx)), 404, "not-found");
    assert.deepEqual(await installed(fx), before);
  }),
);

Deno.test(
  "PUT /v1/plugins/:name refuses a malformed manifest with 400 and its line, and installs nothing",
  withGateway(async (fx) => {
    const before = await installed(fx);
    // YAML syntax: the flow sequence opened on line 4 is never closed (reported where the parser gives up).
    const unclosed = "name: broken\nversion: 1.0.0\nexports:\n  - name: [unclosed\ncapabilities: []\n";
    const syntax = await expectProblem(
      await put(fx, "broken", await watFixture("http_echo"), unclosed),
      400,
      "invalid-manifest",
    );
    assert.equal(syntax.line, 5);
    assert.equal(typeof syntax.column, "number");
    // A well-formed manifest with a bad value: the value's own line and column.
    const badVersion = "name: broken\nversion: one\nexports: []\n";
    const value = await expectProblem(
      await put(fx, "broken", await watFixture("http_echo"), badVersion),
      400,
      "invalid-manifest",
    );
    assert.equal(value.line, 2);
    assert.equal(value.column, 10);
    assert.deepEqual(await installed(fx), before);
  }),
);

Deno.test(
  "PUT /v1/plugins/:name refuses bad uploads (name mismatch, missing fields, media type, version conflict)",
  withGateway(async (fx) => {
    const echo = await watFixture("http_echo");
    assert.equal((await put(fx, "echo", echo, echoManifest("echo"))).status, 201);
    const before = await installed(fx);

    await expectProblem(await put(fx, "echo", echo, echoManifest("other")), 400, "bad-request");
    await expectProblem(await put(fx, "echo", echo), 400, "bad-request");
    const noFile = new FormData();
    noFile.append("wasm", "not a file");
    noFile.append("manifest", echoManifest("echo"));
    await expectProblem(
      await fx.request("/v1/plugins/echo", admin(fx, { method: "PUT", body: noFile })),
      400,
      "bad-request",
    );
    await expectProblem(
      await fx.request(
        "/v1/plugins/echo",
        admin(fx, { method: "PUT", headers: { "content-type": "multipart/form-data; boundary=x" }, body: "garbage" }),
      ),
      400,
      "bad-request",
    );
    await expectProblem(
      await fx.request("/v1/plugins/echo", admin(fx, { method: "PUT", headers: { "content-type": "text/plain" } })),
      415,
      "unsupported-media-type",
    );
    // Same version, another manifest: a conflict, not an overwrite.
    const conflict = await expectProblem(
      await put(fx, "echo", echo, echoManifest("echo").replace("echo test plugin", "changed")),
      409,
      "conflict",
    );
    assert.equal(conflict.code, "version_exists");
    assert.deepEqual(await installed(fx), before);
  }),
);

Deno.test(
  "PUT /v1/plugins/:name installs a bare application/wasm body as version 0.0.0 or ?version=, with no grants",
  withGateway(async (fx) => {
    const echo = await watFixture("http_echo");
    const raw = (name: string, wasm: Uint8Array, query = "") =>
      fx.request(
        `/v1/plugins/${name}${query}`,
        admin(fx, { method: "PUT", headers: { "content-type": "application/wasm" }, body: wasm as BodyInit }),
      );
    const first = await raw("bare", echo);
    assert.equal(first.status, 201, await first.clone().text());
    const body = await first.json();
    assert.deepEqual([body.name, body.version, body.sha256, body.report.passed], [
      "bare",
      "0.0.0",
      sha256Hex(echo),
      true,
    ]);
    assert.equal(await (await invoke(fx, "bare", "echo", "raw")).text(), "raw");
    assert.equal((await raw("bare", echo)).status, 201); // the same bytes again: idempotent

    assert.equal((await raw("bare", echo, "?version=1.2.0")).status, 201);
    const shown = await (await fx.request("/v1/plugins/bare", admin(fx))).json();
    assert.deepEqual([shown.version, shown.versions, shown.grants, shown.capabilities], [
      "1.2.0",
      ["1.2.0", "0.0.0"],
      [],
      [],
    ]);

    // Coherent with what is installed: other bytes (or another manifest) under an installed version conflict.
    assert.equal((await put(fx, "echo", echo, echoManifest("echo"))).status, 201);
    const before = await installed(fx);
    const other = new Uint8Array([...echo, 0, 1, 0]); // a custom section: other bytes, same code
    assert.equal((await expectProblem(await raw("bare", other), 409, "conflict")).code, "version_exists");
    await expectProblem(await raw("echo", echo, "?version=1.0.0"), 409, "conflict");
    // ?version= names the version of a bare module only; the manifest names its own.
    const both = await fx.request(
      "/v1/plugins/echo?version=2.0.0",
      admin(fx, { method: "PUT", body: pluginForm(echo, echoManifest("echo")) }),
    );
    assert.match(String((await expectProblem(both, 400, "bad-request")).detail), /\?version=2\.0\.0/);
    assert.deepEqual(await installed(fx), before);
  }),
);

Deno.test(
  "PUT /v1/plugins/:name refuses a manifest whose grant does not compile with 400, and installs nothing",
  // BUG (src/gateway/create_gateway.ts install -> engine.check -> compileGrants): the GrantError (a TypeError)
  // is not translated by toProblem (src/http/problem.ts), so the client gets 500 internal-error.
  // Fails with: "Expected status 400, got 500 {"type":"/problems/internal-error",...}".
  withGateway(async (fx) => {
    const before = await installed(fx);
    const manifest = echoManifest("echo") + "grants:\n  - bogus.action: {}\n";
    const body = await expectProblem(
      await put(fx, "echo", await watFixture("http_echo"), manifest),
      400,
      "invalid-manifest",
    );
    assert.match(String(body.detail), /bogus\.action/);
    assert.deepEqual(await installed(fx), before);
  }),
);

Deno.test(
  "DELETE /v1/plugins/:name removes one version (?version=) or all with 204, then 404",
  withGateway(async (fx) => {
    const echo = await watFixture("http_echo");
    assert.equal((await put(fx, "echo", echo, echoManifest("echo", "1.0.0"))).status, 201);
    assert.equal((await put(fx, "echo", echo, echoManifest("echo", "1.1.0"))).status, 201);

    const one = await fx.request("/v1/plugins/echo?version=1.1.0", admin(fx, { method: "DELETE" }));
    assert.equal(one.status, 204);
    assert.equal(await one.text(), "");
    const rest = await (await fx.request("/v1/plugins/echo", admin(fx))).json();
    assert.equal(rest.version, "1.0.0");
    assert.deepEqual(rest.versions, ["1.0.0"]);
    assert.equal((await invoke(fx, "echo", "echo", "still")).status, 200);

    await expectProblem(
      await fx.request("/v1/plugins/echo?version=7.0.0", admin(fx, { method: "DELETE" })),
      404,
      "not-found",
    );
    assert.equal((await fx.request("/v1/plugins/echo", admin(fx, { method: "DELETE" }))).status, 204);
    await expectProblem(await fx.request("/v1/plugins/echo", admin(fx)), 404, "not-found");
    await expectProblem(await invoke(fx, "echo", "echo", "gone"), 404, "not-found");
    await expectProblem(await fx.request("/v1/plugins/echo", admin(fx, { method: "DELETE" })), 404, "not-found");
  }),
);

// --- invoke ------------------------------------------------------------------------

Deno.test(
  "POST /v1/plugins/:name/invoke/:export answers the output with x-keycard-call-id and server-timing",
  withGateway(async (fx) => {
    const response = await invoke(fx, "hello", "greet", "keycard");
    assert.equal(response.status, 200);
    assert.equal(await response.text(), "Hello, keycard!");
    assert.equal(response.headers.get("content-type"), "application/octet-stream");
    assert.match(response.headers.get("x-keycard-call-id") ?? "", /^[0-9a-f-]{36}$/);
    assert.match(response.headers.get("server-timing") ?? "", /^plugin;dur=\d+(\.\d+)?$/);

    // Binary input comes back byte for byte.
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const echoed = await invoke(fx, "hello", "echo", bytes);
    assert.deepEqual(new Uint8Array(await echoed.arrayBuffer()), bytes);
    // Distinct calls, distinct ids.
    const again = await invoke(fx, "hello", "noop");
    await again.body?.cancel();
    assert.notEqual(again.headers.get("x-keycard-call-id"), response.headers.get("x-keycard-call-id"));
  }),
);

Deno.test(
  "POST /v1/plugins/:name/invoke/:export is 404 for an unknown plugin or export, naming both",
  withGateway(async (fx) => {
    const plugin = await expectProblem(await invoke(fx, "nope", "greet"), 404, "not-found");
    assert.equal(plugin.plugin, "nope");
    assert.equal(plugin.export, "greet");
    const exported = await expectProblem(await invoke(fx, "hello", "nope"), 404, "not-found");
    assert.equal(exported.plugin, "hello");
    assert.equal(exported.export, "nope");
  }),
);

Deno.test(
  "POST /v1/plugins/:name/invoke/:export of unknown names does not add a metrics series per name",
  // BUG (src/http/create_app.ts invoke handler -> Metrics.observeCall): every call is counted under the plugin
  // and export names from the URL, even when no such plugin or export exists, and api.cedar lets any `caller`
  // call any resource, so a caller can grow /metrics (and the gateway's memory) without bound with random names.
  // Fails with: "false == true" on the first assertion (a series for "random-0" exists).
  withGateway(async (fx) => {
    for (let i = 0; i < 50; i++) await expectProblem(await invoke(fx, `random-${i}`, `export-${i}`), 404, "not-found");
    await expectProblem(await invoke(fx, "hello", "no-such-export"), 404, "not-found");
    const text = await (await fx.request("/metrics", { headers: bearer(fx.adminToken) })).text();
    assert.ok(!text.includes('plugin="random-0"'), "no series for an unknown plugin");
    assert.ok(!text.includes('export="no-such-export"'), "no series for an unknown export");
  }),
);

Deno.test(
  "POST /v1/plugins/:name/invoke/:export is 413 for input over limits.inputBytes, and takes exactly the limit",
  withGateway(async (fx) => {
    const over = await expectProblem(await invoke(fx, "hello", "echo", "x".repeat(65537)), 413, "payload-too-large");
    assert.equal(over.plugin, "hello");
    assert.equal(over.export, "echo");
    assert.equal(over.limit, "inputBytes");
    const exact = await invoke(fx, "hello", "echo", "y".repeat(65536));
    assert.equal(exact.status, 200);
    assert.equal((await exact.arrayBuffer()).byteLength, 65536);
  }),
);

Deno.test(
  "POST /v1/plugins/:name/invoke/:export is 429 with Retry-After when the plugin's queue is full",
  async () => {
    // No timing guess: the one instance is held busy by a call parked in an upstream that answers only when
    // released, so of 19 more calls exactly 2 wait (queue 2) and 17 are refused, whatever the machine's speed.
    // (It once used fib(20000) and the 500 ms deadline: on a cold, loaded machine the queued calls passed it.)
    let entered!: () => void;
    const upstreamEntered = new Promise<void>((resolve) => entered = resolve);
    let release!: () => void;
    const released = new Promise<void>((resolve) => release = resolve);
    const upstream = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async () => {
      entered();
      await released;
      return new Response("through");
    });
    const port = upstream.addr.port;
    const manifest = [
      "name: gate",
      "version: 1.0.0",
      "exports: [fetch]",
      "capabilities: [http.request]",
      `grants:\n  - http.request: { host: 127.0.0.1, port: ${port}, methods: [GET] }`,
      "",
    ].join("\n");
    const fx = await startGateway({
      limits: { deadlineMs: 30_000 },
      plugins: [{ name: "gate", wasm: await watFixture("extism_http"), manifest }],
    });
    try {
      const request = JSON.stringify({ url: `http://127.0.0.1:${port}/`, method: "GET", headers: {} });
      const first = invoke(fx, "gate", "fetch", request);
      await within(20_000, "the first call reaching the upstream", upstreamEntered);

      const early: Response[] = [];
      let seventeen!: () => void;
      const seventeenSettled = new Promise<void>((resolve) => seventeen = resolve);
      const rest = Array.from({ length: 19 }, () =>
        invoke(fx, "gate", "fetch", request).then((response) => {
          if (early.push(response) === 17) seventeen();
          return response;
        }));
      await within(20_000, "17 calls answered while the instance is busy", seventeenSettled);
      const refused = [...early];
      assert.deepEqual(refused.map((r) => r.status), Array(17).fill(429));
      for (const response of refused) {
        assert.match(response.headers.get("retry-after") ?? "", /^[1-9]\d*$/);
        const body = await expectProblem(response, 429, "saturated");
        assert.equal(body.plugin, "gate");
        assert.equal(body.export, "fetch");
        assert.equal(body.retryAfterSeconds, Number(response.headers.get("retry-after")));
      }

      release();
      const ran = [await first, ...(await Promise.all(rest)).filter((r) => !refused.includes(r))];
      assert.equal(ran.length, 3);
      for (const response of ran) {
        assert.equal(response.status, 200);
        assert.equal(await response.text(), "through");
      }
      const metrics = await (await fx.request("/metrics", { headers: bearer(fx.adminToken) })).text();
      assert.match(metrics, /^keycard_rejections_total 17$/m);
      assert.ok(metrics.includes(`keycard_calls_total{plugin="gate",export="fetch",outcome="saturated"} 17`));
      assert.ok(metrics.includes(`keycard_calls_total{plugin="gate",export="fetch",outcome="ok"} 3`));
    } finally {
      release();
      await fx.close();
      await upstream.shutdown();
    }
  },
);

Deno.test(
  "POST /v1/plugins/:name/invoke/:export is 504 at the deadline, and the plugin answers afterwards",
  withGateway(async (fx) => {
    const started = performance.now();
    const body = await expectProblem(await invoke(fx, "hello", "fib", "100000"), 504, "deadline-exceeded");
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 450 && elapsed < 1_500, `answered after ${elapsed} ms`);
    assert.equal(body.plugin, "hello");
    assert.equal(body.export, "fib");
    assert.equal(body.deadlineMs, 500);
    const after = await invoke(fx, "hello", "greet", "again");
    assert.equal(await after.text(), "Hello, again!");
  }),
);

Deno.test(
  "POST /v1/plugins/:name/invoke/:export is 502 on a trap and on a memory overrun, naming plugin and export",
  withGateway(async (fx) => {
    for (let i = 0; i < 2; i++) {
      const trap = await expectProblem(await invoke(fx, "trap", "unreachable"), 502, "plugin-failed");
      assert.equal(trap.plugin, "trap");
      assert.equal(trap.export, "unreachable");
      assert.equal(trap.cause, "PluginTrapError");
    }
    const oob = await expectProblem(await invoke(fx, "trap", "out_of_bounds"), 502, "plugin-failed");
    assert.equal(oob.export, "out_of_bounds");
    const bomb = await expectProblem(await invoke(fx, "bomb", "grow"), 502, "plugin-failed");
    assert.equal(bomb.plugin, "bomb");
    assert.equal(bomb.export, "grow");
    assert.equal(bomb.cause, "PluginMemoryError");
    assert.equal((await invoke(fx, "hello", "greet")).status, 200);
  }),
);

Deno.test(
  "POST /v1/plugins/:name/invoke/:export is 422 when the plugin reports an error of its own",
  withGateway(async (fx) => {
    const body = await expectProblem(await invoke(fx, "hello", "fib", "not a number"), 422, "plugin-error");
    assert.equal(body.plugin, "hello");
    assert.equal(body.export, "fib");
    assert.match(String(body.pluginDetail ?? body.detail), /decimal integer/);
  }),
);

// --- conformance -----------------------------------------------------------------

Deno.test(
  "POST /v1/conformance runs the suite on application/wasm or multipart with 200, passing or failing",
  withGateway(async (fx) => {
    const before = await installed(fx);
    const echo = await watFixture("http_echo");
    const bare = await fx.request(
      "/v1/conformance",
      admin(fx, { method: "POST", headers: { "content-type": "application/wasm" }, body: echo as BodyInit }),
    );
    assert.equal(bare.status, 200);
    const bareReport = await bare.json();
    assert.equal(bareReport.passed, true);
    assert.equal(bareReport.sha256, sha256Hex(echo));

    const form = await fx.request(
      "/v1/conformance",
      admin(fx, { method: "POST", body: pluginForm(echo, echoManifest("echo")) }),
    );
    assert.equal(form.status, 200);
    const formReport = await form.json();
    assert.equal(formReport.passed, true);
    assert.equal(formReport.plugin, "echo");

    const failing = await fx.request(
      "/v1/conformance",
      admin(fx, {
        method: "POST",
        body: pluginForm(
          await watFixture("trap"),
          await Deno.readTextFile(new URL("./testdata/conform_trap.yaml", import.meta.url)),
        ),
      }),
    );
    assert.equal(failing.status, 200);
    const failed = await failing.json();
    assert.equal(failed.passed, false);
    assert.equal(failed.checks.find((c: { id: string }) => c.id === "exports.run").passed, false);

    const junk = await fx.request(
      "/v1/conformance",
      admin(fx, { method: "POST", headers: { "content-type": "application/wasm" }, body: "junk" }),
    );
    assert.equal(junk.status, 200);
    assert.equal((await junk.json()).passed, false);

    // Conformance never installs anything.
    assert.deepEqual(await installed(fx), before);
  }),
);

Deno.test(
  "POST /v1/conformance refuses a malformed manifest with 400 and another media type with 415",
  withGateway(async (fx) => {
    const body = await expectProblem(
      await fx.request(
        "/v1/conformance",
        admin(fx, { method: "POST", body: pluginForm(await watFixture("http_echo"), "name: [unclosed\n") }),
      ),
      400,
      "invalid-manifest",
    );
    assert.equal(typeof body.line, "number");
    assert.equal(typeof body.column, "number");
    await expectProblem(
      await fx.request(
        "/v1/conformance",
        admin(fx, { method: "POST", headers: { "content-type": "text/plain" }, body: "x" }),
      ),
      415,
      "unsupported-media-type",
    );
  }),
);

// --- policies ----------------------------------------------------------------------

const NO_CLOCK =
  '@id("ops.no-clock")\nforbid (principal == Plugin::"stamp", action == Action::"clock.now", resource);\n';

async function stampOutput(fx: GatewayFixture): Promise<{ now: unknown; errors: { part: string; code: string }[] }> {
  const response = await invoke(fx, "stamp", "stamp", "policy");
  assert.equal(response.status, 200);
  return JSON.parse(await response.text());
}

Deno.test(
  "GET /v1/policies shows the effective set: version, file and grant sources with their text, policy ids",
  withGateway(async (fx) => {
    const response = await fx.request("/v1/policies", admin(fx));
    assert.equal(response.status, 200);
    const body = await response.json() as {
      version: number;
      sources: { name: string; kind: string; text: string }[];
      policies: { id: string; effect: string; source: string }[];
    };
    assert.equal(typeof body.version, "number");
    const names = body.sources.map((s) => s.name);
    for (const name of ["api.cedar", "base.cedar", "grants/hello", "grants/stamp"]) {
      assert.ok(names.includes(name), name);
    }
    assert.equal(body.sources.find((s) => s.name === "base.cedar")!.kind, "file");
    assert.equal(body.sources.find((s) => s.name === "grants/stamp")!.kind, "grant");
    assert.match(body.sources.find((s) => s.name === "api.cedar")!.text, /@id\("api\.admin"\)/);
    assert.ok(body.policies.some((p) => p.id === "api.admin" && p.effect === "permit" && p.source === "api.cedar"));
    assert.ok(body.policies.some((p) => p.id === "grant.stamp.1"));
  }),
);

Deno.test(
  "PUT /v1/policies/:name validates and swaps in a policy file: the version increases and decisions change",
  withGateway(async (fx) => {
    assert.equal((await stampOutput(fx)).errors.length, 0);
    const before = await policyState(fx);
    const response = await fx.request("/v1/policies/ops", admin(fx, { method: "PUT", body: NO_CLOCK }));
    assert.equal(response.status, 200);
    const body = await response.json();
    assert.equal(body.name, "ops.cedar");
    assert.ok(body.version > before.version);

    const after = await (await fx.request("/v1/policies", admin(fx))).json();
    assert.equal(after.version, body.version);
    assert.equal(after.sources.find((s: { name: string }) => s.name === "ops.cedar").text, NO_CLOCK);
    assert.equal(await Deno.readTextFile(join(fx.dir, "policies", "ops.cedar")), NO_CLOCK);

    const stamped = await stampOutput(fx);
    assert.equal(stamped.now, null);
    assert.deepEqual(stamped.errors.map((e) => [e.part, e.code]), [["now", "denied"]]);
  }),
);

Deno.test(
  "PUT /v1/policies/:name refuses an invalid policy with 400, line and column, and changes nothing",
  withGateway(async (fx) => {
    assert.equal((await fx.request("/v1/policies/ops", admin(fx, { method: "PUT", body: NO_CLOCK }))).status, 200);
    const before = await policyState(fx);
    const invalid = 'permit (principal, action == Action::"clock.now", resource)\nwhen { nope };\n';
    const body = await expectProblem(
      await fx.request("/v1/policies/ops", admin(fx, { method: "PUT", body: invalid })),
      400,
      "invalid-policy",
    );
    assert.equal(body.source, "ops.cedar");
    assert.equal(body.line, 2);
    assert.equal(body.column, 8);

    const unknownAction = await expectProblem(
      await fx.request(
        "/v1/policies/other",
        admin(fx, { method: "PUT", body: 'permit (principal,\n  action == Action::"nope.nope", resource);' }),
      ),
      400,
      "invalid-policy",
    );
    assert.equal(unknownAction.line, 2);
    assert.equal(unknownAction.column, 13);

    const duplicate = await expectProblem(
      await fx.request(
        "/v1/policies/other",
        admin(fx, { method: "PUT", body: '@id("api.admin")\npermit (principal, action, resource);' }),
      ),
      400,
      "invalid-policy",
    );
    assert.match(String(duplicate.detail), /api\.admin/);

    await expectProblem(
      await fx.request("/v1/policies/.hidden", admin(fx, { method: "PUT", body: NO_CLOCK })),
      400,
      "bad-request",
    );

    assert.deepEqual(await policyState(fx), before);
    assert.equal(await Deno.readTextFile(join(fx.dir, "policies", "ops.cedar")), NO_CLOCK);
    await assert.rejects(Deno.stat(join(fx.dir, "policies", "other.cedar")), Deno.errors.NotFound);
    assert.equal((await stampOutput(fx)).now, null);
  }),
);

Deno.test(
  "DELETE /v1/policies/:name removes an operator policy file with 204, then 404",
  withGateway(async (fx) => {
    assert.equal((await fx.request("/v1/policies/ops", admin(fx, { method: "PUT", body: NO_CLOCK }))).status, 200);
    const before = await policyState(fx);
    const response = await fx.request("/v1/policies/ops.cedar", admin(fx, { method: "DELETE" }));
    assert.equal(response.status, 204);
    const after = await policyState(fx);
    assert.ok(after.version > before.version);
    assert.ok(!after.sources.includes("ops.cedar"));
    await assert.rejects(Deno.stat(join(fx.dir, "policies", "ops.cedar")), Deno.errors.NotFound);
    assert.equal((await stampOutput(fx)).errors.length, 0);

    await expectProblem(await fx.request("/v1/policies/ops", admin(fx, { method: "DELETE" })), 404, "not-found");
    assert.deepEqual(await policyState(fx), after);
  }),
);

Deno.test(
  "DELETE /v1/policies/api refuses to lock every client out of the API",
  // CONTRACT GAP (src/gateway/create_gateway.ts policies.remove, also policies.put): removing api.cedar (or
  // replacing it with a set that denies policy.write) succeeds with 204, after which even the admin gets 403 on
  // every /v1 route and only a restart with a hand-edited policies/ dir recovers. Fails with:
  // "Expected status 409, got 204".
  withGateway(async (fx) => {
    await expectProblem(await fx.request("/v1/policies/api", admin(fx, { method: "DELETE" })), 409, "conflict");
    assert.equal((await fx.request("/v1/policies", admin(fx))).status, 200);
  }),
);

// --- authorize ---------------------------------------------------------------------

Deno.test(
  "POST /v1/authorize dry-runs a request: decision, deciding policy ids, errors, reason",
  withGateway(async (fx) => {
    const post = (body: unknown) =>
      fx.request("/v1/authorize", admin(fx, { method: "POST", body: JSON.stringify(body) }));
    const allowed = await post({
      principal: { type: "Plugin", id: "stamp" },
      action: "clock.now",
      resource: { type: "Runtime", id: "clock" },
      context: { caller: "dry-run" },
    });
    assert.equal(allowed.status, 200);
    const allow = await allowed.json();
    assert.equal(allow.decision, "allow");
    assert.deepEqual(allow.policies, ["grant.stamp.1"]);
    assert.deepEqual(allow.errors, []);

    const denied = await (await post({
      principal: { type: "Plugin", id: "hello" },
      action: "clock.now",
      resource: { type: "Runtime", id: "clock" },
      context: { caller: "dry-run" },
    })).json();
    assert.equal(denied.decision, "deny");
    assert.deepEqual(denied.policies, []);
    assert.match(denied.reason, /denied by default/);

    const client = await (await post({
      principal: { type: "Client", id: "someone", attrs: { roles: ["caller"] } },
      action: "plugin.call",
      resource: { type: "Plugin", id: "hello" },
    })).json();
    assert.equal(client.decision, "allow");
    assert.deepEqual(client.policies, ["api.caller"]);

    // A dry run records nothing.
    assert.deepEqual(await audit(fx), []);
  }),
);

Deno.test(
  "POST /v1/authorize refuses bad JSON and incomplete requests with 400",
  withGateway(async (fx) => {
    const post = (body: string) => fx.request("/v1/authorize", admin(fx, { method: "POST", body }));
    await expectProblem(await post("{nope"), 400, "bad-request");
    await expectProblem(await post("[]"), 400, "bad-request");
    await expectProblem(await post('"text"'), 400, "bad-request");
    await expectProblem(
      await post(
        JSON.stringify({ principal: { type: "Plugin", id: "x" }, resource: { type: "Runtime", id: "clock" } }),
      ),
      400,
      "bad-request",
    );
    await expectProblem(
      await post(JSON.stringify({ action: "clock.now", resource: { type: "Runtime", id: "clock" } })),
      400,
      "bad-request",
    );
    await expectProblem(
      await post(JSON.stringify({ principal: { type: "Plugin", id: "x" }, action: "clock.now", resource: "clock" })),
      400,
      "bad-request",
    );
  }),
);

// --- audit -------------------------------------------------------------------------

Deno.test(
  "GET /v1/audit filters by plugin, action, decision, since and limit; the invoking client is the caller",
  withGateway(async (fx) => {
    const stamped = await invoke(fx, "stamp", "stamp", "audit");
    assert.equal(stamped.status, 200);
    await stamped.body?.cancel();
    const callId = stamped.headers.get("x-keycard-call-id")!;
    // read_file outside stamp's grant: a denial (and a plugin error).
    await expectProblem(await invoke(fx, "stamp", "read_file", "other/secret.txt", fx.adminToken), 422, "plugin-error");

    const all = await audit(fx, "?plugin=stamp");
    assert.ok(all.length >= 4, JSON.stringify(all));
    const ofCall = all.filter((e) => e.callId === callId);
    assert.deepEqual(ofCall.map((e) => e.action).sort(), ["clock.now", "log.write", "random.get"]);
    assert.ok(ofCall.every((e) => e.caller === "app"), JSON.stringify(ofCall));

    const clock = await audit(fx, "?action=clock.now");
    assert.ok(clock.length >= 1 && clock.every((e) => e.action === "clock.now"));
    const denied = await audit(fx, "?decision=deny");
    assert.equal(denied.length, 1);
    assert.equal(denied[0]!.action, "fs.read");
    assert.equal(denied[0]!.caller, "admin");
    assert.ok((await audit(fx, "?decision=allow")).every((e) => e.decision === "allow"));
    assert.equal((await audit(fx, "?limit=2")).length, 2);
    assert.deepEqual(await audit(fx, "?plugin=hello"), []);
    assert.deepEqual(await audit(fx, `?since=${new Date(Date.now() + 60_000).toISOString()}`), []);
    assert.equal((await audit(fx, "?since=2000-01-01T00:00:00Z")).length, all.length);
    assert.deepEqual(await audit(fx, "?plugin=stamp&action=fs.read&decision=deny&limit=1"), denied);
  }),
);

Deno.test(
  "GET /v1/audit refuses bad filter values with 400",
  withGateway(async (fx) => {
    for (const query of ["decision=maybe", "limit=0", "limit=10001", "limit=abc", "limit=1.5", "since=yesterday"]) {
      const body = await expectProblem(await fx.request(`/v1/audit?${query}`, admin(fx)), 400, "bad-request");
      assert.match(String(body.detail), new RegExp(query.split("=")[0]!));
    }
    await expectProblem(await fx.request("/v1/audit/stream?decision=maybe", admin(fx)), 400, "bad-request");
  }),
);

/** Reads SSE events from a body until `done` says stop; returns them. */
async function readEvents(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  done: (event: { event: string; data: string }) => boolean,
): Promise<{ event: string; data: string }[]> {
  const events: { event: string; data: string }[] = [];
  let buffer = "";
  while (true) {
    const { value, done: ended } = await reader.read();
    if (ended) throw new Error(`The stream ended after ${JSON.stringify(events)}`);
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = { event: "message", data: "" };
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event.event = line.slice(6).trim();
        if (line.startsWith("data:")) event.data += line.slice(5).trim();
      }
      events.push(event);
      if (done(event)) return events;
    }
  }
}

Deno.test(
  "GET /v1/audit/stream sends live decision events of a plugin call as SSE",
  withGateway(async (fx) => {
    const response = await fx.request("/v1/audit/stream?plugin=stamp&action=clock.now", admin(fx));
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/);
    const reader = response.body!.getReader();
    try {
      await within(2_000, "the ready event", readEvents(reader, (e) => e.event === "ready"));
      // Other plugins' and actions' events are filtered out.
      assert.equal((await invoke(fx, "hello", "greet")).status, 200);
      const stamped = await invoke(fx, "stamp", "stamp", "sse");
      assert.equal(stamped.status, 200);
      const callId = stamped.headers.get("x-keycard-call-id");
      const events = await within(2_000, "a decision event", readEvents(reader, (e) => e.event === "decision"));
      const decision = JSON.parse(events.at(-1)!.data) as AuditEventView;
      assert.equal(decision.plugin, "stamp");
      assert.equal(decision.action, "clock.now");
      assert.equal(decision.decision, "allow");
      assert.equal(decision.callId, callId);
      assert.equal(decision.caller, "app");
    } finally {
      await reader.cancel();
    }
  }),
);

Deno.test(
  "GET /v1/audit/stream leaves no keep-alive timer pending once the client disconnects",
  // BUG (src/http/create_app.ts, /v1/audit/stream): each wait starts `setTimeout(resolve, 15_000)` and never
  // clears it, so every wake-up by an event, and the disconnect, leaves a 15 s timer (and its closure) pending:
  // timers pile up with the event rate. Deno 2.9's op sanitizer does not report timers, so this test counts them.
  // Fails with: "Expected values to be strictly deep-equal: + [15000, ...] - []" (one pending timer per wake-up).
  withGateway(async (fx) => {
    const pending = new Map<unknown, number>();
    const { setTimeout: realSet, clearTimeout: realClear } = globalThis;
    globalThis.setTimeout = ((fn: () => void, ms?: number) => {
      const handle: ReturnType<typeof realSet> = realSet(() => {
        pending.delete(handle);
        fn();
      }, ms);
      pending.set(handle, ms ?? 0);
      return handle;
    }) as typeof globalThis.setTimeout;
    globalThis.clearTimeout = ((handle?: ReturnType<typeof realSet>) => {
      pending.delete(handle);
      realClear(handle);
    }) as typeof globalThis.clearTimeout;
    try {
      const response = await fx.request("/v1/audit/stream?plugin=stamp", admin(fx));
      const reader = response.body!.getReader();
      await within(2_000, "the ready event", readEvents(reader, (e) => e.event === "ready"));
      await invoke(fx, "stamp", "stamp", "sse").then((r) => r.body?.cancel());
      await within(2_000, "a decision event", readEvents(reader, (e) => e.event === "decision"));
      await reader.cancel();
      await new Promise((resolve) => realSet(resolve, 50));
      // Exactly the keep-alive's 15 s: the plugin host's idle timers (concurrency.idleMs) are pending by design.
      assert.deepEqual([...pending.values()].filter((ms) => ms === 15_000), []);
    } finally {
      for (const [handle, ms] of pending) if (ms === 15_000) realClear(handle as ReturnType<typeof realSet>);
      globalThis.setTimeout = realSet;
      globalThis.clearTimeout = realClear;
    }
  }),
);

// --- body limits -------------------------------------------------------------------

Deno.test(
  "a /v1 body over server.maxBodyBytes is refused with 413 and changes nothing",
  withGateway(async (fx) => {
    const before = await installed(fx);
    const policies = await policyState(fx);
    const big = "x".repeat(8193);
    await expectProblem(await invoke(fx, "hello", "echo", big), 413, "payload-too-large");
    await expectProblem(
      await fx.request("/v1/authorize", admin(fx, { method: "POST", body: `{"pad":"${big}"}` })),
      413,
      "payload-too-large",
    );
    await expectProblem(
      await fx.request("/v1/policies/big", admin(fx, { method: "PUT", body: `// ${big}\n${NO_CLOCK}` })),
      413,
      "payload-too-large",
    );
    const wasm = new Uint8Array([...await watFixture("http_echo"), ...new Uint8Array(8192)]);
    await expectProblem(await put(fx, "echo", wasm, echoManifest("echo")), 413, "payload-too-large");
    // A body streamed without content-length is bounded too.
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 4; i++) controller.enqueue(encoder.encode("y".repeat(4096)));
        controller.close();
      },
    });
    await expectProblem(await invoke(fx, "hello", "echo", stream), 413, "payload-too-large");
    assert.equal((await invoke(fx, "hello", "echo", "x".repeat(8192))).status, 200);
    assert.deepEqual(await installed(fx), before);
    assert.deepEqual(await policyState(fx), policies);
  }, { maxBodyBytes: 8192 }),
);

Deno.test(
  "POST /v1/policies/explain decides a host call with the policies in force, an HTTP fetch in its two phases",
  withGateway(async (fx) => {
    const explain = (body: string, token = fx.adminToken) =>
      fx.request("/v1/policies/explain", { method: "POST", headers: bearer(token), body });
    const stamp = await explain("plugin: stamp\nclock.now:\n");
    assert.equal(stamp.status, 200);
    const clock = await stamp.json();
    assert.equal(clock.decisions.length, 1);
    assert.equal(clock.decisions[0].decision.decision, "allow");
    assert.equal(clock.decisions[0].deciding[0].source, "grants/stamp");
    assert.match(clock.decisions[0].deciding[0].text, /clock\.now/);
    // Principal attributes come from the plugin in force.
    assert.equal(clock.decisions[0].request.principal.attrs.version, "1.0.0");

    // A permit by name; the address the name resolved to is private: the name phase allows, the address phase denies.
    const permit = 'permit (principal == Plugin::"stamp", action == Action::"http.request", resource);\n';
    const before = await policyState(fx);
    const put = await fx.request("/v1/policies/http.cedar", admin(fx, { method: "PUT", body: permit }));
    assert.equal(put.status, 200, await put.clone().text());
    const fetch = await explain("plugin: stamp\nhttp.request: https://api.example.com/v1\nip: 10.0.0.5\n");
    assert.equal(fetch.status, 200);
    const phases = await fetch.json();
    assert.deepEqual(
      phases.decisions.map((d: { phase: string; decision: { decision: string } }) => [d.phase, d.decision.decision]),
      [["name", "allow"], ["address", "deny"]],
    );
    assert.ok(phases.decisions[1].deciding.some((p: { id: string }) => p.id === "base.http.private-addresses"));

    // Bad requests: a clear 400 with line and column, and nothing changes.
    const bad = await explain("plugin: stamp\nclock.now:\nbogus: 1\n");
    const problem = await expectProblem(bad, 400, "bad-request");
    assert.match(String(problem.detail), /bogus/);
    assert.equal(problem.line, 3);
    await expectProblem(await explain(`context: ${"[".repeat(40)}${"]".repeat(40)}\n`), 400, "bad-request");
    await expectProblem(await explain("x".repeat(70_000)), 413, "payload-too-large");
    // policy.read: a caller may not read policies.
    await expectProblem(await explain("plugin: stamp\nclock.now:\n", fx.callerToken), 403, "forbidden");
    assert.notDeepEqual(await policyState(fx), before, "only the PUT changed the policies");
  }),
);
