// Every bad input, route by route, is a 4xx application/problem+json with a stable type, a detail that quotes the
// value, and nothing changed: the installed plugins and the policy set are the same before and after.
import assert from "node:assert/strict";
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
import { watFixture } from "./_test_utils.ts";

interface Case {
  /** What is sent, for the test step's name. */
  what: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: () => BodyInit | Promise<BodyInit>;
  status: number;
  type: string;
  /** Text the detail must contain (the offending value, quoted); a RegExp when there is no single value. */
  detail?: string | RegExp;
}

const encoder = new TextEncoder();
const INVALID_UTF8: Uint8Array<ArrayBuffer> = new Uint8Array([
  0x7b,
  0x22,
  0x61,
  0x22,
  0x3a,
  0x22,
  0xc3,
  0x28,
  0x22,
  0x7d,
]); // {"a":"\xc3("}

/** Names the registry's rule refuses, as sent in the path, and as the handler reads them. */
const BAD_NAMES: [sent: string, read: string][] = [
  [".hidden", ".hidden"],
  ["%2ehidden", ".hidden"],
  ["%252e%252e", "%2e%2e"],
  ["a%2Fb", "a/b"],
  ["a%5Cb", "a\\b"],
  ["a%20b", "a b"],
  ["a%00b", "a\u0000b"],
  ["a%0Ab", "a\nb"],
  ["%C3%A9", "é"],
  ["%ZZ", "%ZZ"],
  ["x".repeat(129), "x".repeat(80)],
];
const BAD_VERSIONS: [sent: string, read: string][] = [
  ["../../x", "../../x"],
  ["", ""],
  ["garbage", "garbage"],
  ["v1.0.0", "v1.0.0"],
  ["1.0", "1.0"],
  ["%2e%2e%2f1.0.0", "../1.0.0"],
];

function q(value: string): string {
  return JSON.stringify(value);
}

function multipartOf(fields: [string, string | Blob, string?][]): FormData {
  const form = new FormData();
  for (const [name, value, file] of fields) {
    if (typeof value === "string") form.append(name, value);
    else form.append(name, value, file);
  }
  return form;
}

/** A multipart upload cut 40 bytes short: inside the manifest's part, or inside the module's when it is alone. */
async function truncatedMultipart(wasm: Uint8Array, manifest?: string): Promise<{ type: string; bytes: Uint8Array }> {
  const request = new Request("http://x/", { method: "POST", body: pluginForm(wasm, manifest) });
  const bytes = new Uint8Array(await request.arrayBuffer());
  return { type: request.headers.get("content-type")!, bytes: bytes.slice(0, bytes.length - 40) };
}

function nested(depth: number): string {
  return `{"principal":{"type":"Plugin","id":"hello"},"action":"clock.now","resource":{"type":"Runtime","id":"clock"},` +
    `"context":${'{"a":'.repeat(depth - 1)}1${"}".repeat(depth - 1)}}`;
}

const ALIAS_BOMB = [
  "name: echo",
  "version: 1.0.0",
  'a: &a ["x","x","x","x","x","x","x","x","x","x"]',
  "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]",
  "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]",
  "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]",
  "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]",
  "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]",
  "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]",
  "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]",
  "config: { bomb: *h }",
  "",
].join("\n");

async function cases(): Promise<Case[]> {
  const echo = await watFixture("http_echo") as Uint8Array<ArrayBuffer>;
  const wasmBody = (wasm: Uint8Array) => () => wasm as BodyInit;
  const form = (manifest: string) => () => pluginForm(echo, manifest);
  const list: Case[] = [];

  // Plugin names, on every route that takes one.
  for (const [sent, read] of BAD_NAMES) {
    const detail = q(read).slice(0, -1); // a long name is quoted cut short
    list.push(
      {
        what: `GET name ${sent}`,
        method: "GET",
        path: `/v1/plugins/${sent}`,
        status: 400,
        type: "bad-request",
        detail,
      },
      {
        what: `DELETE name ${sent}`,
        method: "DELETE",
        path: `/v1/plugins/${sent}`,
        status: 400,
        type: "bad-request",
        detail,
      },
      {
        what: `PUT name ${sent}`,
        method: "PUT",
        path: `/v1/plugins/${sent}`,
        body: form(echoManifest("echo")),
        status: 400,
        type: "bad-request",
        detail,
      },
      {
        what: `invoke name ${sent}`,
        method: "POST",
        path: `/v1/plugins/${sent}/invoke/greet`,
        body: () => "x",
        status: 400,
        type: "bad-request",
        detail,
      },
    );
  }
  // ".." itself never reaches a handler: the URL parser resolves the dot segment first.
  for (const method of ["GET", "DELETE", "PUT"]) {
    list.push({ what: `${method} name %2e%2e`, method, path: "/v1/plugins/%2e%2e", status: 404, type: "not-found" });
  }

  // Versions, on GET and DELETE, and on PUT of a bare module.
  for (const [sent, read] of BAD_VERSIONS) {
    for (const method of ["GET", "DELETE"]) {
      list.push({
        what: `${method} ?version=${sent}`,
        method,
        path: `/v1/plugins/hello?version=${sent}`,
        status: 400,
        type: "bad-request",
        detail: `Version ${q(read)} of plugin "hello" is invalid`,
      });
    }
    list.push({
      what: `PUT application/wasm ?version=${sent}`,
      method: "PUT",
      path: `/v1/plugins/echo?version=${sent}`,
      headers: { "content-type": "application/wasm" },
      body: wasmBody(echo),
      status: 400,
      type: "bad-request",
      detail: `Version ${q(read)} of plugin "echo" is invalid`,
    });
  }
  for (const method of ["GET", "DELETE"]) {
    list.push({
      what: `${method} duplicate ?version=`,
      method,
      path: "/v1/plugins/hello?version=1.0.0&version=9.9.9",
      status: 400,
      type: "bad-request",
      detail: '"version" is given 2 times ("1.0.0", "9.9.9")',
    });
  }

  // Installs: media types, multipart shape, the module, the manifest.
  const truncated = await truncatedMultipart(echo, echoManifest("echo"));
  const truncatedModule = await truncatedMultipart(echo);
  const put = (what: string, rest: Omit<Case, "what" | "method" | "path"> & { path?: string }): Case => ({
    what: `PUT ${what}`,
    method: "PUT",
    path: "/v1/plugins/echo",
    ...rest,
  });
  list.push(
    put("text/plain", {
      headers: { "content-type": "text/plain" },
      body: () => "x",
      status: 415,
      type: "unsupported-media-type",
      detail: q("text/plain"),
    }),
    put("no body, no type", { status: 415, type: "unsupported-media-type", detail: '""' }),
    put("application/json", {
      headers: { "content-type": "application/json" },
      body: () => "{}",
      status: 415,
      type: "unsupported-media-type",
      detail: q("application/json"),
    }),
    put("empty application/wasm", {
      headers: { "content-type": "application/wasm" },
      body: () => new Uint8Array(),
      status: 400,
      type: "bad-request",
      detail: /empty \(0 bytes\)/,
    }),
    put("truncated multipart", {
      headers: { "content-type": truncated.type },
      body: () => truncated.bytes as BodyInit,
      status: 400,
      type: "bad-request",
      // Deno's parser drops a part the body cuts short: never a truncated module, at most a missing field.
      detail: /is missing/,
    }),
    put("multipart without boundary", {
      headers: { "content-type": "multipart/form-data" },
      body: () => "x",
      status: 415,
      type: "unsupported-media-type",
      detail: q("multipart/form-data"),
    }),
    put("multipart, wasm twice", {
      body: () =>
        multipartOf([["wasm", new Blob([echo]), "a.wasm"], ["wasm", new Blob([echo]), "b.wasm"], [
          "manifest",
          echoManifest("echo"),
        ]]),
      status: 400,
      type: "bad-request",
      detail: `${q("wasm")} is given 2 times`,
    }),
    put("multipart, wasm as text", {
      body: () => multipartOf([["wasm", "not a file"], ["manifest", echoManifest("echo")]]),
      status: 400,
      type: "bad-request",
      detail: /"wasm" \(a file\) is missing/,
    }),
    put("multipart, no manifest", {
      body: () => multipartOf([["wasm", new Blob([echo]), "a.wasm"]]),
      status: 400,
      type: "bad-request",
      detail: /"manifest" \(plugin.yaml text\) is missing/,
    }),
    put("multipart, empty manifest", {
      body: form(""),
      status: 400,
      type: "bad-request",
      detail: /"manifest" \(plugin.yaml text\) is empty/,
    }),
    put("multipart, manifest not UTF-8", {
      body: () => multipartOf([["wasm", new Blob([echo]), "a.wasm"], ["manifest", new Blob([INVALID_UTF8]), "m"]]),
      status: 400,
      type: "bad-request",
      detail: /"manifest" is not valid UTF-8/,
    }),
    put("not wasm", {
      body: () => pluginForm(encoder.encode("not wasm at all"), echoManifest("echo")),
      status: 422,
      type: "not-conformant",
      detail: /echo/,
    }),
    put("manifest that is a list", { body: form("- a\n- b\n"), status: 400, type: "invalid-manifest" }),
    put("manifest name a number", {
      body: form("name: 123\nversion: 1.0.0\n"),
      status: 400,
      type: "invalid-manifest",
      detail: '"name"',
    }),
    put("manifest naming another plugin", {
      body: form(echoManifest("other")),
      status: 400,
      type: "bad-request",
      detail: q("other"),
    }),
    put("manifest name .hidden", {
      path: "/v1/plugins/.hidden",
      body: form(echoManifest(".hidden")),
      status: 400,
      type: "bad-request",
      detail: q(".hidden"),
    }),
    put("limits.deadlineMs: fast", {
      body: form(`${echoManifest("echo")}limits: { deadlineMs: fast }\n`),
      status: 400,
      type: "invalid-manifest",
      detail: "fast",
    }),
    put("limits.deadlineMs: -1", {
      body: form(`${echoManifest("echo")}limits: { deadlineMs: -1 }\n`),
      status: 400,
      type: "invalid-manifest",
      detail: "-1",
    }),
    put("limits.memoryPages: 70000", {
      body: form(`${echoManifest("echo")}limits: { memoryPages: 70000 }\n`),
      status: 400,
      type: "invalid-manifest",
      detail: "70000",
    }),
    put("a YAML alias bomb", { body: form(ALIAS_BOMB), status: 400, type: "invalid-manifest", detail: /alias/i }),
    put("multipart with ?version=", {
      path: "/v1/plugins/echo?version=1.0.0",
      body: form(echoManifest("echo")),
      status: 400,
      type: "bad-request",
      detail: "?version=1.0.0",
    }),
  );

  // Dry runs: the body is bounded, checked for depth before parsing, and checked member by member.
  const authorize = (what: string, body: BodyInit | undefined, rest: Omit<Case, "what" | "method" | "path">) => ({
    what: `authorize ${what}`,
    method: "POST",
    path: "/v1/authorize",
    ...(body === undefined ? {} : { body: () => body }),
    ...rest,
  });
  const ok = {
    principal: { type: "Plugin", id: "hello" },
    action: "clock.now",
    resource: { type: "Runtime", id: "x" },
  };
  const json = (value: unknown) => JSON.stringify(value);
  list.push(
    authorize("nested 40 deep", nested(40), { status: 400, type: "bad-request", detail: "nests 40 levels" }),
    authorize("nested 20000 deep", "[".repeat(20_000) + "]".repeat(20_000), {
      status: 400,
      type: "bad-request",
      detail: "nests 20000 levels",
    }),
    authorize("over 64 KiB", json({ ...ok, context: { pad: "x".repeat(70_000) } }), {
      status: 413,
      type: "payload-too-large",
      detail: /exceeds 65536 bytes/,
    }),
    authorize("empty", undefined, { status: 400, type: "bad-request", detail: /empty/ }),
    authorize("not JSON", "{nope", { status: 400, type: "bad-request", detail: /not valid JSON/ }),
    authorize("invalid UTF-8", INVALID_UTF8 as BodyInit, { status: 400, type: "bad-request", detail: /UTF-8/ }),
    authorize("an array", "[]", { status: 400, type: "bad-request", detail: "an array" }),
    authorize("a number", "42", { status: 400, type: "bad-request", detail: q("42") }),
    authorize("null", "null", { status: 400, type: "bad-request", detail: q("null") }),
    authorize("form-encoded", "a=b", {
      headers: { "content-type": "application/x-www-form-urlencoded" },
      status: 415,
      type: "unsupported-media-type",
      detail: q("application/x-www-form-urlencoded"),
    }),
    authorize("multipart", json(ok), {
      headers: { "content-type": "multipart/form-data; boundary=x" },
      status: 415,
      type: "unsupported-media-type",
      detail: "multipart/form-data",
    }),
    authorize("action a number", json({ ...ok, action: 5 }), { status: 400, type: "bad-request", detail: q("5") }),
    authorize("principal id a number", json({ ...ok, principal: { type: "Plugin", id: 7 } }), {
      status: 400,
      type: "bad-request",
      detail: `"principal.id" must be a non-empty string, got "7"`,
    }),
    authorize("resource a string", json({ ...ok, resource: "clock" }), {
      status: 400,
      type: "bad-request",
      detail: q("clock"),
    }),
    authorize("attrs a list", json({ ...ok, principal: { type: "Plugin", id: "a", attrs: [1] } }), {
      status: 400,
      type: "bad-request",
      detail: `"principal.attrs" must be an object`,
    }),
    authorize("parents not a list", json({ ...ok, resource: { type: "Dir", id: "/", parents: "Dir::/" } }), {
      status: 400,
      type: "bad-request",
      detail: q("Dir::/"),
    }),
    authorize("a parent without id", json({ ...ok, resource: { type: "Dir", id: "/", parents: [{ type: "Dir" }] } }), {
      status: 400,
      type: "bad-request",
      detail: `"resource.parents[0].id"`,
    }),
    authorize("context a string", json({ ...ok, context: "x" }), { status: 400, type: "bad-request", detail: q("x") }),
    authorize("an unknown member", json({ ...ok, entities: [] }), {
      status: 400,
      type: "bad-request",
      detail: q("entities"),
    }),
  );

  // Policies: names, encoding, and Cedar that would crash a parser.
  const policy = (
    what: string,
    name: string,
    body: BodyInit | undefined,
    rest: Omit<Case, "what" | "method" | "path">,
  ) => ({
    what: `PUT policy ${what}`,
    method: "PUT",
    path: `/v1/policies/${name}`,
    ...(body === undefined ? {} : { body: () => body }),
    ...rest,
  });
  const deepSet = `permit (principal, action, resource) when { ${"[".repeat(2000)}1${"]".repeat(2000)}.isEmpty() };\n`;
  const deep = `permit (principal, action, resource) when { ${"(".repeat(2000)}true${")".repeat(2000)} };\n`;
  list.push(
    policy("name .hidden", ".hidden", "", { status: 400, type: "bad-request", detail: q(".hidden") }),
    policy("name a/b", "a%2Fb", "", { status: 400, type: "bad-request", detail: q("a/b") }),
    policy("name too long", "p".repeat(200), "", { status: 400, type: "bad-request", detail: "pppp" }),
    policy("not UTF-8", "ops", INVALID_UTF8 as BodyInit, { status: 400, type: "bad-request", detail: /UTF-8/ }),
    policy("not Cedar", "ops", "permit everything", { status: 400, type: "invalid-policy", detail: /ops\.cedar/ }),
    policy("2000 nested parentheses", "ops", deep, { status: 400, type: "invalid-policy", detail: "nests 2001" }),
    policy("2000 nested sets", "ops", deepSet, { status: 400, type: "invalid-policy", detail: "nests 2001" }),
    {
      what: "DELETE policy .hidden",
      method: "DELETE",
      path: "/v1/policies/.hidden",
      status: 400,
      type: "bad-request",
      detail: q(".hidden"),
    },
  );

  // Conformance and audit.
  list.push(
    {
      what: "conformance text/plain",
      method: "POST",
      path: "/v1/conformance",
      headers: { "content-type": "text/plain" },
      body: () => "x",
      status: 415,
      type: "unsupported-media-type",
      detail: q("text/plain"),
    },
    {
      what: "conformance empty application/wasm",
      method: "POST",
      path: "/v1/conformance",
      headers: { "content-type": "application/wasm" },
      body: () => new Uint8Array(),
      status: 400,
      type: "bad-request",
      detail: /empty/,
    },
    {
      what: "conformance truncated multipart",
      method: "POST",
      path: "/v1/conformance",
      headers: { "content-type": truncatedModule.type },
      body: () => truncatedModule.bytes as BodyInit,
      status: 400,
      type: "bad-request",
      detail: /"wasm" \(a file\) is missing/,
    },
    {
      what: "audit duplicate limit",
      method: "GET",
      path: "/v1/audit?limit=1&limit=2",
      status: 400,
      type: "bad-request",
      detail: '"limit" is given 2 times',
    },
    {
      what: "audit limit=1e3",
      method: "GET",
      path: "/v1/audit?limit=1e3",
      status: 400,
      type: "bad-request",
      detail: q("1e3"),
    },
  );
  return list;
}

/** What a refused request must leave unchanged: every plugin version with its hash, and the policy set. */
async function state(fx: GatewayFixture): Promise<string> {
  const auth = { headers: bearer(fx.adminToken) };
  const plugins = await (await fx.request("/v1/plugins", auth)).json() as {
    plugins: { name: string; versions: string[]; sha256: string }[];
  };
  const policies = await (await fx.request("/v1/policies", auth)).json() as { version: number; sources: unknown[] };
  return JSON.stringify({
    plugins: plugins.plugins.map((p) => `${p.name}@${p.versions.join(",")}:${p.sha256}`),
    policies: `version ${policies.version}, sources ${sha256Hex(JSON.stringify(policies.sources)).slice(0, 16)}`,
  });
}

Deno.test("every route answers bad input with a 4xx problem that quotes it, and changes nothing", async (t) => {
  const fx = await startGateway();
  try {
    for (const c of await cases()) {
      await t.step(c.what, async () => {
        const before = await state(fx);
        const body = await c.body?.();
        const response = await within(
          10_000,
          c.what,
          fx.request(c.path, {
            method: c.method,
            headers: { ...bearer(fx.adminToken), ...c.headers },
            ...(body === undefined ? {} : { body }),
          }),
        );
        const problem = await expectProblem(response, c.status, c.type);
        const detail = String(problem.detail);
        if (typeof c.detail === "string") assert.ok(detail.includes(c.detail), `${q(c.detail)} in ${q(detail)}`);
        else if (c.detail) assert.match(detail, c.detail);
        assert.equal(await state(fx), before);
      });
    }
    // The gateway still serves: a dry run at the depth limit, and a plugin call.
    const atLimit = await fx.request("/v1/authorize", {
      method: "POST",
      headers: bearer(fx.adminToken),
      body: nested(32),
    });
    assert.equal(atLimit.status, 200, await atLimit.clone().text());
    const greet = await fx.request("/v1/plugins/hello/invoke/greet", {
      method: "POST",
      headers: bearer(fx.callerToken),
      body: "still",
    });
    assert.equal(await greet.text(), "Hello, still!");
    // A policy nested to the limit is parsed, refused or taken, and leaves the engine deciding.
    const limit = `permit (principal, action, resource) when { ${"(".repeat(31)}true${")".repeat(31)} };\n`;
    const taken = await fx.request("/v1/policies/nested", {
      method: "PUT",
      headers: bearer(fx.adminToken),
      body: limit,
    });
    assert.ok(taken.status === 200 || taken.status === 400, await taken.clone().text());
    await taken.body?.cancel();
    assert.equal((await fx.request("/v1/policies", { headers: bearer(fx.adminToken) })).status, 200);
  } finally {
    await fx.close();
  }
});
