// Bad input through the shipped commands: for each API route, odd names, bad versions, bad manifests and modules,
// invalid Cedar, malformed, deep and oversized JSON, oversized bodies, no token and the wrong role. Each gets a 4xx
// application/problem+json, and the state (plugins, policies, policy files) is the same before and after.
import assert from "node:assert/strict";
import { join } from "node:path";
import { watFixture } from "../_test_utils.ts";
import {
  bearer,
  echoManifest,
  expectProblem,
  expectStatus,
  type Keycard,
  listPlugins,
  makeSite,
  pluginForm,
  rawRequest,
  startKeycard,
} from "./_server.ts";

/** Everything a refused request must leave alone. */
async function state(kc: Keycard, policiesDir: string): Promise<unknown> {
  const policies = JSON.parse(
    await expectStatus(kc, await kc.fetch("/v1/policies", { headers: bearer(kc.adminToken) }), 200),
  );
  const files: string[] = [];
  for await (const entry of Deno.readDir(policiesDir)) files.push(entry.name);
  return {
    plugins: await listPlugins(kc),
    policyVersion: policies.version,
    sources: policies.sources.map((s: { name: string; text: string }) => `${s.name}:${s.text.length}`).sort(),
    files: files.sort(),
  };
}

interface Case {
  name: string;
  path: string;
  /** The request, through fetch(). */
  init?: () => Promise<RequestInit> | RequestInit;
  /** The request over a raw socket, for targets that fetch() would normalize (`%2e%2e`). */
  raw?: { method: string; headers?: Record<string, string>; body?: Uint8Array | string };
  status: number;
  type?: string;
}

const MAX_BODY = 1048576;

Deno.test("deno task start refuses bad input with a 4xx problem and changes nothing", async (t) => {
  await using site = await makeSite({ maxBodyBytes: MAX_BODY });
  await using kc = await startKeycard(site);
  const admin = bearer(kc.adminToken);
  const caller = bearer(site.callerToken);
  const viewer = bearer(site.viewerToken);
  const echo = await watFixture("http_echo");
  const form = (manifest?: string, wasm: Uint8Array = echo) => pluginForm(wasm, manifest);
  const wasmBody = (bytes: Uint8Array, headers: Record<string, string> = admin): RequestInit => ({
    method: "PUT",
    headers: { ...headers, "content-type": "application/wasm" },
    body: bytes as Uint8Array<ArrayBuffer>,
  });
  const json = (body: string, headers: Record<string, string> = admin): RequestInit => ({
    method: "POST",
    headers: { ...headers, "content-type": "application/json" },
    body,
  });
  const authorizeRequest = (context: unknown) =>
    JSON.stringify({
      principal: { type: "Plugin", id: "stamp" },
      action: "clock.now",
      resource: { type: "Runtime", id: "clock" },
      context,
    });

  const groups: Record<string, Case[]> = {
    "odd plugin names on every /v1/plugins route": [
      { name: "GET %2e%2e", path: "/v1/plugins/%2e%2e", raw: { method: "GET", headers: admin }, status: 400 },
      { name: "GET %2E%2E", path: "/v1/plugins/%2E%2E", raw: { method: "GET", headers: admin }, status: 400 },
      { name: "GET .hidden", path: "/v1/plugins/.hidden", init: () => ({ headers: admin }), status: 400 },
      {
        name: "PUT %2e%2e (a raw module)",
        path: "/v1/plugins/%2e%2e",
        raw: { method: "PUT", headers: { ...admin, "content-type": "application/wasm" }, body: echo },
        status: 400,
      },
      {
        name: "PUT .hidden (a valid upload)",
        path: "/v1/plugins/.hidden",
        init: () => ({ method: "PUT", headers: admin, body: form(echoManifest(".hidden")) }),
        status: 400,
      },
      { name: "PUT a%2Fb raw", path: "/v1/plugins/a%2Fb", init: () => wasmBody(echo), status: 400 },
      {
        name: "PUT a name of 300 letters",
        path: `/v1/plugins/${"a".repeat(300)}`,
        init: () => wasmBody(echo),
        status: 400,
      },
      {
        name: "DELETE .hidden",
        path: "/v1/plugins/.hidden",
        init: () => ({ method: "DELETE", headers: admin }),
        status: 400,
      },
      { name: "DELETE %2e%2e", path: "/v1/plugins/%2e%2e", raw: { method: "DELETE", headers: admin }, status: 400 },
      {
        name: "invoke %2e%2e",
        path: "/v1/plugins/%2e%2e/invoke/echo",
        raw: { method: "POST", headers: caller, body: "x" },
        status: 400,
      },
    ],
    "bad versions": [
      {
        name: "GET ?version=garbage",
        path: "/v1/plugins/hello?version=garbage",
        init: () => ({ headers: admin }),
        status: 400,
      },
      {
        name: "DELETE ?version=garbage",
        path: "/v1/plugins/hello?version=garbage",
        init: () => ({ method: "DELETE", headers: admin }),
        status: 400,
      },
      {
        name: "PUT raw ?version=garbage",
        path: "/v1/plugins/fresh?version=garbage",
        init: () => wasmBody(echo),
        status: 400,
      },
      {
        name: "PUT raw ?version= (empty)",
        path: "/v1/plugins/fresh?version=",
        init: () => wasmBody(echo),
        status: 400,
      },
      {
        name: "PUT raw ?version twice",
        path: "/v1/plugins/fresh?version=1.0.0&version=2.0.0",
        init: () => wasmBody(echo),
        status: 400,
      },
      {
        name: "GET ?version= of a version not installed",
        path: "/v1/plugins/hello?version=9.9.9",
        init: () => ({ headers: admin }),
        status: 404,
        type: "not-found",
      },
    ],
    "bad manifests and modules on PUT /v1/plugins/{name}": [
      {
        name: "limits: { deadlineMs: fast }",
        path: "/v1/plugins/fresh",
        init: () => ({
          method: "PUT",
          headers: admin,
          body: form(`${echoManifest("fresh")}limits: { deadlineMs: fast }\n`),
        }),
        status: 400,
        type: "invalid-manifest",
      },
      {
        name: "YAML that does not parse",
        path: "/v1/plugins/fresh",
        init: () => ({ method: "PUT", headers: admin, body: form("name: fresh\nexports:\n  - name: [unclosed\n") }),
        status: 400,
        type: "invalid-manifest",
      },
      {
        name: "a grant that is not one",
        path: "/v1/plugins/fresh",
        init: () => ({
          method: "PUT",
          headers: admin,
          body: form(`${echoManifest("fresh")}grants:\n  - fs.read: {}\n`),
        }),
        status: 400,
        type: "invalid-manifest",
      },
      {
        name: "an empty manifest field",
        path: "/v1/plugins/fresh",
        init: () => ({ method: "PUT", headers: admin, body: form("") }),
        status: 400,
      },
      {
        name: "multipart without the wasm field",
        path: "/v1/plugins/fresh",
        init: () => {
          const body = new FormData();
          body.append("manifest", echoManifest("fresh"));
          return { method: "PUT", headers: admin, body };
        },
        status: 400,
      },
      {
        name: "bytes that are not wasm",
        path: "/v1/plugins/fresh",
        init: () => wasmBody(new TextEncoder().encode("not wasm at all")),
        status: 422, // conformance runs first: the report names module.valid
        type: "not-conformant",
      },
      { name: "an empty module", path: "/v1/plugins/fresh", init: () => wasmBody(new Uint8Array()), status: 400 },
      {
        name: "a text/plain body",
        path: "/v1/plugins/fresh",
        init: () => ({ method: "PUT", headers: { ...admin, "content-type": "text/plain" }, body: "hello" }),
        status: 415,
        type: "unsupported-media-type",
      },
      {
        name: "a body over server.maxBodyBytes",
        path: "/v1/plugins/fresh",
        init: () => wasmBody(new Uint8Array(MAX_BODY + 1024)),
        status: 413,
        type: "payload-too-large",
      },
      {
        name: "a manifest that names another plugin",
        path: "/v1/plugins/fresh",
        init: () => ({ method: "PUT", headers: admin, body: form(echoManifest("other")) }),
        status: 400,
      },
    ],
    "POST /v1/conformance": [
      {
        name: "a bad manifest",
        path: "/v1/conformance",
        init: () => ({ method: "POST", headers: admin, body: form("name: [x\n") }),
        status: 400,
        type: "invalid-manifest",
      },
      {
        name: "a text/plain body",
        path: "/v1/conformance",
        init: () => ({ method: "POST", headers: { ...admin, "content-type": "text/plain" }, body: "x" }),
        status: 415,
        type: "unsupported-media-type",
      },
      {
        name: "an oversized body",
        path: "/v1/conformance",
        init: () => ({ ...wasmBody(new Uint8Array(MAX_BODY + 1024)), method: "POST" }),
        status: 413,
        type: "payload-too-large",
      },
    ],
    "policies: invalid Cedar, odd names": [
      {
        name: "Cedar that does not parse",
        path: "/v1/policies/broken",
        init: () => ({ method: "PUT", headers: admin, body: "permit (principal, action, resource) when { 1 + };\n" }),
        status: 400,
        type: "invalid-policy",
      },
      {
        name: "Cedar that does not validate against the schema",
        path: "/v1/policies/broken",
        init: () => ({
          method: "PUT",
          headers: admin,
          body: 'permit (principal == Plugin::"x", action == Action::"no.such.action", resource);\n',
        }),
        status: 400,
        type: "invalid-policy",
      },
      {
        name: "deeply nested Cedar (cedar-wasm's stack)",
        path: "/v1/policies/deep",
        init: () => ({
          method: "PUT",
          headers: admin,
          body: `permit (principal, action, resource) when { ${"(".repeat(300)}true${")".repeat(300)} };\n`,
        }),
        status: 400,
        type: "invalid-policy",
      },
      {
        name: "text that is not UTF-8",
        path: "/v1/policies/binary",
        init: () => ({ method: "PUT", headers: admin, body: new Uint8Array([0xff, 0xfe, 0x00, 0xc3]) }),
        status: 400,
      },
      {
        name: "PUT .hidden",
        path: "/v1/policies/.hidden",
        init: () => ({ method: "PUT", headers: admin, body: "// nothing\n" }),
        status: 400,
      },
      {
        name: "PUT %2e%2e",
        path: "/v1/policies/%2e%2e",
        raw: { method: "PUT", headers: admin, body: "// nothing\n" },
        status: 400,
      },
      {
        name: "PUT ..%2Fescape",
        path: "/v1/policies/..%2Fescape",
        init: () => ({ method: "PUT", headers: admin, body: "// nothing\n" }),
        status: 400,
      },
      {
        name: "DELETE .hidden",
        path: "/v1/policies/.hidden",
        init: () => ({ method: "DELETE", headers: admin }),
        status: 400,
      },
      {
        name: "DELETE a policy that does not exist",
        path: "/v1/policies/nothing-here",
        init: () => ({ method: "DELETE", headers: admin }),
        status: 404,
        type: "not-found",
      },
      {
        name: "a policy body over server.maxBodyBytes",
        path: "/v1/policies/huge",
        init: () => ({ method: "PUT", headers: admin, body: `// ${"x".repeat(MAX_BODY)}\n` }),
        status: 413,
        type: "payload-too-large",
      },
    ],
    "POST /v1/authorize: malformed, deep and oversized JSON": [
      { name: "malformed JSON", path: "/v1/authorize", init: () => json("{not json"), status: 400 },
      { name: "an empty body", path: "/v1/authorize", init: () => json(""), status: 400 },
      { name: "an array", path: "/v1/authorize", init: () => json("[]"), status: 400 },
      {
        name: "JSON nested 500 deep",
        path: "/v1/authorize",
        init: () => json(authorizeRequest(JSON.parse(`${'{"a":'.repeat(500)}1${"}".repeat(500)}`))),
        status: 400,
      },
      {
        name: "JSON nested 30000 deep, under the size limit",
        path: "/v1/authorize",
        init: () => json(`${"[".repeat(30_000)}${"]".repeat(30_000)}`),
        status: 400,
      },
      {
        name: "an unknown member",
        path: "/v1/authorize",
        init: () =>
          json(
            '{"principal":{"type":"Plugin","id":"x"},"action":"clock.now","resource":{"type":"Runtime","id":"clock"},"extra":1}',
          ),
        status: 400,
      },
      {
        name: "no action",
        path: "/v1/authorize",
        init: () => json('{"principal":{"type":"Plugin","id":"x"},"resource":{"type":"Runtime","id":"clock"}}'),
        status: 400,
      },
      {
        name: "a principal that is not an entity",
        path: "/v1/authorize",
        init: () => json('{"principal":"Plugin::x","action":"clock.now","resource":{"type":"Runtime","id":"clock"}}'),
        status: 400,
      },
      {
        name: "a body over 64 KiB",
        path: "/v1/authorize",
        init: () => json(authorizeRequest({ pad: "x".repeat(70_000) })),
        status: 413,
        type: "payload-too-large",
      },
      {
        name: "an XML body",
        path: "/v1/authorize",
        init: () => ({ method: "POST", headers: { ...admin, "content-type": "application/xml" }, body: "<a/>" }),
        status: 415,
        type: "unsupported-media-type",
      },
    ],
    "no token (401), a bad token (401), the wrong role (403)": [
      {
        name: "PUT a plugin without a token",
        path: "/v1/plugins/fresh",
        init: () => ({ method: "PUT", body: form(echoManifest("fresh")) }),
        status: 401,
        type: "unauthenticated",
      },
      {
        name: "PUT a plugin with a token nobody has",
        path: "/v1/plugins/fresh",
        init: () => ({ method: "PUT", headers: bearer("not-a-real-token-at-all"), body: form(echoManifest("fresh")) }),
        status: 401,
        type: "unauthenticated",
      },
      {
        name: "PUT a plugin as a caller",
        path: "/v1/plugins/fresh",
        init: () => ({ method: "PUT", headers: caller, body: form(echoManifest("fresh")) }),
        status: 403,
        type: "forbidden",
      },
      {
        name: "DELETE a plugin as a caller",
        path: "/v1/plugins/hello",
        init: () => ({ method: "DELETE", headers: caller }),
        status: 403,
        type: "forbidden",
      },
      {
        name: "DELETE a plugin without a token",
        path: "/v1/plugins/hello",
        init: () => ({ method: "DELETE" }),
        status: 401,
        type: "unauthenticated",
      },
      {
        name: "invoke as a viewer",
        path: "/v1/plugins/hello/invoke/greet",
        init: () => ({ method: "POST", headers: viewer, body: "x" }),
        status: 403,
        type: "forbidden",
      },
      {
        name: "invoke without a token",
        path: "/v1/plugins/hello/invoke/greet",
        init: () => ({ method: "POST", body: "x" }),
        status: 401,
        type: "unauthenticated",
      },
      {
        name: "PUT a policy as a caller",
        path: "/v1/policies/sneaky",
        init: () => ({ method: "PUT", headers: caller, body: "permit (principal, action, resource);\n" }),
        status: 403,
        type: "forbidden",
      },
      {
        name: "PUT a policy without a token",
        path: "/v1/policies/sneaky",
        init: () => ({ method: "PUT", body: "permit (principal, action, resource);\n" }),
        status: 401,
        type: "unauthenticated",
      },
      {
        name: "DELETE a policy as a caller",
        path: "/v1/policies/base",
        init: () => ({ method: "DELETE", headers: caller }),
        status: 403,
        type: "forbidden",
      },
      {
        name: "GET /v1/policies as a caller",
        path: "/v1/policies",
        init: () => ({ headers: caller }),
        status: 403,
        type: "forbidden",
      },
      {
        name: "POST /v1/authorize as a caller",
        path: "/v1/authorize",
        init: () => json(authorizeRequest({}), caller),
        status: 403,
        type: "forbidden",
      },
      {
        name: "POST /v1/conformance as a caller",
        path: "/v1/conformance",
        init: () => ({ method: "POST", headers: caller, body: form(echoManifest("fresh")) }),
        status: 403,
        type: "forbidden",
      },
      {
        name: "GET /v1/plugins as a viewer",
        path: "/v1/plugins",
        init: () => ({ headers: viewer }),
        status: 403,
        type: "forbidden",
      },
    ],
  };

  for (const [group, cases] of Object.entries(groups)) {
    await t.step(group, async () => {
      const failures: string[] = [];
      for (const c of cases) {
        try {
          const before = await state(kc, site.policiesDir);
          const response = c.raw
            ? await rawRequest(kc, c.raw.method, c.path, c.raw)
            : await kc.fetch(c.path, await c.init!());
          const problem = await expectProblem(response, c.status, c.type);
          assert.ok((problem.detail as string).length > 0);
          assert.deepEqual(await state(kc, site.policiesDir), before, "the state changed");
        } catch (error) {
          failures.push(`${c.name} (${c.path}): ${(error as Error).message.split("\n").slice(0, 6).join(" ")}`);
        }
      }
      assert.deepEqual(failures, [], `\n${failures.join("\n")}`);
    });
  }

  await t.step(
    "nothing was half-installed: no `fresh`, no stray policy files, and the server still serves",
    async () => {
      await expectProblem(await kc.fetch("/v1/plugins/fresh", { headers: admin }), 404, "not-found");
      for await (const entry of Deno.readDir(site.policiesDir)) {
        assert.ok(["api.cedar", "base.cedar", "keycard.cedarschema"].includes(entry.name), entry.name);
      }
      for await (const entry of Deno.readDir(join(site.dataDir))) assert.notEqual(entry.name, "..");
      const response = await kc.fetch("/v1/plugins/hello/invoke/greet", {
        method: "POST",
        headers: caller,
        body: "ok",
      });
      assert.equal(await expectStatus(kc, response, 200), "Hello, ok!");
    },
  );
});
