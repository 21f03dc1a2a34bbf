// Routes end to end (issue 5): a real upstream on 127.0.0.1, the gateway's
// Hono app in front of it with the repo's header-guard, redact and quoter
// plugins and test-only WAT hooks (tests/testdata/route_*.wat), driven with
// in-process requests that carry a remote address. Every wait is bounded.
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadConfig, parseRoutes, type RouteConfig } from "../src/config/mod.ts";
import { createGateway, type Gateway } from "../src/gateway/mod.ts";
import { bearer, expectProblem, sha256Hex, within } from "./_gateway_fixture.ts";
import { copyPolicies, examplePlugin, watFixture } from "./_test_utils.ts";

const repo = new URL("../", import.meta.url);
const BASE = "http://keycard.test";
const KIB = 1024;
/** Responses of the upstream's /large endpoint: 200 KiB, a secret in the first 64 KiB and one beyond. */
const LARGE_BYTES = 200 * KIB;
/** responseMs of the slow route; the upstream's /slow sleeps far longer. */
const SLOW_ROUTE_MS = 300;
const SLOW_UPSTREAM_MS = 3_000;
/** server.maxBodyBytes: the most a plain handler's request body may be (hello's inputBytes is 1 MiB). */
const MAX_BODY_BYTES = 2 * KIB * KIB;

/** Test-only hook plugins: .wat in tests/testdata, seeded as .wasm with the .yaml next to it. */
const HOOK_PLUGINS = ["route_const", "route_trap", "route_spin", "route_probe"];

function largeBody(): string {
  const head = '{"password":"early","pad1":"';
  const middle = '","password":"x","pad2":"';
  const tail = '"}';
  const pad1 = "a".repeat(100 * KIB);
  const pad2 = "b".repeat(LARGE_BYTES - head.length - pad1.length - middle.length - tail.length);
  const body = head + pad1 + middle + pad2 + tail;
  assert.equal(body.length, LARGE_BYTES);
  assert.ok(body.indexOf('"password":"x"') > 64 * KIB);
  return body;
}

interface Upstream {
  url: string;
  /** Requests answered, by path. */
  hits: Map<string, number>;
  total(): number;
  close(): Promise<void>;
}

/** The upstream: echoes requests as JSON, plus /large, /slow and /secrets (under any prefix). */
function startUpstream(): Upstream {
  const hits = new Map<string, number>();
  const large = largeBody();
  /** Wakes the sleeping /slow handlers (on close: the server's shutdown waits for them). */
  const sleepers = new Set<() => void>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const url = new URL(request.url);
    hits.set(url.pathname, (hits.get(url.pathname) ?? 0) + 1);
    const last = url.pathname.split("/").at(-1);
    if (last === "large") {
      return new Response(large, { headers: { "content-type": "application/json", "x-upstream": "large" } });
    }
    if (last === "secrets") {
      return new Response(JSON.stringify({ user: "bob", password: "hunter2", token: "t-123", note: "ok" }), {
        headers: { "content-type": "application/json" },
      });
    }
    if (last === "slow") {
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          sleepers.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, SLOW_UPSTREAM_MS);
        sleepers.add(wake);
      });
      return new Response("late");
    }
    const headers: Record<string, string> = {};
    request.headers.forEach((value, name) => headers[name] = value);
    const body = await request.text();
    return Response.json({
      method: request.method,
      path: url.pathname,
      query: url.search.slice(1),
      headers,
      bodyLength: body.length,
      body: body.length > 1024 ? body.slice(0, 64) : body,
    }, { headers: { "x-upstream": "echo" } });
  });
  const { port } = server.addr;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    total: () => [...hits.values()].reduce((a, b) => a + b, 0),
    close: () => {
      for (const wake of [...sleepers]) wake();
      return server.shutdown();
    },
  };
}

/** A port that nothing listens on (was free a moment ago). */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

interface Echo {
  method: string;
  path: string;
  query: string;
  headers: Record<string, string>;
  bodyLength: number;
  body: string;
}

interface Fixture {
  gateway: Gateway;
  upstream: Upstream;
  adminToken: string;
  callerToken: string;
  viewerToken: string;
  request(path: string, init?: RequestInit): Promise<Response>;
  close(): Promise<void>;
}

function randomToken(prefix: string): string {
  return `${prefix}-${crypto.randomUUID()}`;
}

function routesYaml(upstream: string, down: string): string {
  const hook = (plugin: string, on: string, exp: string, extra = "") =>
    `      - { plugin: ${plugin}, on: ${on}, export: ${exp}${extra} }`;
  return [
    "routes:",
    `  - { name: plain, match: { path: /plain/* }, auth: public, upstream: "${upstream}" }`,
    `  - name: prio`,
    `    match: { path: /prio }`,
    `    auth: public`,
    `    upstream: "${upstream}"`,
    `    hooks:`,
    hook("route-const", "request", "set_a1", ", priority: 10"),
    hook("route-const", "request", "set_a2", ", priority: -5"),
    `  - name: tie-a`,
    `    match: { path: /tie-a }`,
    `    auth: public`,
    `    upstream: "${upstream}"`,
    `    hooks:`,
    hook("route-const", "request", "set_a1"),
    hook("route-const", "request", "set_a2"),
    `  - name: tie-b`,
    `    match: { path: /tie-b }`,
    `    auth: public`,
    `    upstream: "${upstream}"`,
    `    hooks:`,
    hook("route-const", "request", "set_a2"),
    hook("route-const", "request", "set_a1"),
    `  - name: remove`,
    `    match: { path: /remove }`,
    `    auth: public`,
    `    upstream: "${upstream}"`,
    `    hooks:`,
    hook("route-const", "request", "set_a1"),
    hook("route-const", "request", "remove_a"),
    `  - name: deny-chain`,
    `    match: { path: /deny-chain }`,
    `    auth: public`,
    `    upstream: "${upstream}"`,
    `    hooks:`,
    hook("route-trap", "request", "unreachable", ", priority: 9"),
    hook("route-const", "request", "deny_451", ", priority: 1"),
    hook("route-const", "request", "set_a1", ", priority: 0"),
    hook("route-trap", "response", "unreachable"),
    `  - name: deny-prio`,
    `    match: { path: /deny-prio }`,
    `    auth: public`,
    `    upstream: "${upstream}"`,
    `    hooks:`,
    hook("route-const", "request", "deny_452", ", priority: 5"),
    hook("route-const", "request", "deny_451", ", priority: 2"),
    `  - name: deny-default`,
    `    match: { path: /deny-default }`,
    `    auth: public`,
    `    upstream: "${upstream}"`,
    `    hooks:`,
    hook("route-const", "request", "deny_default"),
    `  - name: status`,
    `    match: { path: /status }`,
    `    auth: public`,
    `    upstream: "${upstream}"`,
    `    hooks:`,
    hook("route-const", "response", "status_298"),
    hook("route-const", "request", "allow"),
    hook("route-const", "request", "status_299", ", priority: 1"),
    `  - name: status-zero`,
    `    match: { path: /status-zero }`,
    `    auth: public`,
    `    upstream: "${upstream}"`,
    `    hooks:`,
    hook("route-const", "request", "status_zero"),
    hook("route-const", "request", "status_299"),
    `  - name: guarded`,
    `    match: { path: /guarded/* }`,
    `    auth: public`,
    `    upstream: "${upstream}"`,
    `    hooks:`,
    hook("header-guard", "request", "on_request"),
    `  - name: redacted`,
    `    match: { path: /redacted/* }`,
    `    auth: public`,
    `    upstream: "${upstream}"`,
    `    hooks:`,
    hook("redact", "response", "on_response", ", failure: open"),
    hook("route-probe", "response", "probe", ", failure: open"),
    `  - name: closed-trap`,
    `    match: { path: /closed-trap }`,
    `    auth: public`,
    `    upstream: "${upstream}"`,
    `    hooks:`,
    hook("route-trap", "request", "unreachable", ", failure: closed"),
    `  - name: closed-spin`,
    `    match: { path: /closed-spin }`,
    `    auth: public`,
    `    upstream: "${upstream}"`,
    `    hooks:`,
    hook("route-spin", "request", "spin"),
    `  - name: open-trap`,
    `    match: { path: /open-trap }`,
    `    auth: public`,
    `    upstream: "${upstream}"`,
    `    hooks:`,
    hook("route-trap", "request", "unreachable", ", failure: open"),
    hook("route-const", "request", "set_a1", ", priority: 1"),
    `  - name: open-spin`,
    `    match: { path: /open-spin }`,
    `    auth: public`,
    `    upstream: "${upstream}"`,
    `    hooks:`,
    hook("route-spin", "response", "spin", ", failure: open"),
    `  - { name: down, match: { path: /down }, auth: public, upstream: "${down}" }`,
    `  - name: slow`,
    `    match: { path: /slow }`,
    `    auth: public`,
    `    upstream: "${upstream}"`,
    `    timeouts: { responseMs: ${SLOW_ROUTE_MS} }`,
    `  - { name: quote, match: { path: /quote, methods: [GET] }, auth: public, handler: { plugin: quoter } }`,
    `  - { name: private, match: { path: /private/* }, auth: token, upstream: "${upstream}" }`,
    `  - name: private-open`,
    `    match: { path: /private-open }`,
    `    upstream: "${upstream}"`,
    `    hooks:`,
    hook("route-trap", "request", "unreachable", ", failure: open"),
    `  - { name: broken-handler, match: { path: /broken }, auth: public, handler: { plugin: route-trap, export: unreachable } }`,
    ...handlerRoutes(),
    `  - name: rewrite-body`,
    `    match: { path: /rewrite-body }`,
    `    auth: public`,
    `    upstream: "${upstream}"`,
    `    hooks:`,
    hook("route-const", "request", "set_body"),
    `  - name: flip`,
    `    match: { path: /flip/* }`,
    `    auth: public`,
    `    upstream: "${upstream}/a"`,
    `    hooks:`,
    hook("route-const", "request", "set_a1"),
    "",
  ].join("\n");
}

/** Handler routes: plain exports of hello, the envelope by route and by manifest, failures. */
function handlerRoutes(): string[] {
  const route = (name: string, path: string, handler: string) =>
    `  - { name: ${name}, match: { path: ${path} }, auth: public, handler: { ${handler} } }`;
  return [
    route("greet", "/greet", 'plugin: hello, export: greet, contentType: "text/plain; charset=utf-8"'),
    route("echo", "/echo", "plugin: hello, export: echo"),
    route("vowels", "/vowels", "plugin: hello, export: count_vowels, contentType: application/json"),
    route("fib", "/fib", "plugin: hello, export: fib"),
    route("spin-handler", "/spin-handler", "plugin: route-spin, export: spin"),
    route("deny-envelope", "/deny-envelope", "plugin: route-const, export: deny_451, envelope: true"),
    route("allow-envelope", "/allow-envelope", "plugin: route-const, export: set_body, envelope: true"),
    route("quote-raw", "/quote-raw", "plugin: quoter, envelope: false"),
    route("quoter-describe", "/quoter-describe", "plugin: quoter, export: describe"),
    route("greet-enveloped", "/greet-enveloped", "plugin: hello, export: greet, envelope: true"),
    `  - name: greet-hooked`,
    `    match: { path: /greet-hooked }`,
    `    auth: public`,
    `    handler: { plugin: hello, export: greet, contentType: text/plain }`,
    `    hooks:`,
    `      - { plugin: route-const, on: request, export: set_body }`,
    `      - { plugin: route-const, on: response, export: set_a1 }`,
    `      - { plugin: route-probe, on: response, export: probe }`,
  ];
}

async function startFixture(): Promise<Fixture> {
  for (const name of ["hello", "header-guard", "redact", "quoter"]) await examplePlugin(name);
  const upstream = startUpstream();
  const dir = await Deno.makeTempDir({ prefix: "keycard-routes-" });
  try {
    const policies = await copyPolicies(dir);
    const wasmDir = join(dir, "wasm");
    await Deno.mkdir(wasmDir);
    for (const name of HOOK_PLUGINS) {
      await Deno.writeFile(join(wasmDir, `${name}.wasm`), await watFixture(name));
      await Deno.copyFile(new URL(`testdata/${name}.yaml`, import.meta.url), join(wasmDir, `${name}.yaml`));
    }
    const adminToken = randomToken("admin");
    const callerToken = randomToken("caller");
    const viewerToken = randomToken("viewer");
    const plugin = (name: string) => new URL(`plugins/${name}`, repo).pathname;
    const yaml = [
      "server:",
      "  host: 127.0.0.1",
      "  port: 8080",
      `  maxBodyBytes: ${MAX_BODY_BYTES}`,
      `dataDir: ${JSON.stringify(join(dir, "data"))}`,
      `policies: ${JSON.stringify(policies)}`,
      "plugins:",
      ...["hello", "header-guard", "redact", "quoter"].map((p) => `  - path: ${JSON.stringify(plugin(p))}`),
      ...HOOK_PLUGINS.map((p) => `  - path: ${JSON.stringify(join(wasmDir, `${p}.wasm`))}`),
      "tokens:",
      `  - { id: app, sha256: "${sha256Hex(callerToken)}", roles: [caller] }`,
      `  - { id: viewer, sha256: "${sha256Hex(viewerToken)}", roles: [viewer] }`,
      "limits:",
      // Generous for every plugin (queue time counts, and the load step queues 50 calls on 2 instances);
      // route-spin's own manifest sets the 300 ms that the deadline tests meet.
      "  deadlineMs: 10000",
      "  instances: 2",
      "  queue: 512",
      "concurrency:",
      "  maxCalls: 16",
      "  queue: 2048",
      routesYaml(upstream.url, `http://127.0.0.1:${closedPort()}`),
    ].join("\n");
    const configPath = join(dir, "keycard.yaml");
    await Deno.writeTextFile(configPath, yaml);
    const { config } = await loadConfig({ path: configPath, env: {} });
    const gateway = await createGateway(config, { adminToken });
    let closed = false;
    return {
      gateway,
      upstream,
      adminToken,
      callerToken,
      viewerToken,
      request: (path, init) =>
        Promise.resolve(gateway.app.request(new URL(path, BASE).href, init, { remoteAddr: { hostname: "127.0.0.1" } })),
      async close() {
        if (closed) return;
        closed = true;
        try {
          await gateway.close();
        } finally {
          await upstream.close();
          await Deno.remove(dir, { recursive: true });
        }
      },
    };
  } catch (error) {
    await upstream.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
}

async function echo(response: Response): Promise<Echo> {
  const text = await response.text();
  assert.equal(response.status, 200, text.slice(0, 500));
  return JSON.parse(text) as Echo;
}

async function metricsText(fx: Fixture): Promise<string> {
  const response = await fx.request("/metrics", { headers: bearer(fx.adminToken) });
  assert.equal(response.status, 200);
  return await response.text();
}

function callCount(metrics: string, plugin: string, exportName: string, outcome: string): number {
  const line = metrics.split("\n").find((l) =>
    l.startsWith(`keycard_calls_total{plugin="${plugin}",export="${exportName}",outcome="${outcome}"} `)
  );
  return line ? Number(line.split(" ").at(-1)) : 0;
}

function failedCalls(metrics: string, plugin: string, exportName: string): number {
  return metrics.split("\n").filter((l) =>
    l.startsWith(`keycard_calls_total{plugin="${plugin}",export="${exportName}",outcome=`) &&
    !l.includes('outcome="ok"')
  ).reduce((sum, l) => sum + Number(l.split(" ").at(-1)), 0);
}

async function auditEvents(fx: Fixture, action: string, plugin: string): Promise<Record<string, unknown>[]> {
  const response = await fx.request(`/v1/audit?action=${action}&plugin=${plugin}`, {
    headers: bearer(fx.adminToken),
  });
  assert.equal(response.status, 200);
  const { events } = await response.json() as { events: Record<string, unknown>[] };
  return events.filter((e) => e.action === action && e.plugin === plugin);
}

function hookAudit(fx: Fixture, plugin: string): Promise<Record<string, unknown>[]> {
  return auditEvents(fx, "route.hook", plugin);
}

Deno.test("routes: hooks, upstream proxying, handlers, auth and reloads end to end", async (t) => {
  const fx = await startFixture();
  try {
    await t.step("allow passes through: method, path, query, body, x-forwarded-*, no hop-by-hop", async () => {
      const response = await fx.request("/plain/echo/x?a=1&b=two%20words", {
        method: "POST",
        headers: {
          "content-type": "text/plain",
          "x-custom": "gone",
          "connection": "x-custom",
          "keep-alive": "timeout=5",
          "proxy-authorization": "Basic abc",
          "te": "trailers",
          "x-kept": "yes",
        },
        body: "hello upstream",
      });
      assert.equal(response.headers.get("x-upstream"), "echo");
      const seen = await echo(response);
      assert.equal(seen.method, "POST");
      assert.equal(seen.path, "/plain/echo/x");
      assert.equal(seen.query, "a=1&b=two%20words");
      assert.equal(seen.body, "hello upstream");
      assert.equal(seen.headers["x-kept"], "yes");
      assert.equal(seen.headers["content-type"], "text/plain");
      assert.equal(seen.headers["x-forwarded-for"], "127.0.0.1");
      assert.equal(seen.headers["x-forwarded-proto"], "http");
      assert.equal(seen.headers["x-forwarded-host"], "keycard.test");
      for (const name of ["x-custom", "keep-alive", "proxy-authorization", "te"]) {
        assert.equal(seen.headers[name], undefined, `${name} was forwarded`);
      }
      assert.ok(!(seen.headers["connection"] ?? "").includes("x-custom"));

      // PUT and DELETE keep their method; a 200 KiB request body arrives whole.
      const big = "z".repeat(LARGE_BYTES);
      const put = await echo(await fx.request("/plain/put", { method: "PUT", body: big }));
      assert.equal(put.method, "PUT");
      assert.equal(put.bodyLength, LARGE_BYTES);
      const del = await echo(await fx.request("/plain/del?x", { method: "DELETE" }));
      assert.equal(del.method, "DELETE");
      assert.equal(del.query, "x");
    });

    await t.step(
      "what a plugin writes is served sandboxed; an upstream's answer untouched by plugins is not",
      async () => {
        // The console shares this origin: a plugin's document must not run script with it.
        const sandboxed = (response: Response) =>
          /(^|,\s*)sandbox\b/.test(response.headers.get("content-security-policy") ?? "");
        const upstream = await fx.request("/plain/echo/x");
        await upstream.body?.cancel();
        assert.equal(sandboxed(upstream), false, "an upstream's answer passes as the upstream wrote it");
        const denied = await fx.request("/deny-chain");
        await denied.body?.cancel();
        assert.equal(denied.status, 451);
        assert.ok(sandboxed(denied), "a request hook's refusal is the plugin's content");
        assert.equal(denied.headers.get("x-content-type-options"), "nosniff");
        const quote = await fx.request("/quote");
        await quote.body?.cancel();
        assert.equal(quote.status, 200);
        assert.ok(sandboxed(quote), "a handler's answer is the plugin's content");
      },
    );

    await t.step("deny short-circuits: its status, headers and body; no upstream, no later hooks", async () => {
      const before = fx.upstream.total();
      const metricsBefore = await metricsText(fx);
      const response = await fx.request("/deny-chain");
      assert.equal(response.status, 451);
      assert.equal(await response.text(), "denied by 451");
      assert.equal(response.headers.get("x-denied-by"), "451");
      assert.equal(fx.upstream.total(), before, "the upstream was called");
      // The trapping hooks (priority 9 request, response) never ran: a closed failure would be 503.
      const metricsAfter = await metricsText(fx);
      assert.equal(
        failedCalls(metricsAfter, "route-trap", "unreachable"),
        failedCalls(metricsBefore, "route-trap", "unreachable"),
      );
      assert.equal(
        callCount(metricsAfter, "route-const", "set_a1", "ok"),
        callCount(metricsBefore, "route-const", "set_a1", "ok") + 1,
      );

      // Lower priority first: deny_451 (2) answers before deny_452 (5).
      const prio = await fx.request("/deny-prio");
      assert.equal(prio.status, 451);
      assert.equal(await prio.text(), "denied by 451");
      // A deny without a status answers 403.
      const plain = await fx.request("/deny-default");
      assert.equal(plain.status, 403);
      await plain.body?.cancel();
      assert.equal(fx.upstream.total(), before);
    });

    await t.step(
      "request hooks run in ascending priority, ties in registration order; headers merge in order",
      async () => {
        // prio: set_a1 (10) after set_a2 (-5): x-a from set_a1 wins, x-b from set_a2 stays.
        const prio = await echo(await fx.request("/prio"));
        assert.equal(prio.headers["x-a"], "1");
        assert.equal(prio.headers["x-b"], "two");
        assert.equal(prio.headers["x-one"], "yes");
        // Ties: the later registered hook's set wins.
        const tieA = await echo(await fx.request("/tie-a"));
        assert.equal(tieA.headers["x-a"], "2");
        assert.equal(tieA.headers["x-one"], "yes");
        const tieB = await echo(await fx.request("/tie-b"));
        assert.equal(tieB.headers["x-a"], "1");
        assert.equal(tieB.headers["x-b"], "two");
        // remove after set removes; a header sent by the client can be removed too.
        const removed = await echo(await fx.request("/remove", { headers: { "x-a": "client" } }));
        assert.equal(removed.headers["x-a"], undefined);
        assert.equal(removed.headers["x-one"], "yes");
      },
    );

    await t.step("the first status override wins (request hook before response hook)", async () => {
      const response = await fx.request("/status");
      assert.equal(response.status, 299);
      assert.equal(response.headers.get("x-upstream"), "echo");
      await response.body?.cancel();
    });

    await t.step({
      name: 'a status of 0 is "no override": the first non-zero status wins',
      fn: async () => {
        const response = await fx.request("/status-zero");
        const text = await response.text();
        assert.equal(response.status, 299, text);
      },
    });

    await t.step("header-guard: no x-api-key → 401 from the hook; with it the upstream sees x-request-id", async () => {
      const before = fx.upstream.total();
      const denied = await fx.request("/guarded/items?a=1");
      assert.equal(denied.status, 401);
      assert.equal(denied.headers.get("content-type"), "application/json");
      assert.deepEqual(await denied.json(), { error: "missing header x-api-key" });
      assert.equal(fx.upstream.total(), before);

      const allowed = await echo(await fx.request("/guarded/items?a=1", { headers: { "x-api-key": "k-1" } }));
      assert.match(allowed.headers["x-request-id"] ?? "", /^[0-9a-f]{16}$/);
      assert.equal(allowed.headers["x-api-key"], "k-1");
      // Deterministic: the same request gets the same id.
      const again = await echo(await fx.request("/guarded/items?a=1", { headers: { "x-api-key": "k-1" } }));
      assert.equal(again.headers["x-request-id"], allowed.headers["x-request-id"]);
      // An id sent by the client is kept.
      const own = await echo(
        await fx.request("/guarded/items", { headers: { "x-api-key": "k-1", "x-request-id": "mine" } }),
      );
      assert.equal(own.headers["x-request-id"], "mine");
    });

    await t.step("redact on the response masks secrets and sets x-redacted", async () => {
      const response = await fx.request("/redacted/secrets");
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("x-redacted"), "2");
      assert.equal(response.headers.get("x-probe-truncated"), "false");
      const text = await response.text();
      assert.ok(!text.includes("hunter2") && !text.includes("t-123"), text);
      assert.deepEqual(JSON.parse(text), { user: "bob", password: "***", token: "***", note: "ok" });
      // The rewritten body's length, not the upstream's.
      const length = response.headers.get("content-length");
      if (length !== null) assert.equal(Number(length), new TextEncoder().encode(text).length);
    });

    await t.step("a 200 KiB response streams through untouched; the hooks are told bodyTruncated", async () => {
      const response = await fx.request("/redacted/large");
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("x-probe-truncated"), "true");
      // redact was told: it outputs {} for a truncated body, so no x-redacted (not even for the early secret).
      assert.equal(response.headers.get("x-redacted"), null);
      const text = await response.text();
      assert.equal(text.length, LARGE_BYTES);
      assert.equal(text, largeBody());
      assert.ok(text.includes('"password":"x"'));
      assert.ok(text.includes('"password":"early"'));
    });

    await t.step("failure closed: a trapping or looping hook answers 503 problem+json", async () => {
      const before = fx.upstream.total();
      const trap = await fx.request("/closed-trap");
      const body = await expectProblem(trap, 503, "hook-failed");
      assert.equal(body.route, "closed-trap");
      assert.equal(body.plugin, "route-trap");
      const started = performance.now();
      const spin = await within(5_000, "the looping hook", fx.request("/closed-spin"));
      await expectProblem(spin, 503, "hook-failed");
      assert.ok(performance.now() - started < 2_000, `took ${performance.now() - started} ms`);
      assert.equal(fx.upstream.total(), before);
      const events = await hookAudit(fx, "route-spin");
      assert.ok(events.some((e) => e.decision === "deny" && /failed closed/.test(String(e.reason))));
    });

    await t.step(
      "failure open: the hook is skipped, audited (route.hook) and counted; the request goes on",
      async () => {
        const metricsBefore = await metricsText(fx);
        const trap = await echo(await fx.request("/open-trap"));
        assert.equal(trap.headers["x-a"], "1"); // the next hook ran
        const spin = await within(5_000, "the looping response hook", fx.request("/open-spin?x=1"));
        const seen = await echo(spin);
        assert.equal(seen.path, "/open-spin");

        const trapEvents = await hookAudit(fx, "route-trap");
        const open = trapEvents.filter((e) => e.decision === "allow" && /failed open/.test(String(e.reason)));
        assert.ok(open.length >= 1, JSON.stringify(trapEvents));
        assert.equal(open.at(-1)!.resource, 'Route::"open-trap"');
        const spinEvents = await hookAudit(fx, "route-spin");
        assert.ok(spinEvents.some((e) => e.decision === "allow" && e.resource === 'Route::"open-spin"'));

        const metricsAfter = await metricsText(fx);
        assert.equal(
          failedCalls(metricsAfter, "route-trap", "unreachable"),
          failedCalls(metricsBefore, "route-trap", "unreachable") + 1,
        );
        assert.equal(callCount(metricsAfter, "route-spin", "spin", "deadline-exceeded") >= 1, true, metricsAfter);
        assert.equal(
          failedCalls(metricsAfter, "route-spin", "spin"),
          failedCalls(metricsBefore, "route-spin", "spin") + 1,
        );
      },
    );

    await t.step("a trapping handler answers 502 plugin-failed, named as a handler and audited", async () => {
      const body = await expectProblem(await fx.request("/broken"), 502, "plugin-failed");
      assert.equal(body.route, "broken-handler");
      assert.equal(body.plugin, "route-trap");
      assert.equal(body.export, "unreachable");
      assert.match(String(body.detail), /^Handler "route-trap" "unreachable" of route "broken-handler" failed: /);
      assert.doesNotMatch(String(body.detail), /hook/i);
      const events = await auditEvents(fx, "route.handler", "route-trap");
      assert.ok(events.some((e) => e.resource === 'Route::"broken-handler"' && e.decision === "deny"));
    });

    await t.step("a hook's call carries the route's client as caller (audited on failure)", async () => {
      const seen = await echo(await fx.request("/private-open", { headers: bearer(fx.callerToken) }));
      assert.equal(seen.path, "/private-open");
      const events = await hookAudit(fx, "route-trap");
      const mine = events.filter((e) => e.resource === 'Route::"private-open"');
      assert.equal(mine.length, 1, JSON.stringify(events));
      assert.equal(mine[0]!.caller, "app");
      // Public routes have no client.
      const open = events.find((e) => e.resource === 'Route::"open-trap"');
      assert.equal(open?.caller, null);
    });

    await t.step({
      name: "a request hook's body replaces the request body the upstream sees (with its own length)",
      fn: async () => {
        const original = "the original, longer request body";
        const response = await fx.request("/rewrite-body", {
          method: "POST",
          headers: { "content-type": "text/plain", "content-length": String(original.length) },
          body: original,
        });
        const text = await response.text();
        assert.equal(response.status, 200, text.slice(0, 300));
        const seen = JSON.parse(text) as Echo;
        assert.equal(seen.body, "replaced");
        assert.equal(seen.headers["content-length"], "8");
      },
    });

    await t.step("upstream down → 502 problem+json", async () => {
      const body = await expectProblem(await fx.request("/down"), 502, "upstream-failed");
      assert.equal(body.route, "down");
    });

    await t.step("slow upstream → 504 problem+json within responseMs", async () => {
      const started = performance.now();
      const response = await within(5_000, "the slow route", fx.request("/slow"));
      await expectProblem(response, 504, "deadline-exceeded");
      const ms = performance.now() - started;
      assert.ok(ms >= SLOW_ROUTE_MS - 10 && ms < SLOW_ROUTE_MS + 1_000, `took ${ms} ms`);
    });

    await t.step("a plain handler: the request body in, its output out as text (hello.greet)", async () => {
      const post = await fx.request("/greet", { method: "POST", body: "keycard" });
      assert.equal(post.status, 200);
      assert.equal(post.headers.get("content-type"), "text/plain; charset=utf-8");
      assert.equal(await post.text(), "Hello, keycard!");
      const get = await fx.request("/greet");
      assert.equal(await get.text(), "Hello, world!");
      const head = await fx.request("/greet", { method: "HEAD" });
      assert.equal(head.status, 200);
      assert.equal(await head.text(), "");
    });

    await t.step("a plain handler's bytes come back whole, as application/octet-stream by default", async () => {
      const bytes = new Uint8Array(LARGE_BYTES); // past the 64 KiB hooks see: a handler gets the whole body
      for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7) & 0xff;
      const response = await fx.request("/echo", { method: "POST", body: bytes });
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("content-type"), "application/octet-stream");
      assert.deepEqual(new Uint8Array(await response.arrayBuffer()), bytes);
      const empty = await fx.request("/echo", { method: "POST" });
      assert.equal(empty.status, 200);
      assert.equal((await empty.arrayBuffer()).byteLength, 0);
    });

    await t.step("a route's contentType names its handler's answer", async () => {
      const response = await fx.request("/vowels", { method: "POST", body: "Hello, World" });
      assert.equal(response.headers.get("content-type"), "application/json");
      assert.deepEqual(await response.json(), { count: 3 });
    });

    await t.step("a manifest export's contentType names the answer when the route does not", async () => {
      const response = await fx.request("/quoter-describe");
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("content-type"), "application/json");
      assert.equal((await response.json() as { name: string }).name, "quoter");
    });

    await t.step("plugin errors become problems: reported 422, deadline 504, each named as a handler's", async () => {
      const reported = await expectProblem(
        await fx.request("/fib", { method: "POST", body: "x" }),
        422,
        "plugin-error",
      );
      assert.equal(reported.pluginDetail, "fib: input must be a decimal integer");
      assert.equal(reported.route, "fib");
      assert.match(String(reported.detail), /^Handler "hello" "fib" of route "fib" failed: /);
      const ok = await fx.request("/fib", { method: "POST", body: "10" });
      assert.equal(await ok.text(), "55");

      const spin = await within(5_000, "the looping handler", fx.request("/spin-handler"));
      const deadline = await expectProblem(spin, 504, "deadline-exceeded");
      assert.equal(deadline.deadlineMs, 300);
      assert.match(String(deadline.detail), /^Handler "route-spin" "spin" of route "spin-handler" failed: /);
      const metrics = await metricsText(fx);
      assert.ok(callCount(metrics, "hello", "fib", "plugin-error") >= 1, metrics);
      assert.ok(callCount(metrics, "route-spin", "spin", "deadline-exceeded") >= 1, metrics);
    });

    await t.step(
      "a plain handler's body is bounded: the plugin's inputBytes and server.maxBodyBytes, 413",
      async () => {
        const overPlugin = new Uint8Array(1536 * KIB);
        const plugin = await expectProblem(
          await fx.request("/echo", { method: "POST", body: overPlugin }),
          413,
          "payload-too-large",
        );
        assert.equal(plugin.limit, "inputBytes");
        const overServer = new Uint8Array(MAX_BODY_BYTES + 1);
        const server = await expectProblem(
          await fx.request("/echo", { method: "POST", body: overServer }),
          413,
          "payload-too-large",
        );
        assert.match(String(server.detail), /Request body of route "echo" exceeds 2097152 bytes/);
      },
    );

    await t.step(
      "hooks run around a plain handler: its body from a request hook, its answer to response hooks",
      async () => {
        const response = await fx.request("/greet-hooked", { method: "POST", body: "original" });
        assert.equal(response.status, 200);
        assert.equal(await response.text(), "Hello, replaced!");
        assert.equal(response.headers.get("content-type"), "text/plain");
        assert.equal(response.headers.get("x-a"), "1");
        assert.equal(response.headers.get("x-probe-truncated"), "false");
      },
    );

    await t.step("a route's envelope: true makes its handler answer status, headers and body", async () => {
      const denied = await fx.request("/deny-envelope");
      assert.equal(denied.status, 451);
      assert.equal(denied.headers.get("content-type"), "text/plain");
      assert.equal(denied.headers.get("x-denied-by"), "451");
      assert.equal(await denied.text(), "denied by 451");
      // An envelope body without a content type gets the default one.
      const allowed = await fx.request("/allow-envelope");
      assert.equal(allowed.status, 200);
      assert.equal(allowed.headers.get("content-type"), "application/octet-stream");
      assert.equal(await allowed.text(), "replaced");
    });

    await t.step("an enveloped handler whose output is no envelope answers 502, saying who asked for one", async () => {
      const body = await expectProblem(await fx.request("/greet-enveloped"), 502, "plugin-failed");
      assert.match(
        String(body.detail),
        /^Handler "hello" "greet" of route "greet-enveloped" failed: output is not JSON/,
      );
      assert.match(String(body.detail), /the route says "greet" answers keycard's JSON envelope/);
    });

    await t.step("a route's envelope: false goes over the manifest's envelope: true", async () => {
      const response = await fx.request("/quote-raw");
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("content-type"), "application/octet-stream");
      const envelope = await response.json() as { status: number; body: string };
      assert.equal(envelope.status, 200);
      assert.equal(JSON.parse(atob(envelope.body)).path, ""); // the raw (empty) body was its input
    });

    await t.step("a handler route answers from the plugin (quoter: the envelope by its manifest)", async () => {
      const response = await fx.request("/quote");
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("content-type"), "application/json");
      const body = await response.json() as { quote: string; path: string };
      assert.equal(body.path, "/quote");
      assert.ok(typeof body.quote === "string" && body.quote.length > 0);
      // Methods outside the match are not this route's.
      const post = await fx.request("/quote", { method: "POST" });
      await expectProblem(post, 404, "not-found");
    });

    await t.step("token routes: no token 401, caller and admin allowed, a role without route.call 403", async () => {
      const before = fx.upstream.total();
      const none = await fx.request("/private/x");
      await expectProblem(none, 401, "unauthenticated");
      const bad = await fx.request("/private/x", { headers: bearer("nope") });
      await expectProblem(bad, 401, "unauthenticated");
      const viewer = await fx.request("/private/x", { headers: bearer(fx.viewerToken) });
      await expectProblem(viewer, 403, "forbidden");
      assert.equal(fx.upstream.total(), before);
      const caller = await echo(await fx.request("/private/x", { headers: bearer(fx.callerToken) }));
      assert.equal(caller.path, "/private/x");
      // The client's token goes on to the upstream (only hop-by-hop headers are dropped).
      assert.equal(caller.headers["authorization"], `Bearer ${fx.callerToken}`);
      const admin = await echo(await fx.request("/private/y", { headers: bearer(fx.adminToken) }));
      assert.equal(admin.path, "/private/y");
    });

    await t.step("setRoutes under load: ~300 concurrent requests while the table flips; none fails", async () => {
      const original = fx.gateway.routes();
      const withFlip = (yaml: string): RouteConfig[] => [
        ...original.filter((r) => r.name !== "flip"),
        ...parseRoutes(yaml, "flip.yaml"),
      ];
      const tableA = withFlip(
        `routes:\n  - name: flip\n    match: { path: /flip/* }\n    auth: public\n    upstream: "${fx.upstream.url}/a"\n` +
          "    hooks:\n      - { plugin: route-const, on: request, export: set_a1 }\n",
      );
      const tableB = withFlip(
        `routes:\n  - name: flip\n    match: { path: /flip/* }\n    auth: public\n    upstream: "${fx.upstream.url}/b"\n` +
          "    hooks:\n      - { plugin: header-guard, on: request, export: on_request, priority: -1 }\n" +
          "      - { plugin: route-const, on: request, export: set_a2 }\n",
      );
      let flips = 0;
      let running = true;
      const flipper = (async () => {
        while (running) {
          fx.gateway.setRoutes(flips % 2 === 0 ? tableB : tableA);
          flips++;
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
      })();
      const outcomes: string[] = [];
      try {
        for (let batch = 0; batch < 6; batch++) {
          // Each batch starts on a known table (the flipper keeps swapping during it), so both get served.
          fx.gateway.setRoutes(batch % 2 === 0 ? tableA : tableB);
          const results = await within(
            20_000,
            `batch ${batch}`,
            Promise.all(Array.from({ length: 50 }, async (_, i) => {
              const response = await fx.request(`/flip/r${batch}-${i}?n=${i}`, {
                method: "POST",
                headers: { "x-api-key": "k" },
                body: `body ${batch}-${i}`,
              });
              const text = await response.text();
              if (response.status !== 200) return `status ${response.status}: ${text.slice(0, 200)}`;
              const seen = JSON.parse(text) as Echo;
              const table = seen.path.startsWith("/a/") ? "a" : seen.path.startsWith("/b/") ? "b" : "?";
              const expected = table === "a" ? "1" : "2";
              if (seen.headers["x-a"] !== expected || seen.body !== `body ${batch}-${i}`) {
                return `mismatch: ${text.slice(0, 300)}`;
              }
              return table;
            })),
          );
          outcomes.push(...results);
        }
      } finally {
        running = false;
        await flipper;
      }
      const failures = outcomes.filter((o) => o !== "a" && o !== "b");
      assert.deepEqual(failures, [], `${failures.length} of ${outcomes.length} failed`);
      assert.equal(outcomes.length, 300);
      assert.ok(flips > 2, `only ${flips} flips`);
      assert.ok(outcomes.includes("a") && outcomes.includes("b"), "both tables served");
      fx.gateway.setRoutes(original);
    });

    await t.step("setRoutes naming a plugin or export that is not installed throws; the old table stays", async () => {
      const before = fx.gateway.routes();
      const missing = parseRoutes(
        "routes:\n  - name: ghost\n    match: { path: /ghost }\n    auth: public\n    upstream: http://127.0.0.1:9\n" +
          "    hooks:\n      - { plugin: no-such-plugin, on: request }\n",
        "ghost.yaml",
      );
      assert.throws(() => fx.gateway.setRoutes([...before, ...missing]), TypeError);
      const badExport = parseRoutes(
        "routes:\n  - name: ghost\n    match: { path: /ghost }\n    auth: public\n    handler: { plugin: hello, export: nope }\n",
        "ghost.yaml",
      );
      assert.throws(() => fx.gateway.setRoutes([...badExport]), TypeError);
      assert.equal(fx.gateway.routes(), before);
      await expectProblem(await fx.request("/ghost"), 404, "not-found");
      const still = await echo(await fx.request("/plain/still"));
      assert.equal(still.path, "/plain/still");
    });
  } finally {
    await fx.close();
  }
});
