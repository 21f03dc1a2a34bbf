// Every /v1 route against every kind of client: no token or a bad one is 401
// with WWW-Authenticate; a client whose roles api.cedar does not grant the
// route's action is 403; the right role gets past authentication and policy.
import assert from "node:assert/strict";
import { bearer, echoManifest, expectProblem, pluginForm, startGateway, within } from "./_gateway_fixture.ts";
import { watFixture } from "./_test_utils.ts";

type Role = "admin" | "caller";

interface Route {
  method: string;
  path: string;
  /** The Cedar API action the route is decided as. */
  action: string;
  /** Which configured client api.cedar permits. */
  role: Role;
  /** Status the permitted client gets. */
  status: number;
  body?: () => BodyInit;
  headers?: Record<string, string>;
}

const echo = await watFixture("http_echo");
const NO_CLOCK =
  '@id("ops.no-clock")\nforbid (principal == Plugin::"stamp", action == Action::"clock.now", resource);\n';
const DRY_RUN = JSON.stringify({
  principal: { type: "Plugin", id: "stamp" },
  action: "clock.now",
  resource: { type: "Runtime", id: "clock" },
});

// In order: the admin's PUTs come before the DELETEs that undo them.
const ROUTES: Route[] = [
  { method: "GET", path: "/v1/plugins", action: "plugin.read", role: "admin", status: 200 },
  { method: "GET", path: "/v1/plugins/hello", action: "plugin.read", role: "admin", status: 200 },
  {
    method: "PUT",
    path: "/v1/plugins/echo",
    action: "plugin.install",
    role: "admin",
    status: 201,
    body: () => pluginForm(echo, echoManifest("echo")),
  },
  {
    method: "POST",
    path: "/v1/plugins/hello/invoke/greet",
    action: "plugin.call",
    role: "caller",
    status: 200,
    body: () => "matrix",
  },
  {
    method: "POST",
    path: "/v1/plugins/echo/invoke/echo",
    action: "plugin.call",
    role: "caller",
    status: 200,
    body: () => "matrix",
  },
  { method: "DELETE", path: "/v1/plugins/echo", action: "plugin.remove", role: "admin", status: 204 },
  {
    method: "POST",
    path: "/v1/conformance",
    action: "conformance.run",
    role: "admin",
    status: 200,
    body: () => echo as BodyInit,
    headers: { "content-type": "application/wasm" },
  },
  { method: "GET", path: "/v1/policies", action: "policy.read", role: "admin", status: 200 },
  { method: "PUT", path: "/v1/policies/ops", action: "policy.write", role: "admin", status: 200, body: () => NO_CLOCK },
  { method: "DELETE", path: "/v1/policies/ops", action: "policy.write", role: "admin", status: 204 },
  { method: "POST", path: "/v1/authorize", action: "policy.read", role: "admin", status: 200, body: () => DRY_RUN },
  { method: "GET", path: "/v1/audit", action: "audit.read", role: "admin", status: 200 },
  { method: "GET", path: "/v1/audit/stream", action: "audit.read", role: "admin", status: 200 },
];

Deno.test("every /v1 route is authenticated by bearer token and decided by api.cedar", async (t) => {
  // ~75 failed authentications from one (in-process) address on purpose: past the default throttle of 20.
  const fx = await startGateway({ server: { authThrottle: { failures: 1000 } } });
  try {
    const tokens: Record<Role | "viewer", string> = {
      admin: fx.adminToken,
      caller: fx.callerToken,
      viewer: fx.viewerToken,
    };
    const send = (route: Route, authorization?: string) =>
      within(
        5_000,
        `${route.method} ${route.path}`,
        fx.request(route.path, {
          method: route.method,
          headers: { ...route.headers, ...(authorization === undefined ? {} : { authorization }) },
          ...(route.body ? { body: route.body() } : {}),
        }),
      );
    const policies = async () => await (await fx.request("/v1/policies", { headers: bearer(fx.adminToken) })).json();
    const policyVersion = async () => (await policies()).version;
    const policySources = async () => JSON.stringify((await policies()).sources);
    const sourcesBefore = await policySources();
    const versionBefore = await policyVersion();

    for (const route of ROUTES) {
      const name = `${route.method} ${route.path}`;
      const unauthenticated: [string, string | undefined][] = [
        ["no Authorization header", undefined],
        ["an unknown bearer token", "Bearer not-a-configured-token-0000"],
        ["another scheme", `Basic ${btoa(`admin:${fx.adminToken}`)}`],
        ["an empty bearer token", "Bearer "],
        ["the admin token's sha256 instead of the token", `Bearer ${await sha256(fx.adminToken)}`],
      ];
      for (const [what, authorization] of unauthenticated) {
        await t.step(`${name} with ${what} is 401 with WWW-Authenticate`, async () => {
          const response = await send(route, authorization);
          assert.match(response.headers.get("www-authenticate") ?? "", /^Bearer realm="keycard"$/);
          await expectProblem(response, 401, "unauthenticated");
        });
      }

      const denied: ("viewer" | "caller")[] = route.role === "admin" ? ["viewer", "caller"] : ["viewer"];
      for (const client of denied) {
        await t.step(`${name} as a ${client} client is 403 naming ${route.action}`, async () => {
          const body = await expectProblem(
            await send(route, `Bearer ${tokens[client]}`),
            403,
            "forbidden",
          );
          assert.equal(body.action, route.action);
          assert.match(String(body.detail), new RegExp(`"${client === "caller" ? "app" : "viewer"}"`));
        });
      }

      const permitted: Role[] = route.role === "caller" ? ["caller", "admin"] : ["admin"];
      for (const client of permitted) {
        await t.step(`${name} as ${client === "caller" ? "a caller" : "the admin"} is ${route.status}`, async () => {
          const response = await send(route, `Bearer ${tokens[client]}`);
          if (response.status !== route.status) {
            assert.fail(`Expected ${route.status}, got ${response.status} ${await response.text()}`);
          }
          // Closes the SSE stream too.
          await response.body?.cancel();
        });
      }
    }

    await t.step("the refused requests changed nothing", async () => {
      // The admin's PUT and DELETE of ops.cedar and of echo each made one version; nothing else did.
      assert.equal(await policyVersion(), versionBefore + 4);
      assert.equal(await policySources(), sourcesBefore);
      const list = await (await fx.request("/v1/plugins", { headers: bearer(fx.adminToken) })).json();
      assert.deepEqual(list.plugins.map((p: { name: string }) => p.name).sort(), ["bomb", "hello", "stamp", "trap"]);
    });

    await t.step("/healthz, /readyz and /openapi.json need no token", async () => {
      for (const path of ["/healthz", "/readyz", "/openapi.json"]) {
        const response = await fx.request(path);
        assert.equal(response.status, 200, path);
        await response.body?.cancel();
      }
    });

    await t.step("/metrics needs a token and audit.read (server.metrics: token, the default)", async () => {
      await expectProblem(await fx.request("/metrics"), 401, "unauthenticated");
      await expectProblem(await fx.request("/metrics", { headers: bearer(fx.callerToken) }), 403, "forbidden");
      const response = await fx.request("/metrics", { headers: bearer(fx.adminToken) });
      assert.equal(response.status, 200);
      await response.body?.cancel();
    });

    await t.step("the bearer scheme is case-insensitive", async () => {
      const response = await fx.request("/v1/plugins", { headers: { authorization: `bearer ${fx.adminToken}` } });
      assert.equal(response.status, 200);
      await response.body?.cancel();
    });
  } finally {
    await fx.close();
  }
});

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}
