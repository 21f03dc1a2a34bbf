// The standing adversarial suite, area "api": attacks on the HTTP API in-process (the fixture gateway's Hono app):
// every /v1 route without a token, malformed Authorization headers, tokens of the wrong role, method confusion, path
// tricks and body/content-type confusion on the install and policy routes. What must hold for each: the expected 4xx
// (never a 2xx, never a 5xx), a problem+json body, and the state unchanged: the installed plugins (name, version,
// sha256), the policy set (version, ids, sources) and the policy files on disk, compared before and after.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  BASE,
  bearer,
  echoManifest,
  type GatewayFixture,
  pluginForm,
  sha256Hex,
  startGateway,
} from "../_gateway_fixture.ts";
import { encoder, watFixture } from "../_test_utils.ts";
import { tally } from "./_tally.ts";

const echo = await watFixture("http_echo");
const FORBID_CLOCK =
  '@id("ops.no-clock")\nforbid (principal == Plugin::"stamp", action == Action::"clock.now", resource);\n';
const DRY_RUN = JSON.stringify({
  principal: { type: "Plugin", id: "stamp" },
  action: "clock.now",
  resource: { type: "Runtime", id: "clock" },
});

interface Route {
  method: string;
  path: string;
  body?: () => BodyInit;
  headers?: Record<string, string>;
}

// Every /v1 route, each with a body that would succeed for the right client.
const ROUTES: Route[] = [
  { method: "GET", path: "/v1/plugins" },
  { method: "GET", path: "/v1/plugins/hello" },
  { method: "PUT", path: "/v1/plugins/echo", body: () => pluginForm(echo, echoManifest("echo")) },
  {
    method: "PUT",
    path: "/v1/plugins/echo",
    body: () => echo as BodyInit,
    headers: { "content-type": "application/wasm" },
  },
  { method: "DELETE", path: "/v1/plugins/hello" },
  { method: "POST", path: "/v1/plugins/hello/invoke/greet", body: () => "x" },
  {
    method: "POST",
    path: "/v1/conformance",
    body: () => echo as BodyInit,
    headers: { "content-type": "application/wasm" },
  },
  { method: "GET", path: "/v1/policies" },
  { method: "PUT", path: "/v1/policies/ops", body: () => FORBID_CLOCK },
  { method: "DELETE", path: "/v1/policies/api" },
  { method: "POST", path: "/v1/authorize", body: () => DRY_RUN },
  { method: "GET", path: "/v1/audit" },
  { method: "GET", path: "/v1/audit/stream" },
];
const ADMIN_ONLY = ROUTES.filter((r) => !r.path.includes("/invoke/"));

/** What an attack must leave as it found it. */
async function state(fx: GatewayFixture): Promise<string> {
  const admin = bearer(fx.adminToken);
  const plugins = await fx.request("/v1/plugins", { headers: admin });
  assert.equal(plugins.status, 200);
  const policies = await fx.request("/v1/policies", { headers: admin });
  assert.equal(policies.status, 200);
  const files: string[] = [];
  for await (const entry of Deno.readDir(join(fx.dir, "policies"))) {
    files.push(`${entry.name}:${sha256Hex(await Deno.readFile(join(fx.dir, "policies", entry.name)))}`);
  }
  const list = (await plugins.json()).plugins as { name: string; version: string; sha256?: string }[];
  return JSON.stringify({
    plugins: list.map((p) => `${p.name}@${p.version}#${p.sha256 ?? ""}`).sort(),
    policies: await policies.json(),
    files: files.sort(),
  });
}

let addresses = 0;

/**
 * One request from an address of its own: failed authentication is throttled per client address, and each attack
 * here must meet the check it targets, not a throttle that earlier attacks tripped (the throttle has an attack of its
 * own below).
 */
function req(fx: GatewayFixture, path: string, init: RequestInit = {}, address?: string): Promise<Response> {
  const n = ++addresses;
  const hostname = address ?? `198.51.${n >> 8}.${n & 255}`;
  return Promise.resolve(fx.gateway.app.request(new URL(path, BASE).href, init, { remoteAddr: { hostname } }));
}

/** The state before the first attack: no attack may change it, so each is compared with this one. */
let baseline = "";

/** Sends `request`; the response must be one of `statuses`, a problem+json, and the state must not change. */
async function refused(
  fx: GatewayFixture,
  statuses: number[],
  request: () => Promise<Response>,
  options: { problem?: boolean } = {},
): Promise<Response> {
  const response = await request();
  const text = await response.text();
  assert.ok(statuses.includes(response.status), `got ${response.status}, want ${statuses}: ${text.slice(0, 200)}`);
  if (options.problem !== false && response.status !== 405) {
    assert.match(response.headers.get("content-type") ?? "", /^application\/problem\+json/, text.slice(0, 200));
  }
  if (response.status === 401) {
    assert.equal(response.headers.get("www-authenticate"), 'Bearer realm="keycard"');
  }
  assert.equal(await state(fx), baseline, "the state changed");
  return response;
}

function send(fx: GatewayFixture, route: Route, headers: HeadersInit = {}, path = route.path): Promise<Response> {
  const all = new Headers(route.headers);
  for (const [name, value] of new Headers(headers)) all.append(name, value);
  return req(fx, path, {
    method: route.method,
    headers: all,
    ...(route.body ? { body: route.body() } : {}),
  });
}

Deno.test("adversarial api: no token, bad tokens, wrong roles, method and path tricks, confused bodies", async () => {
  const t = tally("api");
  const fx = await startGateway();
  try {
    baseline = await state(fx);
    const put = ROUTES.find((r) => r.path === "/v1/policies/ops")!;

    for (const route of ROUTES) {
      await t.attack(`no token: ${route.method} ${route.path}`, () => refused(fx, [401], () => send(fx, route)));
    }

    const malformed: [string, string][] = [
      ["empty header", ""],
      ["scheme only", "Bearer"],
      ["scheme and a space", "Bearer "],
      ["Basic with the admin token", `Basic ${btoa(`admin:${fx.adminToken}`)}`],
      ["Token scheme", `Token ${fx.adminToken}`],
      ["no scheme", fx.adminToken],
      ["scheme glued to the token", `Bearer${fx.adminToken}`],
      ["two tokens", `Bearer ${fx.adminToken} ${fx.adminToken}`],
      ["token with a trailing word", `Bearer ${fx.adminToken} x`],
      ["the stored SHA-256 of the admin token", `Bearer ${sha256Hex(fx.adminToken)}`],
      ["the admin token cut by one character", `Bearer ${fx.adminToken.slice(0, -1)}`],
      ["the admin token and one more character", `Bearer ${fx.adminToken}0`],
      ["the admin token upper-cased", `Bearer ${fx.adminToken.toUpperCase()}`],
      ["a control character in the token", `Bearer ${fx.adminToken}\u0001`],
      ["a huge token", `Bearer ${"A".repeat(100_000)}`],
      ["a Latin-1 look-alike of the token", `Bearer ${fx.adminToken.replace("a", "\u00e0")}`],
      ["a quoted token", `Bearer "${fx.adminToken}"`],
    ];
    for (const [name, header] of malformed) {
      await t.attack(
        `malformed Authorization: ${name}`,
        () => refused(fx, [401], () => send(fx, put, { authorization: header })),
      );
    }
    await t.attack("two Authorization headers (admin twice)", () =>
      refused(fx, [401], () => {
        const headers = new Headers();
        headers.append("authorization", `Bearer ${fx.adminToken}`);
        headers.append("authorization", `Bearer ${fx.adminToken}`);
        return send(fx, put, headers);
      }));
    await t.attack("two Authorization headers (caller then admin)", () =>
      refused(fx, [401, 403], () => {
        const headers = new Headers();
        headers.append("authorization", `Bearer ${fx.callerToken}`);
        headers.append("authorization", `Bearer ${fx.adminToken}`);
        return send(fx, put, headers);
      }));
    await t.attack(
      "the admin token in the query string",
      () => refused(fx, [401], () => send(fx, put, {}, `/v1/policies/ops?access_token=${fx.adminToken}`)),
    );
    await t.attack(
      "the admin token in a cookie",
      () =>
        refused(
          fx,
          [401],
          () => send(fx, put, { cookie: `token=${fx.adminToken}; authorization=Bearer ${fx.adminToken}` }),
        ),
    );
    await t.attack(
      "the admin token in X-Api-Key and Proxy-Authorization",
      () =>
        refused(
          fx,
          [401],
          () => send(fx, put, { "x-api-key": fx.adminToken, "proxy-authorization": `Bearer ${fx.adminToken}` }),
        ),
    );
    await t.attack("a NUL in the token cannot even be sent", () => {
      assert.throws(() => new Headers({ authorization: `Bearer ${fx.adminToken}\u0000` }), TypeError);
    });

    for (const route of ADMIN_ONLY) {
      await t.attack(
        `caller token: ${route.method} ${route.path}`,
        () => refused(fx, [403], () => send(fx, route, bearer(fx.callerToken))),
      );
    }
    for (const route of ROUTES) {
      await t.attack(
        `viewer token: ${route.method} ${route.path}`,
        () => refused(fx, [403], () => send(fx, route, bearer(fx.viewerToken))),
      );
    }

    // Method confusion: no override header or parameter turns a permitted method into a forbidden one.
    const invoke = ROUTES.find((r) => r.path.includes("/invoke/"))!;
    for (const header of ["x-http-method-override", "x-http-method", "x-method-override"]) {
      await t.attack(`${header}: DELETE on a caller's invoke`, async () => {
        const response = await send(fx, invoke, { ...bearer(fx.callerToken), [header]: "DELETE" });
        await response.body?.cancel();
        assert.ok(response.status !== 204, "the override was honoured");
        assert.equal(await state(fx), baseline);
      });
    }
    await t.attack("_method=DELETE in the query of a caller's invoke", async () => {
      const response = await send(fx, invoke, bearer(fx.callerToken), `${invoke.path}?_method=DELETE`);
      await response.body?.cancel();
      assert.ok(response.status !== 204);
      assert.equal(await state(fx), baseline);
    });
    await t.attack(
      "_method=PUT in a form body with a caller token",
      () =>
        refused(fx, [403, 404, 405], () =>
          req(fx, "/v1/policies/ops", {
            method: "POST",
            headers: { ...bearer(fx.callerToken), "content-type": "application/x-www-form-urlencoded" },
            body: `_method=PUT&text=${encodeURIComponent(FORBID_CLOCK)}`,
          })),
    );
    await t.attack(
      "HEAD without a token",
      () => refused(fx, [401], () => req(fx, "/v1/plugins", { method: "HEAD" }), { problem: false }),
    );
    await t.attack(
      "HEAD with a viewer token",
      () =>
        refused(fx, [403], () => req(fx, "/v1/audit", { method: "HEAD", headers: bearer(fx.viewerToken) }), {
          problem: false,
        }),
    );
    await t.attack(
      "OPTIONS without a token",
      () => refused(fx, [401], () => req(fx, "/v1/plugins/hello", { method: "OPTIONS" })),
    );
    await t.attack(
      "PATCH of a plugin by the admin",
      () =>
        refused(
          fx,
          [404, 405],
          () => req(fx, "/v1/plugins/hello", { method: "PATCH", headers: bearer(fx.adminToken), body: "x" }),
        ),
    );
    await t.attack(
      "POST to a policy by the admin",
      () =>
        refused(
          fx,
          [404, 405],
          () => req(fx, "/v1/policies/ops", { method: "POST", headers: bearer(fx.adminToken), body: FORBID_CLOCK }),
        ),
    );
    await t.attack(
      "DELETE of the whole plugin list by the admin",
      () => refused(fx, [404, 405], () => req(fx, "/v1/plugins", { method: "DELETE", headers: bearer(fx.adminToken) })),
    );
    await t.attack(
      "DELETE of the whole policy set by the admin",
      () =>
        refused(fx, [404, 405], () => req(fx, "/v1/policies", { method: "DELETE", headers: bearer(fx.adminToken) })),
    );

    // Path tricks: none reaches a handler without the token and role the handler's own path needs.
    const tricks: [string, string, Record<string, string>][] = [
      ["double slash, no token", "/v1//plugins/hello", {}],
      ["double slash, caller", "/v1//plugins/hello", bearer(fx.callerToken)],
      ["trailing slash, caller", "/v1/plugins/hello/", bearer(fx.callerToken)],
      ["upper-case V1, no token", "/V1/plugins/hello", {}],
      ["upper-case PLUGINS, caller", "/v1/PLUGINS/hello", bearer(fx.callerToken)],
      ["encoded p, caller", "/v1/%70lugins/hello", bearer(fx.callerToken)],
      ["encoded slash, no token", "/v1%2Fplugins%2Fhello", {}],
      ["encoded slash in the name, caller", "/v1/plugins/x%2F..%2Fhello", bearer(fx.callerToken)],
      ["dot segment, caller", "/v1/./plugins/hello", bearer(fx.callerToken)],
      ["dot-dot out of /v1, no token", "/v1/../v1/plugins/hello", {}],
      ["matrix parameter, caller", "/v1/plugins/hello;admin=1", bearer(fx.callerToken)],
      ["semicolon in the prefix, no token", "/v1;/plugins/hello", {}],
      ["fragment, caller", "/v1/plugins/hello#admin", bearer(fx.callerToken)],
    ];
    for (const [name, path, headers] of tricks) {
      await t.attack(
        `path trick: DELETE ${name}`,
        () => refused(fx, [400, 401, 403, 404, 405], () => req(fx, path, { method: "DELETE", headers })),
      );
    }

    // Body and content-type confusion on install and policy routes, with the admin token: refused for the body.
    const admin = bearer(fx.adminToken);
    const putPlugin = (path: string, body: BodyInit, headers: Record<string, string> = {}) => () =>
      req(fx, path, { method: "PUT", headers: { ...admin, ...headers }, body });
    const bodies: [string, number[], () => Promise<Response>][] = [
      [
        "YAML sent as application/wasm",
        [400, 422],
        putPlugin("/v1/plugins/evil", echoManifest("evil"), { "content-type": "application/wasm" }),
      ],
      [
        "wasm sent as text/plain",
        [400, 415],
        putPlugin("/v1/plugins/evil", echo as BodyInit, { "content-type": "text/plain" }),
      ],
      [
        "wasm sent as JSON",
        [400, 415],
        putPlugin("/v1/plugins/evil", JSON.stringify({ wasm: btoa(String.fromCharCode(...echo)) }), {
          "content-type": "application/json",
        }),
      ],
      [
        "multipart type without a boundary",
        [400, 415],
        putPlugin("/v1/plugins/evil", "--x\r\n\r\n--x--", { "content-type": "multipart/form-data" }),
      ],
      [
        "multipart type over a bare module",
        [400],
        putPlugin("/v1/plugins/evil", echo as BodyInit, { "content-type": "multipart/form-data; boundary=zzz" }),
      ],
      [
        "form-urlencoded install",
        [400, 415],
        putPlugin("/v1/plugins/evil", new URLSearchParams({ wasm: "AGFzbQ==", manifest: echoManifest("evil") })),
      ],
      [
        "manifest naming another plugin",
        [400, 409, 422],
        putPlugin("/v1/plugins/evil", pluginForm(echo, echoManifest("hello"))),
      ],
      ["wasm field as text", [400], () => {
        const form = new FormData();
        form.append("wasm", "AGFzbQEAAAA=");
        form.append("manifest", echoManifest("evil"));
        return putPlugin("/v1/plugins/evil", form)();
      }],
      ["two wasm fields", [400], () => {
        const form = pluginForm(echo, echoManifest("evil"));
        form.append("wasm", new Blob([echo as Uint8Array<ArrayBuffer>]), "second.wasm");
        return putPlugin("/v1/plugins/evil", form)();
      }],
      ["manifest as a file of wasm bytes", [400], () => {
        const form = new FormData();
        form.append("wasm", new Blob([echo as Uint8Array<ArrayBuffer>]), "plugin.wasm");
        form.append("manifest", new Blob([echo as Uint8Array<ArrayBuffer>]), "plugin.yaml");
        return putPlugin("/v1/plugins/evil", form)();
      }],
      [
        "empty bare body",
        [400],
        putPlugin("/v1/plugins/evil", new Uint8Array(), { "content-type": "application/wasm" }),
      ],
      [
        "body over the server limit",
        [413],
        putPlugin("/v1/plugins/evil", new Uint8Array(1_048_577), { "content-type": "application/wasm" }),
      ],
      [
        "plugin name with a dot-dot",
        [400, 404],
        putPlugin("/v1/plugins/..%2Fhello", echo as BodyInit, { "content-type": "application/wasm" }),
      ],
      [
        "policy as JSON",
        [400],
        putPlugin("/v1/policies/ops", JSON.stringify({ text: FORBID_CLOCK }), { "content-type": "application/json" }),
      ],
      ["policy as multipart", [400], () => {
        const form = new FormData();
        form.append("policy", FORBID_CLOCK);
        return putPlugin("/v1/policies/ops", form)();
      }],
      [
        "policy as wasm bytes",
        [400],
        putPlugin("/v1/policies/ops", echo as BodyInit, { "content-type": "application/wasm" }),
      ],
      [
        "policy of invalid UTF-8",
        [400],
        putPlugin("/v1/policies/ops", new Uint8Array([...encoder.encode(FORBID_CLOCK), 0xff, 0xfe])),
      ],
      ["policy with a NUL", [400], putPlugin("/v1/policies/ops", `${FORBID_CLOCK}\u0000`)],
      [
        "policy that locks every client out",
        [400, 409, 422],
        putPlugin("/v1/policies/lockout", '@id("ops.lockout")\nforbid (principal, action, resource);\n'),
      ],
      ["policy overwriting api.cedar with nothing", [400, 409, 422], putPlugin("/v1/policies/api", "")],
      ["policy name escaping the dir", [400, 404], putPlugin("/v1/policies/..%2Fkeycard.yaml", FORBID_CLOCK)],
      ["hidden policy name", [400], putPlugin("/v1/policies/.hidden", FORBID_CLOCK)],
      [
        "deleting api.cedar (the admin's own permit)",
        [400, 409, 422],
        () => req(fx, "/v1/policies/api", { method: "DELETE", headers: admin }),
      ],
      ["authorize with a form body", [400, 415], () =>
        req(fx, "/v1/authorize", {
          method: "POST",
          headers: { ...admin, "content-type": "application/x-www-form-urlencoded" },
          body: "principal=x",
        })],
      [
        "authorize with a JSON array",
        [400],
        () => req(fx, "/v1/authorize", { method: "POST", headers: admin, body: `[${DRY_RUN}]` }),
      ],
      [
        "authorize with __proto__",
        [400],
        () =>
          req(fx, "/v1/authorize", {
            method: "POST",
            headers: admin,
            body: `{"__proto__":{"action":"x"},${DRY_RUN.slice(1)}`,
          }),
      ],
    ];
    for (const [name, statuses, request] of bodies) {
      await t.attack(`confused body: ${name}`, () => refused(fx, statuses, request));
    }

    await t.attack(
      "a flood of bad tokens from one address is throttled, and a valid token still passes there",
      async () => {
        const statuses: number[] = [];
        for (let i = 0; i < 40; i++) {
          const response = await req(fx, "/v1/policies", { headers: bearer(`guess-${i}`) }, "203.0.113.7");
          statuses.push(response.status);
          if (response.status === 429) assert.match(response.headers.get("retry-after") ?? "", /^[1-9]\d*$/);
          await response.body?.cancel();
        }
        assert.ok(statuses.every((s) => s === 401 || s === 429), statuses.join(","));
        assert.equal(statuses.at(-1), 429, `40 failures in a row were never throttled: ${statuses.join(",")}`);
        const ok = await req(fx, "/v1/policies", { headers: bearer(fx.adminToken) }, "203.0.113.7");
        assert.equal(ok.status, 200);
        await ok.body?.cancel();
        assert.equal(await state(fx), baseline);
      },
    );
    await t.attack("after all of it, the admin and the caller still work", async () => {
      assert.equal((await req(fx, "/v1/plugins/hello", { headers: admin })).status, 200);
      const greet = await req(fx, "/v1/plugins/hello/invoke/greet", {
        method: "POST",
        headers: bearer(fx.callerToken),
        body: "adversary",
      });
      assert.equal(greet.status, 200, await greet.clone().text());
      await greet.body?.cancel();
    });
  } finally {
    await fx.close();
  }
  t.report();
});
