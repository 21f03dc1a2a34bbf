// The standing adversarial suite, area "console": attacks on the operator console (/console) and on
// POST /v1/policies/explain, in-process against the fixture gateway (real plugins, real Cedar). The attackers: no
// token; a viewer token (granted nothing) and a caller token (plugin.call only); a hostile plugin an admin installed,
// whose output, export names, description, errors and audit resources the console renders; a page on another origin in
// the same browser (cross-site posts, a planted cookie). What must hold for each: the expected status (a 4xx, never a
// 5xx), no markup of the attacker's reaching a page unescaped, the console's headers on every response, and the state
// unchanged (installed plugins, the policy set and the policy files on disk, compared with the baseline).
import assert from "node:assert/strict";
import { join } from "node:path";
import type { AuditLog } from "../../src/audit/mod.ts";
import { CONSOLE_CSP } from "../../src/console/console_app.tsx";
import { loadConfig } from "../../src/config/mod.ts";
import { checkCsrf, SessionStore } from "../../src/console/mod.ts";
import { createGateway } from "../../src/gateway/mod.ts";
import {
  BASE,
  bearer,
  echoManifest,
  type GatewayFixture,
  pluginForm,
  sha256Hex,
  startGateway,
  within,
} from "../_gateway_fixture.ts";
import { compileWat } from "../_wat.ts";
import { watFixture } from "../_test_utils.ts";
import { tally } from "./_tally.ts";

const ORIGIN = BASE;
const XSS = `"'><script>alert(1)</script><img src=x onerror=alert(2)>`;
/** What must never appear in a page: the attacker's markup, unescaped. */
const RAW = /<script>alert|<img src=x|<img\/src=x|<svg onload|onerror=alert\(\d\)>/;

// A hostile plugin: its output is its input, its error is its input, one export is named like markup, and its manifest
// description is markup. Operator-seeded (an admin installed it), so it loads without conformance.
const EVIL_EXPORT = `"><img/src=x/onerror=alert(3)>`;
const EVIL_WAT = `(module
  (import "extism:host/env" "input_offset" (func $input_offset (result i64)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "error_set" (func $error_set (param i64)))
  (memory (export "memory") 1)
  (func $echo (result i32) (local $in i64)
    (local.set $in (call $input_offset))
    (call $output_set (local.get $in) (call $length (local.get $in)))
    (i32.const 0))
  (func $fail (result i32)
    (call $error_set (call $input_offset))
    (i32.const 1))
  (export "echo" (func $echo))
  (export "fail" (func $fail))
  (export "page" (func $echo))
  (export ${JSON.stringify(EVIL_EXPORT)} (func $echo)))`;
const EVIL_MANIFEST = [
  "name: evil",
  "version: 1.0.0",
  `description: ${JSON.stringify(`javascript:alert(4) ${XSS}`)}`,
  "exports:",
  "  - name: echo",
  "  - name: fail",
  '  - { name: page, contentType: "text/html; charset=utf-8" }',
  `  - name: ${JSON.stringify(EVIL_EXPORT)}`,
  "capabilities: []",
  "",
].join("\n");

/** A signed-in browser: its cookie pair and CSRF token. */
interface Browser {
  cookie: string;
  csrf: string;
  id: string;
}

let addresses = 0;

/** One request from an address of its own (failed sign-ins are throttled per address; each attack meets its check). */
function go(fx: GatewayFixture, path: string, init: RequestInit = {}): Promise<Response> {
  const n = ++addresses;
  return fx.requestFrom(`198.18.${n >> 8}.${n & 255}`, path, init);
}

async function signIn(fx: GatewayFixture, token: string, cookie?: string): Promise<Browser> {
  const response = await go(fx, "/console/session", {
    method: "POST",
    headers: { origin: ORIGIN, ...(cookie ? { cookie } : {}) },
    body: new URLSearchParams({ token }),
  });
  await response.body?.cancel();
  assert.equal(response.status, 303, "signed in");
  const pair = (response.headers.get("set-cookie") ?? "").split(";")[0]!;
  const page = await (await go(fx, "/console/plugins", { headers: { cookie: pair } })).text();
  const csrf = /<meta name="csrf-token" content="([^"]+)"/.exec(page)?.[1];
  assert.ok(csrf, "the page carries the CSRF token");
  return { cookie: pair, csrf, id: pair.split("=")[1]! };
}

/** A same-origin form post of a signed-in browser, with its CSRF token unless `fields._csrf` says otherwise. */
function post(
  fx: GatewayFixture,
  path: string,
  browser: Browser,
  fields: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<Response> {
  return go(fx, path, {
    method: "POST",
    headers: { origin: ORIGIN, cookie: browser.cookie, ...headers },
    body: new URLSearchParams({ _csrf: browser.csrf, ...fields }),
  });
}

function get(fx: GatewayFixture, path: string, browser?: Browser, headers: Record<string, string> = {}) {
  return go(fx, path, { headers: { ...(browser ? { cookie: browser.cookie } : {}), ...headers } });
}

/** What an attack must leave as it found it: installed plugins, the policy set, the policy files on disk. */
async function state(fx: GatewayFixture): Promise<string> {
  const plugins = await fx.gateway.services.plugins.list();
  const files: string[] = [];
  for await (const entry of Deno.readDir(join(fx.dir, "policies"))) {
    files.push(`${entry.name}:${sha256Hex(await Deno.readFile(join(fx.dir, "policies", entry.name)))}`);
  }
  return JSON.stringify({
    plugins: plugins.map((p) => `${p.name}@${p.version}#${p.sha256 ?? ""}:${p.state}`).sort(),
    version: fx.gateway.services.policies.version(),
    sources: fx.gateway.services.policies.sources().map((s) => `${s.kind}:${s.name}:${sha256Hex(s.text)}`).sort(),
    files: files.sort(),
  });
}

let baseline = "";

/** The response's status must be one of `statuses`; the console's headers are on it; no raw markup; state unchanged. */
async function expect(
  fx: GatewayFixture,
  response: Response,
  statuses: number[],
  what: string,
): Promise<string> {
  const text = await response.text();
  assert.ok(
    statuses.includes(response.status),
    `${what}: got ${response.status}, want ${statuses}: ${text.slice(0, 300)}`,
  );
  headersHold(response, what);
  // Markup in a JSON answer (nosniff, never rendered) is data; in a page it would run.
  if ((response.headers.get("content-type") ?? "").startsWith("text/html")) {
    assert.doesNotMatch(text, RAW, `${what}: raw markup in the page`);
  }
  assert.equal(await state(fx), baseline, `${what}: the state changed`);
  return text;
}

function headersHold(response: Response, what: string): void {
  assert.equal(response.headers.get("content-security-policy"), CONSOLE_CSP, `${what}: CSP`);
  assert.equal(response.headers.get("x-content-type-options"), "nosniff", `${what}: nosniff`);
  assert.equal(response.headers.get("x-frame-options"), "DENY", `${what}: x-frame-options`);
}

function upload(browser: Browser, wasm: Uint8Array, manifest: string, extra: Record<string, string> = {}): FormData {
  const form = pluginForm(wasm, manifest);
  form.append("_csrf", browser.csrf);
  for (const [key, value] of Object.entries(extra)) form.append(key, value);
  return form;
}

/** Reads an SSE body until `pattern` shows, bounded. */
/**
 * Opens a live tail as a browser with `cookie` would, checks it answers 200 (and `check`), and reads up to its
 * `ready` event; dispose aborts it.
 */
async function openTail(
  fx: GatewayFixture,
  path: string,
  cookie: string,
  check: (response: Response) => void = () => {},
): Promise<{ reader: ReadableStreamDefaultReader<string> } & AsyncDisposable> {
  const controller = new AbortController();
  const response = await go(fx, path, { headers: { cookie }, signal: controller.signal });
  assert.equal(response.status, 200);
  check(response);
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  const close = async () => {
    controller.abort();
    await reader.cancel().catch(() => {});
  };
  try {
    await readUntil(reader, /event: ready/);
  } catch (error) {
    await close();
    throw error;
  }
  return { reader, [Symbol.asyncDispose]: close };
}

/** Reads a stream until it ends (false) or delivers a decision (true), bounded. */
async function deliversBeforeEnd(reader: ReadableStreamDefaultReader<string>, ms = 10_000): Promise<boolean> {
  return await within(
    ms,
    "the stream ends or delivers",
    (async () => {
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return false;
        buffer += value;
        if (/event: decision/.test(buffer)) return true;
      }
    })(),
  );
}

async function readUntil(reader: ReadableStreamDefaultReader<string>, pattern: RegExp, ms = 10_000): Promise<string> {
  let buffer = "";
  await within(
    ms,
    `SSE ${pattern}`,
    (async () => {
      while (!pattern.test(buffer)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`Stream ended before ${pattern}: ${buffer.slice(0, 300)}`);
        buffer += value;
      }
    })(),
  );
  return buffer;
}

function hostileEvent(fields: Partial<Parameters<AuditLog["record"]>[0]>): Parameters<AuditLog["record"]>[0] {
  return {
    time: new Date().toISOString(),
    callId: crypto.randomUUID(),
    plugin: "evil",
    version: "1.0.0",
    action: "fs.read",
    resource: 'File::"/x"',
    decision: "deny",
    policies: [],
    errors: [],
    caller: "app",
    durationUs: 1,
    ...fields,
  };
}

Deno.test("adversarial console: sessions, CSRF and origin, Cedar per action, injection, bounds, explain", async () => {
  const t = tally("console");
  const evilWasm = await compileWat(EVIL_WAT, "evil.wat");
  const echo = await watFixture("http_echo");
  const brokenWasm = await compileWat(
    `(module (import "extism:host/env" ${
      JSON.stringify(XSS)
    } (func)) (func (export "run") (result i32) (i32.const 0)))`,
    "broken.wat",
  );
  const fx = await startGateway({
    plugins: [
      { name: "evil", wasm: evilWasm, manifest: EVIL_MANIFEST },
      // Fails at start: it imports a host function named like markup, which the error quotes.
      { name: "broken", wasm: brokenWasm, manifest: "name: broken\nversion: 1.0.0\nexports: [run]\n" },
    ],
    // An operator routes the hostile plugin's page export as a handler, leaving its content type to the manifest.
    yaml: [
      "routes:",
      "  - { name: page, match: { path: /page }, auth: public, handler: { plugin: evil, export: page } }",
    ],
  });
  try {
    baseline = await state(fx);
    assert.match(baseline, /evil@1\.0\.0#[0-9a-f]*:loaded/, "the hostile plugin is loaded");
    const admin = await signIn(fx, fx.adminToken);
    const viewer = await signIn(fx, fx.viewerToken);
    const caller = await signIn(fx, fx.callerToken);
    const applyFields = { name: "attack.cedar", text: "permit (principal, action, resource);\n" };

    // ---------------------------------------------------------------- sessions
    await t.attack("forged, malformed and empty session ids open no page and mutate nothing", async () => {
      const forged = [
        "A".repeat(43),
        admin.id.slice(0, 42),
        `${admin.id}A`,
        admin.id.toLowerCase() === admin.id ? admin.id.toUpperCase() : admin.id.toLowerCase(),
        "",
        "../../x",
        `${admin.id.slice(0, 42)}%`,
        "%00".repeat(15),
      ];
      for (const id of forged) {
        const cookie = `keycard_console=${id}`;
        const page = await go(fx, "/console/plugins", { headers: { cookie } });
        await page.body?.cancel();
        assert.equal(page.status, 303, `GET with ${id}`);
        assert.equal(page.headers.get("location"), "/console/sign-in");
        const mutation = await post(fx, "/console/policies/apply", { cookie, csrf: admin.csrf, id }, applyFields);
        await expect(fx, mutation, [401], `apply with ${id}`);
      }
    });

    await t.attack("a session id from a query string or another cookie name is not a session", async () => {
      for (
        const init of [
          { path: `/console/plugins?keycard_console=${admin.id}`, headers: {} as Record<string, string> },
          { path: "/console/plugins", headers: { cookie: `keycard_console_x=${admin.id}` } },
          { path: "/console/plugins", headers: { cookie: `KEYCARD_CONSOLE=${admin.id}` } },
          { path: "/console/plugins", headers: { authorization: `Bearer ${fx.adminToken}` } },
        ]
      ) {
        const page = await go(fx, init.path, { headers: init.headers });
        await page.body?.cancel();
        assert.equal(page.status, 303, init.path + JSON.stringify(init.headers));
      }
    });

    await t.attack("fixation: a session planted before sign-in is ended, the new id is fresh", async () => {
      const planted = await signIn(fx, fx.viewerToken);
      const victim = await signIn(fx, fx.adminToken, planted.cookie);
      assert.notEqual(victim.id, planted.id);
      assert.notEqual(victim.csrf, planted.csrf);
      const old = await get(fx, "/console/plugins", planted);
      await old.body?.cancel();
      assert.equal(old.status, 303, "the planted session no longer opens a page");
      const late = await post(fx, "/console/policies/apply", planted, applyFields);
      await expect(fx, late, [401], "the planted session mutates");
      await (await post(fx, "/console/sign-out", victim, {})).body?.cancel();
    });

    await t.attack("sign-out then replay of the cookie and CSRF token: 401, nothing changes", async () => {
      const browser = await signIn(fx, fx.adminToken);
      const out = await post(fx, "/console/sign-out", browser, {});
      await out.body?.cancel();
      assert.equal(out.status, 303);
      assert.match(out.headers.get("set-cookie") ?? "", /keycard_console=;.*Max-Age=0/);
      await expect(fx, await post(fx, "/console/policies/apply", browser, applyFields), [401], "replayed apply");
      const stream = await get(fx, "/console/audit/stream", browser);
      await expect(fx, stream, [401], "replayed stream");
      const again = await post(fx, "/console/sign-out", browser, {});
      await expect(fx, again, [401], "second sign-out");
    });

    await t.attack("GET and HEAD never sign out, sign in or change anything", async () => {
      const browser = await signIn(fx, fx.adminToken);
      for (const method of ["GET", "HEAD"]) {
        for (
          const path of [
            "/console/sign-out",
            `/console/session?token=${fx.adminToken}`,
            `/console/policies/apply?_csrf=${browser.csrf}&name=attack.cedar&text=permit(principal,action,resource);`,
            `/console/plugins/hello/invoke?_csrf=${browser.csrf}&export=greet`,
          ]
        ) {
          const response = await go(fx, path, { method, headers: { cookie: browser.cookie } });
          await expect(fx, response, [404], `${method} ${path.split("?")[0]}`);
          assert.equal(response.headers.get("set-cookie"), null);
        }
      }
      const still = await get(fx, "/console/plugins", browser);
      await still.body?.cancel();
      assert.equal(still.status, 200, "still signed in");
    });

    await t.attack("an expired session (fake clock) opens nothing and its CSRF token is worthless", () => {
      let now = 1_000_000;
      const store = new SessionStore({ ttlMs: 1000, now: () => now });
      const session = store.create({ id: "admin", roles: ["admin"] });
      assert.equal(store.get(session.id)?.client.id, "admin");
      now += 1000;
      assert.equal(store.get(session.id), undefined);
      assert.equal(store.size, 0, "dropped when seen expired");
      const other = store.create({ id: "viewer", roles: ["viewer"] });
      assert.equal(checkCsrf(other, session.csrf), false);
    });

    await t.attack(
      "CSRF: missing, wrong, another session's, query-string, header-vs-form and multibyte tokens",
      async () => {
        const wrongLast = admin.csrf.slice(0, 42) + (admin.csrf.endsWith("A") ? "B" : "A");
        const attempts: [string, RequestInit, string?][] = [
          ["none", { body: new URLSearchParams(applyFields) }],
          ["another session's", { body: new URLSearchParams({ ...applyFields, _csrf: viewer.csrf }) }],
          ["last character wrong", { body: new URLSearchParams({ ...applyFields, _csrf: wrongLast }) }],
          ["empty", { body: new URLSearchParams({ ...applyFields, _csrf: "" }) }],
          ["43 multibyte characters", { body: new URLSearchParams({ ...applyFields, _csrf: "é".repeat(43) }) }],
          ["a prefix", { body: new URLSearchParams({ ...applyFields, _csrf: admin.csrf.slice(0, 20) }) }],
          ["twice as long", { body: new URLSearchParams({ ...applyFields, _csrf: admin.csrf + admin.csrf }) }],
          ["in the query only", { body: new URLSearchParams(applyFields) }, `?_csrf=${admin.csrf}`],
          ["a wrong header beats a right field", {
            body: new URLSearchParams({ ...applyFields, _csrf: admin.csrf }),
            headers: { "x-csrf-token": viewer.csrf },
          }],
          ["in a text/plain body (a cross-site form's enctype)", {
            body: `_csrf=${admin.csrf}&name=attack.cedar&text=permit(principal,action,resource);`,
            headers: { "content-type": "text/plain" },
          }],
          ["in a JSON body", {
            body: JSON.stringify({ ...applyFields, _csrf: admin.csrf }),
            headers: { "content-type": "application/json" },
          }],
        ];
        for (const [what, init, query] of attempts) {
          const response = await go(fx, `/console/policies/apply${query ?? ""}`, {
            ...init,
            method: "POST",
            headers: { origin: ORIGIN, cookie: admin.cookie, ...init.headers as Record<string, string> },
          });
          await expect(fx, response, [403], `CSRF ${what}`);
        }
      },
    );

    await t.attack("the CSRF token of the admin's session does not work with the viewer's cookie", async () => {
      const response = await post(fx, "/console/policies/apply", { ...viewer, csrf: admin.csrf }, applyFields);
      await expect(fx, response, [403], "viewer cookie + admin CSRF");
    });

    // ---------------------------------------------------------------- cross-site requests
    const mutations: [string, Record<string, string>][] = [
      ["/console/policies/apply", applyFields],
      ["/console/plugins/hello/invoke", { export: "greet", input: "x" }],
      ["/console/plugins/install", { name: "x" }],
      ["/console/playground", { action: "clock.now" }],
      ["/console/playground/explain", { call: "plugin: stamp\nclock.now:\n" }],
      ["/console/sign-out", {}],
    ];
    const crossSite: [string, Record<string, string>][] = [
      ["another origin", { origin: "http://evil.example" }],
      ["a look-alike origin", { origin: "http://keycard.test.evil.example" }],
      ["an origin with userinfo", { origin: "http://keycard.test@evil.example" }],
      ["another port", { origin: "http://keycard.test:8443" }],
      ["Origin null", { origin: "null" }],
      ["no Origin and no Sec-Fetch-Site", {}],
      ["a garbage Origin", { origin: "not a url" }],
      ["Sec-Fetch-Site cross-site with a right Origin", { origin: ORIGIN, "sec-fetch-site": "cross-site" }],
      ["Sec-Fetch-Site same-site with a right Origin", { origin: ORIGIN, "sec-fetch-site": "same-site" }],
      ["Sec-Fetch-Site none with a right Origin", { origin: ORIGIN, "sec-fetch-site": "none" }],
      ["Sec-Fetch-Site empty", { origin: ORIGIN, "sec-fetch-site": "" }],
      ["a method override to GET", { origin: "http://evil.example", "x-http-method-override": "GET" }],
    ];
    await t.attack(
      "cross-site posts to every mutation (12 origin tricks x 6 routes): 403, nothing changes",
      async () => {
        for (const [path, fields] of mutations) {
          for (const [what, headers] of crossSite) {
            const response = await go(fx, path, {
              method: "POST",
              headers: { cookie: admin.cookie, ...headers },
              body: new URLSearchParams({ _csrf: admin.csrf, ...fields }),
            });
            const text = await expect(fx, response, [403], `${what} -> ${path}`);
            assert.match(text, /Cross-site request refused/, `${what} -> ${path}`);
          }
        }
        const still = await get(fx, "/console/plugins", admin);
        await still.body?.cancel();
        assert.equal(still.status, 200, "a cross-site sign-out did not sign the admin out");
      },
    );

    await t.attack("login CSRF: a cross-site sign-in with the attacker's token sets no cookie", async () => {
      for (const [what, headers] of crossSite) {
        const response = await go(fx, "/console/session", {
          method: "POST",
          headers,
          body: new URLSearchParams({ token: fx.viewerToken }),
        });
        await expect(fx, response, [403], `sign-in ${what}`);
        assert.equal(response.headers.get("set-cookie"), null, what);
      }
    });

    await t.attack("a cross-site multipart install carrying the right CSRF token installs nothing", async () => {
      const response = await go(fx, "/console/plugins/install", {
        method: "POST",
        headers: { cookie: admin.cookie, origin: "http://evil.example" },
        body: upload(admin, echo, echoManifest("csrfplug")),
      });
      await expect(fx, response, [403], "cross-site install");
    });

    // ---------------------------------------------------------------- Cedar per action
    await t.attack(
      "viewer and caller: every console read follows Cedar as /v1 does (not-permitted, no data)",
      async () => {
        const pairs: [string, string][] = [
          ["/console/plugins", "/v1/plugins"],
          ["/console/plugins/hello", "/v1/plugins/hello"],
          ["/console/policies", "/v1/policies"],
          ["/console/audit", "/v1/audit"],
          ["/console/health", "/metrics"],
          ["/console/playground", "/v1/policies"],
        ];
        for (
          const [who, browser, token] of [["viewer", viewer, fx.viewerToken], [
            "caller",
            caller,
            fx.callerToken,
          ]] as const
        ) {
          for (const [page, api] of pairs) {
            const v1 = await go(fx, api, { headers: bearer(token) });
            await v1.body?.cancel();
            const response = await get(fx, page, browser);
            const text = await expect(fx, response, [200], `${who} ${page}`);
            const refused = /id="not-permitted"/.test(text);
            assert.equal(refused, v1.status === 403, `${who} ${page}: console refused=${refused}, ${api} ${v1.status}`);
            assert.ok(!text.includes("grants/hello") && !text.includes("api.admin"), `${who} ${page} leaks policies`);
            assert.ok(!text.includes('data-testid="audit-event"'), `${who} ${page} leaks audit events`);
          }
        }
      },
    );

    await t.attack(
      "viewer and caller: every console mutation and JSON endpoint refused as /v1 refuses it",
      async () => {
        for (const [who, browser] of [["viewer", viewer], ["caller", caller]] as const) {
          for (
            const [path, fields] of [
              ["/console/policies/apply", applyFields],
              ["/console/playground", {
                action: "clock.now",
                principal: '{"type":"Plugin","id":"stamp"}',
                resource: '{"type":"Clock","id":"system"}',
              }],
              ["/console/playground/explain", { call: "plugin: stamp\nclock.now:\n" }],
            ] as const
          ) {
            await expect(fx, await post(fx, path, browser, fields), [403], `${who} ${path}`);
          }
          const validate = await go(fx, "/console/policies/validate", {
            method: "POST",
            headers: {
              origin: ORIGIN,
              cookie: browser.cookie,
              "x-csrf-token": browser.csrf,
              "content-type": "application/json",
            },
            body: JSON.stringify({ name: "x.cedar", text: "permit(principal, action, resource);" }),
          });
          await expect(fx, validate, [403], `${who} validate`);
          for (const mode of ["install", "check"]) {
            const response = await go(fx, "/console/plugins/install", {
              method: "POST",
              headers: { origin: ORIGIN, cookie: browser.cookie },
              body: upload(browser, echo, echoManifest("sneaky"), mode === "check" ? { mode: "check" } : {}),
            });
            await expect(fx, response, [403], `${who} ${mode}`);
          }
          await expect(fx, await get(fx, "/console/audit/stream", browser), [403], `${who} audit stream`);
          const explain = await go(fx, "/v1/policies/explain", {
            method: "POST",
            headers: bearer(who === "viewer" ? fx.viewerToken : fx.callerToken),
            body: "plugin: stamp\nclock.now:\n",
          });
          await explain.body?.cancel();
          assert.equal(explain.status, 403, `${who} /v1/policies/explain`);
        }
        const anonymous = await go(fx, "/v1/policies/explain", { method: "POST", body: "plugin: stamp\nclock.now:\n" });
        await anonymous.body?.cancel();
        assert.equal(anonymous.status, 401);
      },
    );

    await t.attack("invoke: viewer refused, caller allowed exactly as /v1 decides plugin.call", async () => {
      for (
        const [who, browser, token] of [["viewer", viewer, fx.viewerToken], ["caller", caller, fx.callerToken]] as const
      ) {
        const v1 = await go(fx, "/v1/plugins/hello/invoke/greet", {
          method: "POST",
          headers: bearer(token),
          body: "x",
        });
        await v1.body?.cancel();
        const console = await post(fx, "/console/plugins/hello/invoke", browser, { export: "greet", input: "x" });
        await expect(fx, console, [v1.status], `${who} invoke`);
      }
    });

    await t.attack(
      "a caller's (plugin.call only) invoke result page shows none of the plugin's grants, compiled Cedar, limits or report",
      async () => {
        // The same client gets "not permitted" for /console/plugins/stamp (plugin.read) and 403 for /v1/policies
        // (policy.read); /v1's invoke answers the output only.
        const refused = await expect(fx, await get(fx, "/console/plugins/stamp", caller), [200], "caller stamp page");
        assert.match(refused, /id="not-permitted"/);
        const response = await post(fx, "/console/plugins/stamp/invoke", caller, { export: "stamp", input: "x" });
        const text = await expect(fx, response, [200], "caller invoke stamp");
        for (const id of ["plugin-cedar", "plugin-grants", "plugin-limits", "plugin-capabilities", "install-report"]) {
          assert.ok(!text.includes(`id="${id}"`), `the caller's invoke page shows #${id}`);
        }
        assert.ok(!text.includes("grant.stamp."), "the caller's invoke page shows the grant policies' text");
      },
    );

    await t.attack(
      "a caller's (no audit.read) invoke page shows no audit decisions or deciding policy ids of its host calls",
      async () => {
        const response = await post(fx, "/console/plugins/stamp/invoke", caller, { export: "stamp", input: "x" });
        const text = await expect(fx, response, [200], "caller invoke stamp");
        assert.ok(
          !text.includes('data-testid="host-call"'),
          "host-call audit rows shown to a client without audit.read",
        );
      },
    );

    await t.attack("a caller's console invoke is audited as that caller, not as the admin", async () => {
      const seen: string[] = [];
      const off = fx.gateway.services.audit.subscribe((event) => {
        if (event.plugin === "stamp") seen.push(String(event.caller));
      });
      try {
        const response = await post(fx, "/console/plugins/stamp/invoke", caller, { export: "stamp", input: "x" });
        await expect(fx, response, [200, 403], "caller invoke stamp");
      } finally {
        off();
      }
      assert.ok(seen.length > 0 && seen.every((id) => id === "app"), `callers seen: ${seen.join(",")}`);
    });

    // ---------------------------------------------------------------- plugin names and paths
    await t.attack(
      "plugin names with path tricks in /console/plugins/:name: 4xx, never 5xx or another page",
      async () => {
        const names = [
          "..",
          "%2e%2e",
          "..%2f..%2fdeno.json",
          "hello%2finvoke",
          "hello%00",
          "h%C3%A9llo",
          "%D0%BDello",
          "HELLO",
          "a".repeat(300),
          "%252e%252e",
          "__proto__",
          "constructor",
          "hello%20",
          "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        ];
        for (const name of names) {
          const page = await get(fx, `/console/plugins/${name}`, admin);
          const text = await expect(fx, page, [400, 404], `GET ${name.slice(0, 40)}`);
          assert.ok(!text.includes("plugin-cedar"), `${name}: a plugin page`);
          const invoke = await post(fx, `/console/plugins/${name}/invoke`, admin, { export: "greet", input: "x" });
          await expect(fx, invoke, [400, 404], `invoke ${name.slice(0, 40)}`);
        }
      },
    );

    await t.attack(
      "install names and manifests with path tricks or markup are refused before anything is written",
      async () => {
        for (const name of ["../evil", "a/b", ".hidden", "x".repeat(300), "<script>", "hello\u0000"]) {
          const response = await go(fx, "/console/plugins/install", {
            method: "POST",
            headers: { origin: ORIGIN, cookie: admin.cookie },
            body: upload(admin, echo, "", { name }),
          });
          await expect(fx, response, [400], `install name ${JSON.stringify(name).slice(0, 30)}`);
        }
        const fromManifest = await go(fx, "/console/plugins/install", {
          method: "POST",
          headers: { origin: ORIGIN, cookie: admin.cookie },
          body: upload(admin, echo, `name: "../../${XSS}"\nversion: 1.0.0\n`),
        });
        await expect(fx, fromManifest, [400], "install name from a hostile manifest");
      },
    );

    await t.attack("install: the form's name and the manifest's name cannot disagree into another plugin", async () => {
      const response = await go(fx, "/console/plugins/install", {
        method: "POST",
        headers: { origin: ORIGIN, cookie: admin.cookie },
        body: upload(admin, echo, echoManifest("hello", "9.9.9"), { name: "echo2" }),
      });
      await expect(fx, response, [400, 409, 422], "name echo2 with a manifest naming hello");
    });

    await t.attack("assets: only the two files, no path tricks or prototype keys reach the disk", async () => {
      for (
        const file of [
          "..%2fconsole_app.tsx",
          "%2e%2e%2fconsole_app.tsx",
          "..%5cconsole_app.tsx",
          "__proto__",
          "constructor",
          "hasOwnProperty",
          "console.js%00",
          "console.js%2f",
          "CONSOLE.JS",
          "console.css.map",
        ]
      ) {
        const response = await go(fx, `/console/assets/${file}`);
        const text = await response.text();
        assert.equal(response.status, 404, `${file}: ${response.status}`);
        headersHold(response, `asset ${file}`);
        assert.ok(!text.includes("consoleApp") && !text.includes("import "), `${file} served source`);
      }
    });

    // ---------------------------------------------------------------- injection
    await t.attack(
      "hostile plugin: markup in description and export names is escaped on the list and its page",
      async () => {
        const list = await expect(fx, await get(fx, "/console/plugins", admin), [200], "plugins list");
        assert.ok(list.includes("evil"), "the hostile plugin is listed");
        const detail = await expect(fx, await get(fx, "/console/plugins/evil", admin), [200], "evil page");
        assert.ok(detail.includes("javascript:alert(4)"), "the description is shown, as text");
        assert.doesNotMatch(detail, /href="javascript:/i, "no javascript: link built from plugin data");
        assert.ok(detail.includes("&quot;&gt;&lt;img/src=x/onerror=alert(3)&gt;"), "the export name, escaped");
      },
    );

    await t.attack("hostile plugin: markup in its output, its error and a markup-named export is escaped", async () => {
      for (
        const input of [
          XSS,
          `</pre><script>alert(1)</script>`,
          `</textarea><script>alert(1)</script>`,
          `<!--<script>alert(1)</script>-->`,
          `\u2028<svg onload=alert(5)>`,
        ]
      ) {
        for (const exportName of ["echo", "fail", EVIL_EXPORT]) {
          const response = await post(fx, "/console/plugins/evil/invoke", admin, { export: exportName, input });
          const text = await expect(fx, response, [exportName === "fail" ? 422 : 200], `evil ${exportName}`);
          assert.ok(text.includes('id="invoke-result"'), `${exportName}: a result is shown`);
          assert.ok(!text.includes("</pre><script>") && !text.includes("</textarea><script>"), exportName);
        }
      }
    });

    await t.attack(
      "a plugin error that quotes its input is shown escaped, and never as a 5xx of the console",
      async () => {
        const response = await post(fx, "/console/plugins/evil/invoke", admin, { export: "fail", input: XSS });
        const text = await expect(fx, response, [422], "evil fail");
        assert.match(text, /id="invoke-error"/);
      },
    );

    await t.attack(
      "a hostile module's conformance report (check details, footprint, proposal) is escaped on the install page",
      async () => {
        const manifest = [
          "name: evil2",
          "version: 1.0.0",
          `description: ${JSON.stringify(XSS)}`,
          "exports:",
          `  - { name: fail, samples: [${JSON.stringify(XSS)}] }`,
          `  - { name: echo, samples: [${JSON.stringify(`</pre>${XSS}`)}] }`,
          "capabilities: []",
          "",
        ].join("\n");
        for (const mode of ["check", "install"]) {
          const response = await go(fx, "/console/plugins/install", {
            method: "POST",
            headers: { origin: ORIGIN, cookie: admin.cookie },
            body: upload(admin, evilWasm, manifest, mode === "check" ? { mode } : {}),
          });
          const text = await expect(fx, response, [200, 422], `evil2 ${mode}`);
          assert.match(text, /id="install-report"/, `${mode}: a report is shown`);
        }
      },
    );

    await t.attack(
      "a sign-in token of 2 MiB is a 413 and a token of 64 KiB a plain 401: no session, no echo",
      async () => {
        const huge = await go(fx, "/console/session", {
          method: "POST",
          headers: { origin: ORIGIN },
          body: new URLSearchParams({ token: "t".repeat(2 * 1024 * 1024) }),
        });
        await expect(fx, huge, [413], "2 MiB token");
        const long = await go(fx, "/console/session", {
          method: "POST",
          headers: { origin: ORIGIN },
          body: new URLSearchParams({ token: "t".repeat(65_536) }),
        });
        const text = await expect(fx, long, [401], "64 KiB token");
        assert.ok(!text.includes("t".repeat(100)));
        assert.equal(long.headers.get("set-cookie"), null);
      },
    );

    await t.attack("markup as the export to invoke, and prototype keys as exports: escaped 4xx", async () => {
      for (const exportName of [XSS, "__proto__", "constructor", "toString", "../greet"]) {
        const response = await post(fx, "/console/plugins/hello/invoke", admin, { export: exportName, input: "x" });
        await expect(fx, response, [400, 404], `export ${exportName.slice(0, 20)}`);
      }
    });

    await t.attack(
      "audit fields with markup, quotes and javascript: URLs: list, chart bars, titles and filters escaped",
      async () => {
        const names = [`javascript:alert(6)`, `x"><svg onload=alert(7)>`, `</title><script>alert(1)</script>`];
        for (const plugin of names) {
          for (const decision of ["allow", "deny"] as const) {
            fx.gateway.services.audit.record(hostileEvent({
              plugin,
              action: `fs.read${XSS}`,
              resource: `File::"${XSS}"`,
              caller: XSS,
              decision,
              reason: XSS,
              policies: [XSS],
            }));
          }
        }
        const page = await expect(fx, await get(fx, "/console/audit?range=15m", admin), [200], "audit page");
        assert.match(page, /data-testid="chart-row"/, "the hostile rows are drawn");
        for (const href of page.matchAll(/href="([^"]*)"/g)) {
          assert.ok(href[1]!.startsWith("/console/") || href[1] === "data:,", `a link out of the console: ${href[1]}`);
        }
        assert.doesNotMatch(page, /<title>[^<]*<\/title><script>/);
        const filtered = await get(
          fx,
          `/console/audit?plugin=${encodeURIComponent(names[1]!)}&caller=${encodeURIComponent(XSS)}`,
          admin,
        );
        const text = await expect(fx, filtered, [200], "filtered audit page");
        const stream = /data-stream="([^"]*)"/.exec(text)?.[1] ?? "";
        assert.ok(stream.startsWith("/console/audit/stream?"), `data-stream stays on the console: ${stream}`);
      },
    );

    await t.attack("console.js never parses server text as HTML and runs no string as code", async () => {
      const script = await (await go(fx, "/console/assets/console.js")).text();
      assert.ok(script.includes("textContent"), "the script is served");
      assert.doesNotMatch(
        script,
        /\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write|\beval\(|new Function\(|setTimeout\(\s*["'`]/,
      );
    });

    await t.attack(
      "no page rendered over hostile data carries an inline script, handler, style or javascript: URL",
      async () => {
        for (
          const path of [
            "/console/plugins",
            "/console/plugins/evil",
            "/console/plugins/broken",
            "/console/audit?range=24h",
            "/console/policies",
            "/console/health",
            "/console/playground",
            "/console/sign-in",
          ]
        ) {
          const text = await expect(fx, await get(fx, path, admin), [200, 404], path);
          for (const tag of text.matchAll(/<script\b[^>]*>/g)) {
            assert.equal(tag[0], '<script src="/console/assets/console.js" defer="">', `${path}: ${tag[0]}`);
          }
          // Attribute values (escaped by JSX) may hold the attacker's text; attribute names may not.
          const names = text.replace(/"[^"]*"/g, '""');
          assert.doesNotMatch(names, /<[a-z][^>]*\son[a-z]+\s*=/i, `${path}: an inline handler`);
          assert.doesNotMatch(names, /<[a-z][^>]*\sstyle\s*=/i, `${path}: an inline style`);
          assert.doesNotMatch(text, /(href|src|action)\s*=\s*"\s*javascript:/i, `${path}: a javascript: URL`);
        }
      },
    );

    await t.attack(
      "the live stream sends hostile events as JSON data lines only (no SSE field injection)",
      async () => {
        await using tail = await openTail(
          fx,
          "/console/audit/stream?plugin=inject",
          admin.cookie,
          (response) => headersHold(response, "SSE stream"),
        );
        const { reader } = tail;
        fx.gateway.services.audit.record(hostileEvent({
          plugin: "inject",
          resource: `File::"a\n\nevent: decision\ndata: {\\"plugin\\":\\"forged\\"}\n\n"`,
          reason: "r\r\nevent: forged\r\n",
        }));
        const text = await readUntil(reader, /event: decision[\s\S]*\n\n/);
        const events = text.split("\n\n").filter((block) => block.includes("event: decision"));
        assert.equal(events.length, 1, `one event: ${JSON.stringify(text)}`);
        assert.ok(!text.split(/\r\n|\r|\n/).some((line) => line.startsWith("event: forged")), "a forged event line");
      },
    );

    await t.attack(
      "policy text, file names and apply errors with markup are escaped (editor textarea included)",
      async () => {
        const bad = await post(fx, "/console/policies/apply", admin, {
          name: "evil.cedar",
          text: `</textarea><script>alert(1)</script> permit(`,
        });
        const text = await expect(fx, bad, [400], "invalid policy with markup");
        assert.ok(!text.includes("</textarea><script>"));
        const badName = await post(fx, "/console/policies/apply", admin, { name: XSS, text: "" });
        await expect(fx, badName, [400], "policy name with markup");
        for (
          const query of [
            `?edit=${encodeURIComponent(XSS)}`,
            `?applied=${encodeURIComponent(XSS)}&version=${encodeURIComponent(XSS)}`,
          ]
        ) {
          await expect(
            fx,
            await get(fx, `/console/policies${query}`, admin),
            [200, 400],
            `policies${query.slice(0, 10)}`,
          );
        }
      },
    );

    await t.attack("policies ?edit= with path tricks reads no file outside the operator set", async () => {
      for (const edit of ["../keycard.yaml", "../../etc/passwd", "%2e%2e/keycard.yaml", "grants/hello", "api"]) {
        const response = await get(fx, `/console/policies?edit=${encodeURIComponent(edit)}`, admin);
        const text = await expect(fx, response, [200, 400], `edit ${edit}`);
        const editor = /<textarea id="policy-editor"[^>]*>([^<]*)<\/textarea>/.exec(text)?.[1] ?? "";
        assert.ok(!editor.includes("tokens:") && !editor.includes("root:"), `${edit} put a file in the editor`);
      }
    });

    await t.attack("playground and explain echo hostile fields escaped, errors included", async () => {
      const decide = await post(fx, "/console/playground", admin, {
        principal: `{"type":"Plugin","id":${JSON.stringify(XSS)}}`,
        action: XSS,
        resource: `</textarea><script>alert(1)</script>`,
        context: XSS,
      });
      await expect(fx, decide, [400], "playground with markup");
      const explain = await post(fx, "/console/playground/explain", admin, {
        call: `plugin: stamp\nhttp.request: ${
          JSON.stringify(`https://x.example/${XSS}`)
        }\nip: "</textarea><script>alert(1)</script>"\n`,
      });
      await expect(fx, explain, [400], "explain with markup");
    });

    await t.attack("console error pages escape the path and method they quote (404 of a markup path)", async () => {
      const response = await get(fx, `/console/${encodeURIComponent(XSS)}`, admin);
      await expect(fx, response, [404], "404 with markup");
      const unauth = await go(fx, `/console/${encodeURIComponent(XSS)}`, {
        method: "POST",
        headers: { origin: ORIGIN },
      });
      await expect(fx, unauth, [401], "401 with markup");
    });

    await t.attack(
      "the console's headers on every kind of response: redirects, errors, 413, assets, HEAD, stream",
      async () => {
        const big = "x".repeat(fx.gateway.services.maxBodyBytes + 1);
        const cases: [string, () => Promise<Response>, number[]][] = [
          ["/console", () => go(fx, "/console"), [303, 404]],
          ["/console/", () => go(fx, "/console/"), [303]],
          ["sign-in", () => go(fx, "/console/sign-in"), [200]],
          ["redirect to sign-in", () => go(fx, "/console/plugins"), [303]],
          ["asset", () => go(fx, "/console/assets/console.js"), [200]],
          ["asset 404", () => go(fx, "/console/assets/nope.js"), [404]],
          ["HEAD page", () => go(fx, "/console/plugins", { method: "HEAD", headers: { cookie: admin.cookie } }), [200]],
          ["404", () => get(fx, "/console/nope", admin), [404]],
          ["405-ish PUT", () => go(fx, "/console/plugins", { method: "PUT", headers: { origin: ORIGIN } }), [
            401,
            404,
            405,
          ]],
          ["401 problem", () => go(fx, "/console/audit/stream"), [401]],
          ["403 cross-site", () => go(fx, "/console/sign-out", { method: "POST" }), [403]],
          ["413", () => post(fx, "/console/playground", admin, { action: big }), [413]],
          ["bad sign-in", () =>
            go(fx, "/console/session", {
              method: "POST",
              headers: { origin: ORIGIN },
              body: new URLSearchParams({ token: "x" }),
            }), [401]],
        ];
        for (const [what, send, statuses] of cases) {
          const response = await send();
          await response.body?.cancel();
          assert.ok(statuses.includes(response.status), `${what}: ${response.status}`);
          headersHold(response, what);
        }
      },
    );

    // ---------------------------------------------------------------- resource bounds
    await t.attack(
      "odd and repeated query values on every page, and calls of a plugin that failed at start: never 5xx",
      async () => {
        const paths = [
          "/console/plugins?x=%00",
          "/console/plugins/hello?export=%00",
          "/console/policies?edit=a&edit=b",
          "/console/policies?edit=%00",
          "/console/policies?edit=" + "e".repeat(5000),
          "/console/policies?applied=%00&version=%ff",
          "/console/playground?event=99999999999999999999",
          "/console/playground?event=0x1",
          "/console/audit?plugin=%00&action=%00&caller=%00",
          "/console/audit?since=%00",
          "/console/audit?range=&plugin=&decision=",
          "/console/health?x=1",
          "/console/audit/stream?decision=maybe",
          "/console/audit/stream?since=nope",
          "/console/sign-in?error=%3Cscript%3E",
          "/console/?next=//evil.example",
        ];
        for (const path of paths) {
          const response = await get(fx, path, admin);
          const text = await expect(fx, response, [200, 303, 400, 404], path.slice(0, 60));
          if (response.status === 303) assert.match(response.headers.get("location") ?? "", /^\/console\//, path);
          assert.ok(!text.includes("&lt;script&gt;") || !path.includes("sign-in"), "the sign-in page reflects a query");
        }
        const broken = await post(fx, "/console/plugins/broken/invoke", admin, { export: "run", input: "x" });
        await expect(fx, broken, [400, 404, 409, 422, 503], "invoke a plugin that failed at start");
      },
    );

    await t.attack(
      "a malformed multipart body is a 400 on every console post, sign-in included, never a 500",
      async () => {
        const broken: [string, string][] = [
          ["multipart/form-data", "x"],
          ["multipart/form-data; boundary=zz", "garbage"],
        ];
        for (
          const path of [
            "/console/session",
            "/console/policies/apply",
            "/console/plugins/install",
            "/console/playground",
            "/console/plugins/hello/invoke",
          ]
        ) {
          for (const [type, body] of broken) {
            const response = await go(fx, path, {
              method: "POST",
              headers: {
                origin: ORIGIN,
                "content-type": type,
                ...(path === "/console/session" ? {} : { cookie: admin.cookie, "x-csrf-token": admin.csrf }),
              },
              body,
            });
            await expect(fx, response, [400, 401, 415], `${path} with ${type}`);
          }
        }
      },
    );

    await t.attack(
      "a body over server.maxBodyBytes (sized or streamed without a length) is a 413, nothing read into a change",
      async () => {
        const big = "x".repeat(fx.gateway.services.maxBodyBytes + 10);
        const sized = await post(fx, "/console/policies/apply", admin, { ...applyFields, text: big });
        await expect(fx, sized, [413], "sized apply");
        const chunk = new TextEncoder().encode(`_csrf=${admin.csrf}&name=attack.cedar&text=` + "y".repeat(65_536));
        let sent = 0;
        const streamed = new ReadableStream<Uint8Array>({
          pull(controller) {
            if (sent > fx.gateway.services.maxBodyBytes * 2) return controller.close();
            sent += chunk.length;
            controller.enqueue(chunk);
          },
        });
        const response = await go(fx, "/console/policies/apply", {
          method: "POST",
          headers: { origin: ORIGIN, cookie: admin.cookie, "content-type": "application/x-www-form-urlencoded" },
          body: streamed,
        });
        await expect(fx, response, [413], "streamed apply");
        const install = await go(fx, "/console/plugins/install", {
          method: "POST",
          headers: { origin: ORIGIN, cookie: admin.cookie },
          body: upload(admin, new Uint8Array(fx.gateway.services.maxBodyBytes + 1), echoManifest("huge")),
        });
        await expect(fx, install, [413], "huge upload");
      },
    );

    await t.attack(
      "playground: deep JSON, huge fields, i64 overflow: a 400, and the engine still decides after",
      async () => {
        const deep = (n: number) => "[".repeat(n) + "]".repeat(n);
        const fields = [
          { principal: `{"type":"Plugin","id":"stamp","attrs":{"a":${deep(40)}}}` },
          { context: `{"a":${deep(8000)}}` },
          { resource: `{"type":"Clock","id":"system","attrs":{"a":${'{"a":'.repeat(2000)}1${"}".repeat(2000)}}}` },
          { context: "x".repeat(16_385) },
          { context: '{"n":9223372036854775808}' },
          { context: '{"n":1e400}' },
          { principal: '{"type":"Plugin","id":"stamp","attrs":{"__proto__":{"admin":true}}}' },
          { principal: '{"type":"","id":"stamp"}' },
          { principal: '{"type":"Plugin::\\"x\\"","id":"stamp"}' },
          { action: 'Action::"clock.now") || true || (' },
        ];
        for (const extra of fields) {
          const response = await post(fx, "/console/playground", admin, {
            principal: '{"type":"Plugin","id":"stamp"}',
            action: "clock.now",
            resource: '{"type":"Clock","id":"system"}',
            context: "{}",
            ...extra,
          });
          await expect(fx, response, [200, 400], `playground ${JSON.stringify(extra).slice(0, 40)}`);
        }
        const ok = await post(fx, "/console/playground", admin, {
          principal: '{"type":"Plugin","id":"stamp"}',
          action: "clock.now",
          resource: '{"type":"Clock","id":"system"}',
          context: '{"caller":""}',
        });
        const text = await expect(fx, ok, [200], "a normal decision after the attacks");
        assert.match(text, /id="pg-result"/);
        const health = await go(fx, "/readyz");
        await health.body?.cancel();
        assert.equal(health.status, 200, "the gateway is still ready");
      },
    );

    const explainApi = (body: BodyInit, headers: Record<string, string> = {}) =>
      go(fx, "/v1/policies/explain", { method: "POST", headers: { ...bearer(fx.adminToken), ...headers }, body });

    await t.attack(
      "explain: deep YAML and JSON, alias bombs, tags: a fast 400, and the engine still explains after",
      async () => {
        const bomb = ["a: &a [x, x, x, x, x, x, x, x, x]"];
        for (let i = 0; i < 9; i++) {
          const prev = String.fromCharCode(97 + i);
          const next = String.fromCharCode(98 + i);
          bomb.push(
            `${next}: &${next} [*${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}]`,
          );
        }
        const bodies = [
          `plugin: stamp\nclock.now: ${"[".repeat(30_000)}${"]".repeat(30_000)}`,
          `plugin: stamp\nclock.now: ${"{a: ".repeat(5000)}1${"}".repeat(5000)}`,
          `${bomb.join("\n")}\nplugin: stamp\nclock.now:\n`,
          `principal: Plugin::"stamp"\naction: clock.now\nresource: Clock::"system"\ncontext: ${"{a: ".repeat(40)}1${
            "}".repeat(40)
          }\n`,
          `principal: Plugin::"stamp"\naction: clock.now\nresource: Clock::"system"\nentities: [${"[".repeat(100)}${
            "]".repeat(100)
          }]\n`,
          "plugin: !!js/function 'function () { return 1 }'\nclock.now:\n",
          "plugin: stamp\nclock.now: !!binary AAAA\n",
          `plugin: stamp\n${"- ".repeat(10_000)}x\n`,
        ];
        for (const body of bodies) {
          const started = performance.now();
          const response = await explainApi(body);
          const text = await response.text();
          assert.equal(response.status, 400, `${body.slice(0, 40)}: ${response.status} ${text.slice(0, 200)}`);
          assert.match(response.headers.get("content-type") ?? "", /^application\/problem\+json/);
          assert.ok(performance.now() - started < 5000, `${body.slice(0, 40)} took ${performance.now() - started} ms`);
        }
        const ok = await explainApi("plugin: stamp\nclock.now:\n");
        const result = await ok.json();
        assert.equal(ok.status, 200);
        assert.equal(result.decisions?.[0]?.decision?.decision, "allow", JSON.stringify(result).slice(0, 200));
      },
    );

    await t.attack("explain: empty, not UTF-8, over 65,536 characters, odd media types: 4xx", async () => {
      const cases: [BodyInit, number[], Record<string, string>?][] = [
        ["", [400]],
        ["   \n", [400]],
        [new Uint8Array([0x70, 0x6c, 0xff, 0xfe, 0x3a]), [400]],
        [new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode("plugin: stamp\nclock.now:\n")]), [200, 400]],
        [`plugin: stamp\nclock.now:\n#${"x".repeat(65_536)}`, [413]],
        ["plugin: stamp\nclock.now:\n", [200, 400, 415], { "content-type": "multipart/form-data; boundary=x" }],
        ["null", [400]],
        ["[]", [400]],
        ['"plugin: stamp"', [400]],
        ["plugin: stamp\nclock.now:\n\u0000", [400]],
      ];
      for (const [body, statuses, headers] of cases) {
        const response = await explainApi(body, headers);
        const text = await response.text();
        assert.ok(
          statuses.includes(response.status),
          `${String(body).slice(0, 30)}: ${response.status} ${text.slice(0, 200)}`,
        );
      }
    });

    await t.attack(
      "explain: unknown plugins, odd URLs, hosts, ports, IPv6 and ip values that are not IPs: never 5xx",
      async () => {
        const cases = [
          "plugin: nosuchplugin\nclock.now:\n",
          "plugin: ../hello\nclock.now:\n",
          "plugin: { name: hello, version: '../../x', sha256: zz }\nclock.now:\n",
          "plugin: stamp\nhttp.request: http://[::1]:99999/x\n",
          "plugin: stamp\nhttp.request: http://[::ffff:127.0.0.1]/\nip: ::ffff:127.0.0.1\n",
          "plugin: stamp\nhttp.request: http://[fe80::1%25eth0]/\n",
          "plugin: stamp\nhttp.request: http://0x7f000001/\nip: 127.0.0.1\n",
          "plugin: stamp\nhttp.request: http://example.com:0/\n",
          "plugin: stamp\nhttp.request: http://user:pass@example.com/\n",
          "plugin: stamp\nhttp.request: file:///etc/passwd\n",
          "plugin: stamp\nhttp.request: javascript:alert(1)\n",
          "plugin: stamp\nhttp.request: //example.com/\n",
          `plugin: stamp\nhttp.request: http://${"a".repeat(300)}.example/\n`,
          "plugin: stamp\nhttp.request: http://xn--/\n",
          "plugin: stamp\nhttp.request: https://api.example.com/\nip: not-an-ip\n",
          "plugin: stamp\nhttp.request: https://api.example.com/\nip: 999.1.1.1\n",
          "plugin: stamp\nhttp.request: https://api.example.com/\nip: 1.2.3.4/8\n",
          "plugin: stamp\nhttp.request: https://api.example.com/\nip: '::1%lo'\n",
          "plugin: stamp\nhttp.request: https://api.example.com/\nmethod: CONNECT\n",
          "plugin: stamp\nhttp.request: https://api.example.com/\nhop: 99999999999999999999\n",
          "plugin: stamp\nfs.read: ../../etc/passwd\n",
          'plugin: stamp\nfs.read: "/data/\\0x"\n',
          "plugin: stamp\nkv.get: { namespace: '../other', key: k }\n",
          "plugin: stamp\nenv.get: KEYCARD_ADMIN_TOKEN\n",
          "plugin: stamp\nrandom.get: 99999999999999999999\n",
        ];
        for (const body of cases) {
          const response = await explainApi(body);
          const text = await response.text();
          assert.ok(
            response.status === 200 || response.status === 400,
            `${JSON.stringify(body)}: ${response.status} ${text.slice(0, 200)}`,
          );
          assert.ok(!text.includes(fx.adminToken), "the admin token leaked");
          const pg = await post(fx, "/console/playground/explain", admin, { call: body });
          await expect(fx, pg, [200, 400], `playground explain ${JSON.stringify(body).slice(0, 50)}`);
        }
      },
    );

    await t.attack(
      "prototype keys in explain YAML and playground JSON pollute nothing and answer 200 or 400",
      async () => {
        const bodies = [
          "plugin: stamp\nclock.now:\ncaller: x\n__proto__: { polluted: 1 }\n",
          'principal: Plugin::"stamp"\naction: clock.now\nresource: Clock::"system"\ncontext: { __proto__: { polluted: 1 }, constructor: { prototype: { polluted: 1 } } }\n',
          'principal: { type: Plugin, id: stamp, attrs: { __proto__: { polluted: 1 } } }\naction: clock.now\nresource: Clock::"system"\n',
          "base: &b { polluted: 1 }\nplugin: stamp\nclock.now: { <<: *b }\n",
        ];
        for (const body of bodies) {
          const response = await explainApi(body);
          const text = await response.text();
          assert.ok(response.status === 200 || response.status === 400, `${response.status} ${text.slice(0, 200)}`);
        }
        const playground = await post(fx, "/console/playground", admin, {
          principal: '{"type":"Plugin","id":"stamp","attrs":{"__proto__":{"polluted":1}}}',
          action: "clock.now",
          resource: '{"type":"Clock","id":"system"}',
          context: '{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}}}',
        });
        await expect(fx, playground, [200, 400], "playground prototype keys");
        assert.equal(({} as Record<string, unknown>).polluted, undefined, "Object.prototype was polluted");
      },
    );

    await t.attack("console invoke input past the plugin's inputBytes answers as /v1 does, never 5xx", async () => {
      const input = "i".repeat(70_000);
      const v1 = await go(fx, "/v1/plugins/hello/invoke/echo", {
        method: "POST",
        headers: bearer(fx.adminToken),
        body: input,
      });
      await v1.body?.cancel();
      assert.ok(v1.status >= 400 && v1.status < 500, `/v1 ${v1.status}`);
      const response = await post(fx, "/console/plugins/hello/invoke", admin, { export: "echo", input });
      await expect(fx, response, [v1.status], "console invoke of 70,000 bytes");
    });

    await t.attack("only sign-in and sign-out set a cookie: no page, error, asset or stream does", async () => {
      for (
        const path of [
          "/console/plugins",
          "/console/audit",
          "/console/nope",
          "/console/assets/console.js",
          "/console/sign-in",
        ]
      ) {
        const response = await get(fx, path, admin);
        await response.body?.cancel();
        assert.equal(response.headers.get("set-cookie"), null, path);
      }
    });

    await t.attack(
      "install and check-only with YAML alias bombs and deep manifests: a fast 4xx, nothing installed",
      async () => {
        const bomb = ["name: bombed", "version: 1.0.0", "a: &a [x, x, x, x, x, x, x, x, x]"];
        for (let i = 0; i < 8; i++) {
          const prev = String.fromCharCode(97 + i);
          const next = String.fromCharCode(98 + i);
          bomb.push(
            `${next}: &${next} [*${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}]`,
          );
        }
        const manifests = [
          bomb.join("\n"),
          `name: deep\nversion: 1.0.0\ndescription: ${"[".repeat(20_000)}${"]".repeat(20_000)}\n`,
          `name: &n deep2\nversion: 1.0.0\nexports: [*n, *n]\n`,
        ];
        for (const manifest of manifests) {
          for (const [name, mode] of [["", ""], ["bombed", "check"], ["bombed", ""]]) {
            const started = performance.now();
            const response = await go(fx, "/console/plugins/install", {
              method: "POST",
              headers: { origin: ORIGIN, cookie: admin.cookie },
              body: upload(admin, echo, manifest, { ...(name ? { name } : {}), ...(mode ? { mode } : {}) }),
            });
            await expect(fx, response, [400, 422], `manifest ${manifest.slice(0, 20)} name=${name} mode=${mode}`);
            assert.ok(performance.now() - started < 10_000, "bounded");
          }
        }
      },
    );

    await t.attack("validate: non-JSON, deep JSON, wrong shapes, markup names: 400 JSON, never 5xx", async () => {
      const bodies: [string, string][] = [
        ["not json", "application/json"],
        [`{"name":"x.cedar","text":${"[".repeat(5000)}${"]".repeat(5000)}}`, "application/json"],
        ['{"name":"x.cedar"}', "application/json"],
        ['{"name":["x"],"text":"permit(principal,action,resource);"}', "application/json"],
        [JSON.stringify({ name: XSS, text: "" }), "application/json"],
        [JSON.stringify({ name: "../x", text: "" }), "application/json"],
        [JSON.stringify({ name: "x.cedar", text: `${"(".repeat(200)}` }), "application/json"],
        [
          JSON.stringify({
            name: "x.cedar",
            text: "permit(principal,action,resource) when { " + "(".repeat(500) + "true" + ")".repeat(500) + " };",
          }),
          "application/json",
        ],
      ];
      for (const [body, type] of bodies) {
        const response = await go(fx, "/console/policies/validate", {
          method: "POST",
          headers: { origin: ORIGIN, cookie: admin.cookie, "x-csrf-token": admin.csrf, "content-type": type },
          body,
        });
        const text = await expect(fx, response, [200, 400], `validate ${body.slice(0, 30)}`);
        assert.match(response.headers.get("content-type") ?? "", /json/);
        if (response.status === 200) {
          assert.ok(!JSON.parse(text).valid || body.includes("permit(principal,action,resource);"));
        }
      }
      const ok = await explainApi("plugin: stamp\nclock.now:\n");
      await ok.body?.cancel();
      assert.equal(ok.status, 200, "the engine still answers after deep Cedar");
    });

    await t.attack(
      "apply cannot lock the admins out: removing api.admin's permit through the console is refused",
      async () => {
        const api = fx.gateway.services.policies.sources().find((s) => s.kind === "file" && s.name.startsWith("api"));
        assert.ok(api, "the api policy file is an operator file");
        const response = await post(fx, "/console/policies/apply", admin, { name: api.name, text: "// nothing\n" });
        await expect(fx, response, [400, 409], "lock-out apply");
      },
    );

    await t.attack(
      "chart range and filter abuse: unknown ranges, prototype keys, odd times: 4xx or a page, never 5xx",
      async () => {
        const queries = [
          "range=__proto__",
          "range=1m",
          "range=1h&range=24h",
          "range=" + "x".repeat(10_000),
          "since=0",
          "since=-271821-04-20T00:00:00Z",
          "since=275760-09-13T00:00:00Z",
          "since=2020-01-01T00:00:00%2B23:59",
          "until=1970-01-01T00:00:00Z&since=2100-01-01T00:00:00Z",
          "since=" + "1".repeat(300),
          "decision=maybe",
          "decision=allow&decision=deny",
          "plugin=" + "p".repeat(257),
        ];
        for (const query of queries) {
          const response = await get(fx, `/console/audit?${query}`, admin);
          await expect(fx, response, [200, 400], `audit?${query.slice(0, 40)}`);
        }
      },
    );

    await t.attack(
      "?range=toString, constructor, valueOf (Object.prototype keys) are a 400 on the audit page, not a 500",
      async () => {
        for (const range of ["toString", "constructor", "valueOf"]) {
          const response = await get(fx, `/console/audit?range=${range}`, admin);
          await expect(fx, response, [400], `range=${range}`);
        }
      },
    );

    await t.attack(
      "the chart over 10,000+ recorded events renders in bounded time and says it was cut short",
      async () => {
        const now = Date.now();
        for (let i = 0; i < 10_050; i++) {
          fx.gateway.services.audit.record(hostileEvent({
            time: new Date(now - (i % 800) * 1000).toISOString(),
            plugin: `p${i % 40}`,
            action: i % 2 ? "fs.read" : "kv.get",
            decision: i % 3 ? "allow" : "deny",
          }));
        }
        for (const range of ["15m", "24h"]) {
          const started = performance.now();
          const response = await get(fx, `/console/audit?range=${range}`, admin);
          const text = await expect(fx, response, [200], `chart ${range}`);
          const ms = performance.now() - started;
          assert.ok(ms < 5000, `chart ${range} took ${Math.round(ms)} ms`);
          assert.ok(text.length < 2_000_000, `chart page of ${text.length} characters`);
          assert.match(text, /The first 20 of \d+ rows are drawn/);
        }
      },
    );

    await t.attack(
      "audit streams: the bound of 64 in all holds across sessions, and every place is freed",
      async () => {
        const opened: { controller: AbortController; reader: ReadableStreamDefaultReader<Uint8Array> }[] = [];
        const sessions: Browser[] = [];
        try {
          for (let s = 0; s < 17; s++) sessions.push(await signIn(fx, fx.adminToken));
          let refused = 0;
          for (const browser of sessions) {
            for (let i = 0; i < 4; i++) {
              const controller = new AbortController();
              const response = await go(fx, "/console/audit/stream", {
                headers: { cookie: browser.cookie },
                signal: controller.signal,
              });
              if (response.status === 429) {
                refused++;
                await response.body?.cancel();
                continue;
              }
              assert.equal(response.status, 200);
              const reader = response.body!.getReader();
              await within(10_000, "ready", reader.read());
              opened.push({ controller, reader });
            }
          }
          assert.equal(opened.length, 64);
          assert.equal(refused, 4);
        } finally {
          for (const { controller, reader } of opened) {
            controller.abort();
            await reader.cancel().catch(() => {});
          }
        }
        // Every place comes back: a new stream opens (bounded poll while the loops end).
        let status = 0;
        for (let attempt = 0; attempt < 200 && status !== 200; attempt++) {
          const response = await get(fx, "/console/audit/stream", admin);
          status = response.status;
          await response.body?.cancel();
          if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 10));
        }
        assert.equal(status, 200, "a stream opens once the others closed");
        for (const browser of sessions) await (await post(fx, "/console/sign-out", browser, {})).body?.cancel();
      },
    );

    await t.attack(
      "HEAD /console/audit/stream holds no stream place (HEADs never lock the session's live tail)",
      async () => {
        const browser = await signIn(fx, fx.adminToken);
        for (let i = 0; i < 5; i++) {
          const head = await go(fx, "/console/audit/stream", { method: "HEAD", headers: { cookie: browser.cookie } });
          await head.body?.cancel();
        }
        const controller = new AbortController();
        const response = await go(fx, "/console/audit/stream", {
          headers: { cookie: browser.cookie },
          signal: controller.signal,
        });
        const status = response.status;
        controller.abort();
        await response.body?.cancel().catch(() => {});
        assert.equal(status, 200, "after HEAD requests the session's live tail still opens");
      },
    );

    await t.attack(
      "console invoke answers as /v1 does for a trap, a memory bomb, an unknown export and a missing plugin",
      async () => {
        for (
          const [plugin, exportName] of [
            ["trap", "unreachable"],
            ["trap", "out_of_bounds"],
            ["bomb", "grow"],
            ["hello", "no_such_export"],
            ["nosuchplugin", "x"],
          ] as const
        ) {
          const v1 = await go(fx, `/v1/plugins/${plugin}/invoke/${exportName}`, {
            method: "POST",
            headers: bearer(fx.adminToken),
            body: "x",
          });
          await v1.body?.cancel();
          const response = await post(fx, `/console/plugins/${plugin}/invoke`, admin, {
            export: exportName,
            input: "x",
          });
          await expect(fx, response, [v1.status], `${plugin} ${exportName}`);
          assert.ok(v1.status !== 500, `${plugin} ${exportName}: /v1 answers 500`);
        }
        const after = await post(fx, "/console/plugins/hello/invoke", admin, { export: "greet", input: "x" });
        await expect(fx, after, [200], "a normal call after them");
      },
    );

    await t.attack("a flood of concurrent console invokes past the plugin's queue: 200 or 429, never 5xx", async () => {
      const responses = await Promise.all(
        Array.from(
          { length: 24 },
          () => post(fx, "/console/plugins/hello/invoke", admin, { export: "fib", input: "25" }),
        ),
      );
      const statuses: number[] = [];
      for (const response of responses) {
        statuses.push(response.status);
        await expect(fx, response, [200, 429], "flooded invoke");
      }
      assert.ok(statuses.includes(200), statuses.join(","));
    });

    await t.attack(
      "a playground decision and an explanation are not recorded as a plugin's decision in the audit trail",
      async () => {
        const seen: string[] = [];
        const off = fx.gateway.services.audit.subscribe((event) => {
          seen.push(`${event.plugin} ${event.action}`);
        });
        try {
          const decide = await post(fx, "/console/playground", admin, {
            principal: '{"type":"Plugin","id":"stamp"}',
            action: "clock.now",
            resource: '{"type":"Clock","id":"system"}',
            context: '{"caller":""}',
          });
          await expect(fx, decide, [200], "playground decide");
          const explain = await post(fx, "/console/playground/explain", admin, { call: "plugin: stamp\nclock.now:\n" });
          await expect(fx, explain, [200], "playground explain");
          const api = await go(fx, "/v1/policies/explain", {
            method: "POST",
            headers: bearer(fx.adminToken),
            body: "plugin: stamp\nclock.now:\n",
          });
          await api.body?.cancel();
        } finally {
          off();
        }
        assert.deepEqual(seen, [], "a what-if decision reached the audit trail");
      },
    );

    await t.attack("explain with hundreds of entities and parents answers in bounded time", async () => {
      const entities = Array.from(
        { length: 600 },
        (_, i) => `{uid: {type: Dir, id: "/d${i}"}, attrs: {}, parents: [{type: Dir, id: "/d${i + 1}"}]}`,
      );
      const parents = Array.from({ length: 200 }, (_, i) => `'Dir::"/d${i}"'`).join(", ");
      const body = [
        'principal: Plugin::"stamp"',
        "action: fs.read",
        `resource: { type: File, id: "/d0/x", parents: [${parents}] }`,
        `entities: [${entities.join(", ")}]`,
        "",
      ].join("\n");
      assert.ok(body.length < 65_536, `${body.length}`);
      const started = performance.now();
      const response = await go(fx, "/v1/policies/explain", { method: "POST", headers: bearer(fx.adminToken), body });
      const text = await response.text();
      const ms = performance.now() - started;
      assert.ok(response.status === 200 || response.status === 400, `${response.status} ${text.slice(0, 200)}`);
      assert.ok(ms < 5000, `explain took ${Math.round(ms)} ms`);
    });

    await t.attack(
      "no console or explain response grants another origin a read (no CORS headers, even when asked)",
      async () => {
        const asks = { origin: "http://evil.example", "access-control-request-method": "POST" };
        const responses = [
          await get(fx, "/console/plugins", admin, asks),
          await get(fx, "/console/audit/stream", admin, asks),
          await go(fx, "/console/policies/validate", {
            method: "OPTIONS",
            headers: { ...asks, cookie: admin.cookie },
          }),
          await go(fx, "/v1/policies/explain", { method: "OPTIONS", headers: asks }),
          await go(fx, "/v1/policies/explain", {
            method: "POST",
            headers: { ...asks, ...bearer(fx.adminToken) },
            body: "plugin: stamp\nclock.now:\n",
          }),
        ];
        for (const response of responses) {
          await response.body?.cancel();
          assert.equal(response.headers.get("access-control-allow-origin"), null, response.url);
          assert.equal(response.headers.get("access-control-allow-credentials"), null, response.url);
        }
      },
    );

    await t.attack("the CSRF token never goes into a URL: no GET form or link of any page carries it", async () => {
      for (
        const path of [
          "/console/plugins",
          "/console/plugins/hello",
          "/console/audit",
          "/console/policies",
          "/console/health",
          "/console/playground",
        ]
      ) {
        const text = await expect(fx, await get(fx, path, admin), [200], path);
        for (const form of text.matchAll(/<form\b[^>]*>[\s\S]*?<\/form>/g)) {
          if (/method="post"/i.test(form[0])) continue;
          assert.ok(!form[0].includes(admin.csrf) && !form[0].includes('name="_csrf"'), `${path}: a GET form with it`);
        }
        for (const href of text.matchAll(/href="([^"]*)"/g)) assert.ok(!href[1]!.includes(admin.csrf), path);
      }
    });

    await t.attack("session ids and CSRF tokens are distinct, unguessable-sized and never reused", () => {
      const store = new SessionStore({ maxSessions: 1000 });
      const seen = new Set<string>();
      for (let i = 0; i < 500; i++) {
        const session = store.create({ id: "x", roles: [] });
        assert.match(session.id, /^[A-Za-z0-9_-]{43}$/);
        assert.match(session.csrf, /^[A-Za-z0-9_-]{43}$/);
        assert.notEqual(session.id, session.csrf);
        assert.ok(!seen.has(session.id) && !seen.has(session.csrf), "a repeat");
        seen.add(session.id);
        seen.add(session.csrf);
      }
    });

    await t.attack(
      "install with the module as a text field, an empty file or no file: 400, nothing installed",
      async () => {
        for (const variant of ["text", "empty", "none"]) {
          const form = new FormData();
          form.append("_csrf", admin.csrf);
          form.append("manifest", echoManifest("notafile"));
          if (variant === "text") form.append("wasm", "\0asm\u0001\0\0\0");
          if (variant === "empty") form.append("wasm", new Blob([]), "empty.wasm");
          const response = await go(fx, "/console/plugins/install", {
            method: "POST",
            headers: { origin: ORIGIN, cookie: admin.cookie },
            body: form,
          });
          await expect(fx, response, [400], `install ${variant}`);
        }
      },
    );

    await t.attack(
      "a configured plugin that failed at start with markup in its manifest is listed with its error escaped",
      async () => {
        const list = await expect(fx, await get(fx, "/console/plugins", admin), [200], "plugins list");
        assert.match(
          list,
          /class="plugin-error error" data-plugin="broken"/,
          "the failed plugin and its error are shown",
        );
        const detail = await expect(fx, await get(fx, "/console/plugins/broken", admin), [200, 404], "broken page");
        if (detail.includes('id="plugin-error"')) assert.doesNotMatch(detail, /id="invoke-form"/);
      },
    );

    await t.attack(
      "the console cookie opens nothing under /v1, /metrics or a route (only a bearer token does)",
      async () => {
        for (const path of ["/v1/plugins", "/v1/policies", "/v1/audit", "/metrics"]) {
          const response = await go(fx, path, { headers: { cookie: admin.cookie } });
          await response.body?.cancel();
          assert.equal(response.status, 401, path);
        }
        const explain = await go(fx, "/v1/policies/explain", {
          method: "POST",
          headers: { cookie: admin.cookie, origin: ORIGIN, "x-csrf-token": admin.csrf },
          body: "plugin: stamp\nclock.now:\n",
        });
        await explain.body?.cancel();
        assert.equal(explain.status, 401);
      },
    );

    await t.attack(
      "no existence oracle: a caller sees the same not-permitted page for an installed and a missing plugin",
      async () => {
        const installed = await expect(fx, await get(fx, "/console/plugins/hello", caller), [200], "caller hello");
        const missing = await expect(
          fx,
          await get(fx, "/console/plugins/nosuchplugin", caller),
          [200],
          "caller missing",
        );
        assert.match(installed, /id="not-permitted"/);
        assert.equal(installed.replaceAll("hello", "X"), missing.replaceAll("nosuchplugin", "X"));
      },
    );

    await t.attack(
      "a hostile recorded request in the playground's event picker is escaped into its fields",
      async () => {
        fx.gateway.services.audit.record(hostileEvent({
          plugin: XSS,
          request: {
            principal: { uid: { type: "Plugin", id: `</textarea>${XSS}` }, attrs: { x: XSS }, parents: [] },
            action: `clock.now</textarea>${XSS}`,
            resource: { uid: { type: "Clock", id: XSS }, attrs: {}, parents: [] },
            context: { caller: `</textarea><script>alert(1)</script>` },
          },
        } as Partial<Parameters<AuditLog["record"]>[0]>));
        for (const query of ["", "?event=0", "?event=-1", "?event=1e309", "?event=__proto__", "?event=0&event=1"]) {
          const response = await get(fx, `/console/playground${query}`, admin);
          const text = await expect(fx, response, [200], `playground${query}`);
          assert.ok(!text.includes("</textarea><script>"), `playground${query}`);
        }
      },
    );

    await t.attack(
      "health and /metrics after calls of a markup-named export: escaped page, well-formed metrics",
      async () => {
        const invoke = await post(fx, "/console/plugins/evil/invoke", admin, { export: EVIL_EXPORT, input: "x" });
        await expect(fx, invoke, [200], "invoke the markup-named export");
        const health = await expect(fx, await get(fx, "/console/health", admin), [200], "health");
        assert.match(health, /data-plugin="evil"/);
        const metrics = await go(fx, "/metrics", { headers: bearer(fx.adminToken) });
        const text = await metrics.text();
        assert.equal(metrics.status, 200);
        const sample = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? \S+$/;
        for (const line of text.split("\n")) {
          if (line === "" || line.startsWith("#")) continue;
          assert.match(line, sample, "a malformed metrics line");
        }
      },
    );

    await t.attack("https: the session cookie is Secure when the console is served over https", async () => {
      const response = await fx.gateway.app.request("https://keycard.test/console/session", {
        method: "POST",
        headers: { origin: "https://keycard.test" },
        body: new URLSearchParams({ token: fx.viewerToken }),
      }, { remoteAddr: { hostname: "198.18.250.1" } });
      await response.body?.cancel();
      assert.equal(response.status, 303);
      assert.match(response.headers.get("set-cookie") ?? "", /; Secure/);
    });

    await t.attack(
      "a hostile plugin's text/html route answer on the console's origin is sandboxed (it cannot script the console)",
      async () => {
        // The operator routed evil's `page` export without a content type: the manifest's text/html applies, and the
        // plugin echoes the request body, so a cross-site form post to /page renders the attacker's markup on this
        // origin, whose script may then fetch /console pages (same-site: the Strict cookie goes) and their CSRF token.
        const response = await go(fx, "/page", {
          method: "POST",
          headers: { "content-type": "text/plain", origin: "http://evil.example", "sec-fetch-site": "cross-site" },
          body: `<script>fetch("/console/plugins").then((r) => r.text())</script>`,
        });
        const text = await response.text();
        assert.equal(response.status, 200, text.slice(0, 200));
        const type = response.headers.get("content-type") ?? "";
        const csp = response.headers.get("content-security-policy") ?? "";
        assert.ok(
          !/^text\/html/i.test(type) || /(^|;)\s*sandbox\b/.test(csp) || /script-src 'none'/.test(csp),
          `a plugin's HTML is served on the console's origin as ${JSON.stringify(type)} with CSP ${
            JSON.stringify(csp)
          }`,
        );
      },
    );

    await t.attack("a route under /console/ is refused by the config, or never answers for the console", async () => {
      const other = await startGateway({
        plugins: [{ name: "evil", wasm: evilWasm, manifest: EVIL_MANIFEST }],
        create: false,
        yaml: [
          "routes:",
          "  - { name: steal, match: { path: /console/* }, auth: public, handler: { plugin: evil, export: page } }",
        ],
      });
      try {
        let config;
        try {
          config = (await loadConfig({ path: other.configPath, env: {} })).config;
        } catch {
          return; // refused: holds
        }
        const gateway = await createGateway(config, { adminToken: other.adminToken });
        try {
          const request = (path: string, init: RequestInit = {}) =>
            Promise.resolve(gateway.app.request(new URL(path, BASE).href, init));
          const signed = await request("/console/session", {
            method: "POST",
            headers: { origin: ORIGIN },
            body: new URLSearchParams({ token: other.adminToken }),
          });
          await signed.body?.cancel();
          const cookie = (signed.headers.get("set-cookie") ?? "").split(";")[0]!;
          assert.match(cookie, /^keycard_console=/, "the console signs in");
          for (const path of ["/console/plugins", "/console/nope", "/console/assets/console.js"]) {
            const response = await request(path, { headers: { cookie } });
            await response.body?.cancel();
            assert.equal(
              response.headers.get("content-security-policy"),
              CONSOLE_CSP,
              `${path} was answered by the route (${response.status}), with the console's cookie in its request`,
            );
          }
        } finally {
          await gateway.close();
        }
      } finally {
        await other.close();
      }
    });

    await t.attack(
      "signing out ends the live tail that session opened (no audit event streams after it)",
      async () => {
        const browser = await signIn(fx, fx.adminToken);
        await using tail = await openTail(fx, "/console/audit/stream?plugin=after-sign-out", browser.cookie);
        const { reader } = tail;
        const out = await post(fx, "/console/sign-out", browser, {});
        await out.body?.cancel();
        assert.equal(out.status, 303);
        fx.gateway.services.audit.record(hostileEvent({ plugin: "after-sign-out", resource: 'File::"/secret"' }));
        // The stream must end rather than deliver: read until it ends or delivers, bounded.
        const delivered = await deliversBeforeEnd(reader);
        assert.equal(delivered, false, "a decision was streamed to a signed-out session");
      },
    );

    await t.attack("signing in again from the same browser ends the live tail of the session it replaced", async () => {
      const browser = await signIn(fx, fx.adminToken);
      await using tail = await openTail(fx, "/console/audit/stream?plugin=after-re-sign-in", browser.cookie);
      const { reader } = tail;
      const again = await signIn(fx, fx.viewerToken, browser.cookie);
      assert.notEqual(again.id, browser.id);
      fx.gateway.services.audit.record(hostileEvent({ plugin: "after-re-sign-in", resource: 'File::"/secret"' }));
      const delivered = await deliversBeforeEnd(reader);
      assert.equal(delivered, false, "a decision was streamed to the replaced session");
    });

    await t.attack(
      "a viewer (granted nothing) signing in 260 times never ends the admin's console session",
      async () => {
        const victim = await signIn(fx, fx.adminToken);
        for (let i = 0; i < 260; i++) {
          const response = await go(fx, "/console/session", {
            method: "POST",
            headers: { origin: ORIGIN },
            body: new URLSearchParams({ token: fx.viewerToken }),
          });
          await response.body?.cancel();
          assert.equal(response.status, 303);
        }
        const page = await get(fx, "/console/plugins", victim);
        await page.body?.cancel();
        assert.equal(page.status, 200, "the admin is still signed in");
      },
    );

    await t.attack(
      "the sign-in page never echoes the submitted token, and a redirect never leaves the console",
      async () => {
        const token = `wrong-${XSS}`;
        const response = await go(fx, "/console/session", {
          method: "POST",
          headers: { origin: ORIGIN },
          body: new URLSearchParams({ token }),
        });
        const text = await expect(fx, response, [401], "bad token");
        assert.ok(!text.includes("wrong-"), "the token is echoed");
        const good = await go(fx, "/console/session", {
          method: "POST",
          headers: { origin: ORIGIN, host: "evil.example" },
          body: new URLSearchParams({ token: fx.viewerToken }),
        });
        await good.body?.cancel();
        assert.equal(good.headers.get("location"), "/console/plugins");
      },
    );
  } finally {
    await fx.close();
  }
  t.report();
});
