// The console in-process against a real gateway (real plugins, real Cedar): sessions, CSRF, origin checks,
// Cedar-decided actions, CSP, HTML escaping, install, invoke, policies, the live audit stream.
import assert from "node:assert/strict";
import {
  asAdmin,
  echoManifest,
  expectOk,
  type GatewayFixture,
  pluginForm,
  startGateway,
  within,
} from "../../tests/_gateway_fixture.ts";
import { examplePlugin, watFixture } from "../../tests/_test_utils.ts";
import { loadConfig } from "../config/mod.ts";
import { createGateway } from "../gateway/mod.ts";
import { CONSOLE_CSP } from "./console_app.tsx";

const ORIGIN = "http://keycard.test";

/** A signed-in browser: its cookie and CSRF token. */
interface Browser {
  cookie: string;
  csrf: string;
}

async function signIn(fx: GatewayFixture, token: string, cookie?: string): Promise<Browser & { setCookie: string }> {
  const response = await fx.request("/console/session", {
    method: "POST",
    headers: { origin: ORIGIN, ...(cookie ? { cookie } : {}) },
    body: new URLSearchParams({ token }),
  });
  await response.body?.cancel();
  assert.equal(response.status, 303);
  const setCookie = response.headers.get("set-cookie") ?? "";
  const pair = setCookie.split(";")[0]!;
  const page = await (await fx.request("/console/plugins", { headers: { cookie: pair } })).text();
  const csrf = /<meta name="csrf-token" content="([^"]+)"/.exec(page)?.[1];
  assert.ok(csrf, "the page carries the CSRF token");
  return { cookie: pair, csrf, setCookie };
}

function post(fx: GatewayFixture, path: string, browser: Browser, fields: Record<string, string>, headers = {}) {
  return fx.request(path, {
    method: "POST",
    headers: { origin: ORIGIN, cookie: browser.cookie, ...headers },
    body: new URLSearchParams({ _csrf: browser.csrf, ...fields }),
  });
}

async function withGateway(fn: (fx: GatewayFixture) => Promise<void>): Promise<void> {
  const fx = await startGateway();
  try {
    await fn(fx);
  } finally {
    await fx.close();
  }
}

Deno.test("console sign-in sets an HttpOnly, SameSite=Strict cookie at /console and never shows the token", async () => {
  await withGateway(async (fx) => {
    const bad = await fx.request("/console/session", {
      method: "POST",
      headers: { origin: ORIGIN },
      body: new URLSearchParams({ token: "not-a-token" }),
    });
    const badText = await bad.text();
    assert.equal(bad.status, 401);
    assert.equal(bad.headers.get("set-cookie"), null);
    assert.match(badText, /id="sign-in-error"[^>]*>The token is not valid/);

    const { setCookie, cookie } = await signIn(fx, fx.adminToken);
    assert.match(setCookie, /^keycard_console=[A-Za-z0-9_-]{43};/);
    assert.match(setCookie, /; HttpOnly/);
    assert.match(setCookie, /; SameSite=Strict/);
    assert.match(setCookie, /; Path=\/console(;|$)/);
    assert.ok(!setCookie.includes(fx.adminToken));
    assert.doesNotMatch(setCookie, /; Secure/, "plain http: no Secure flag");
    const proxied = await fx.request("/console/session", {
      method: "POST",
      headers: { origin: ORIGIN, "x-forwarded-proto": "https" },
      body: new URLSearchParams({ token: fx.adminToken }),
    });
    await proxied.body?.cancel();
    assert.match(proxied.headers.get("set-cookie") ?? "", /; Secure/, "behind a TLS-terminating proxy: Secure");
    const page = await (await fx.request("/console/plugins", { headers: { cookie } })).text();
    assert.ok(!page.includes(fx.adminToken), "the token is not in the page");
    assert.match(page, /id="whoami"[^>]*>admin</);
  });
});

Deno.test("console pages without a session send a browser to sign in and refuse mutations with 401", async () => {
  await withGateway(async (fx) => {
    for (
      const path of [
        "/console/plugins",
        "/console/audit",
        "/console/policies",
        "/console/health",
        "/console/playground",
      ]
    ) {
      const response = await fx.request(path);
      await response.body?.cancel();
      assert.equal(response.status, 303, path);
      assert.equal(response.headers.get("location"), "/console/sign-in");
    }
    const stream = await fx.request("/console/audit/stream");
    await stream.body?.cancel();
    assert.equal(stream.status, 401);
    const forged = await fx.request("/console/policies/apply", {
      method: "POST",
      headers: { origin: ORIGIN, cookie: "keycard_console=" + "A".repeat(43) },
      body: new URLSearchParams({ name: "x.cedar", text: "permit(principal, action, resource);" }),
    });
    await forged.body?.cancel();
    assert.equal(forged.status, 401);
    assert.ok(!fx.gateway.services.policies.sources().some((s) => s.name === "x.cedar"));
  });
});

Deno.test("console mutations need the session's CSRF token and a same-origin request", async () => {
  await withGateway(async (fx) => {
    const browser = await signIn(fx, fx.adminToken);
    const fields = { name: "csrf.cedar", text: 'permit(principal, action == Action::"clock.now", resource);' };
    const attempts: [string, RequestInit][] = [
      ["no CSRF token", { headers: { origin: ORIGIN, cookie: browser.cookie }, body: new URLSearchParams(fields) }],
      ["a wrong CSRF token", {
        headers: { origin: ORIGIN, cookie: browser.cookie },
        body: new URLSearchParams({ ...fields, _csrf: browser.csrf.replace(/^./, (ch) => (ch === "A" ? "B" : "A")) }),
      }],
      ["a cross-site Origin", {
        headers: { origin: "https://evil.example", cookie: browser.cookie },
        body: new URLSearchParams({ ...fields, _csrf: browser.csrf }),
      }],
      ["Sec-Fetch-Site cross-site", {
        headers: { origin: ORIGIN, "sec-fetch-site": "cross-site", cookie: browser.cookie },
        body: new URLSearchParams({ ...fields, _csrf: browser.csrf }),
      }],
      ["Sec-Fetch-Site same-site (a sibling subdomain)", {
        headers: { origin: ORIGIN, "sec-fetch-site": "same-site", cookie: browser.cookie },
        body: new URLSearchParams({ ...fields, _csrf: browser.csrf }),
      }],
      ["no Origin and no Sec-Fetch-Site", {
        headers: { cookie: browser.cookie },
        body: new URLSearchParams({ ...fields, _csrf: browser.csrf }),
      }],
      ['Origin "null"', {
        headers: { origin: "null", cookie: browser.cookie },
        body: new URLSearchParams({ ...fields, _csrf: browser.csrf }),
      }],
    ];
    for (const [what, init] of attempts) {
      const response = await fx.request("/console/policies/apply", { method: "POST", ...init });
      const text = await response.text();
      assert.equal(response.status, 403, what);
      assert.match(text, /id="error-message"/, what);
      assert.equal(response.headers.get("content-security-policy"), CONSOLE_CSP, what);
    }
    assert.ok(!fx.gateway.services.policies.sources().some((s) => s.name === "csrf.cedar"), "nothing applied");

    // Sign-in itself is refused cross-site (no login CSRF).
    const crossSignIn = await fx.request("/console/session", {
      method: "POST",
      headers: { origin: "https://evil.example" },
      body: new URLSearchParams({ token: fx.adminToken }),
    });
    await crossSignIn.body?.cancel();
    assert.equal(crossSignIn.status, 403);
    assert.equal(crossSignIn.headers.get("set-cookie"), null);

    // The same request, from this origin with the token, goes through; so does the header form of the token.
    const ok = await post(fx, "/console/policies/apply", browser, fields, { "sec-fetch-site": "same-origin" });
    await ok.body?.cancel();
    assert.equal(ok.status, 303);
    assert.ok(fx.gateway.services.policies.sources().some((s) => s.name === "csrf.cedar"));
  });
});

Deno.test("console sign-in starts a fresh session and ends the one the request came with (no fixation)", async () => {
  await withGateway(async (fx) => {
    const planted = await signIn(fx, fx.viewerToken);
    const admin = await signIn(fx, fx.adminToken, planted.cookie);
    assert.notEqual(admin.cookie, planted.cookie);
    const old = await fx.request("/console/plugins", { headers: { cookie: planted.cookie } });
    await old.body?.cancel();
    assert.equal(old.status, 303, "the planted session is gone");
    const page = await (await fx.request("/console/plugins", { headers: { cookie: admin.cookie } })).text();
    assert.match(page, /id="whoami"[^>]*>admin</);
  });
});

Deno.test("console sign-out ends the session: its cookie no longer opens a page or mutates", async () => {
  await withGateway(async (fx) => {
    const browser = await signIn(fx, fx.adminToken);
    const out = await post(fx, "/console/sign-out", browser, {});
    await out.body?.cancel();
    assert.equal(out.status, 303);
    assert.match(out.headers.get("set-cookie") ?? "", /keycard_console=;.*Max-Age=0/);
    const page = await fx.request("/console/plugins", { headers: { cookie: browser.cookie } });
    await page.body?.cancel();
    assert.equal(page.status, 303);
    const again = await post(fx, "/console/policies/apply", browser, { name: "late.cedar", text: "" });
    await again.body?.cancel();
    assert.equal(again.status, 401);
  });
});

Deno.test("console failed sign-ins count against the auth throttle like the API's", async () => {
  await withGateway(async (fx) => {
    const statuses: number[] = [];
    for (let i = 0; i < 40 && !statuses.includes(429); i++) {
      const response = await fx.requestFrom("203.0.113.9", "/console/session", {
        method: "POST",
        headers: { origin: ORIGIN },
        body: new URLSearchParams({ token: `wrong-${i}` }),
      });
      await response.body?.cancel();
      statuses.push(response.status);
      if (response.status === 429) assert.ok(Number(response.headers.get("retry-after")) > 0);
    }
    assert.ok(statuses.includes(429), `throttled within 40 failures: ${statuses.join(",")}`);
  });
});

Deno.test("console viewer sees no install, invoke or apply form, and posting anyway is refused with 403", async () => {
  await withGateway(async (fx) => {
    const viewer = await signIn(fx, fx.viewerToken);
    for (const path of ["/console/plugins", "/console/plugins/hello", "/console/policies"]) {
      const text = await (await fx.request(path, { headers: { cookie: viewer.cookie } })).text();
      assert.ok(!text.includes('id="install-form"'), path);
      assert.ok(!text.includes('id="invoke-form"'), path);
      assert.ok(!text.includes('id="policy-form"'), path);
      assert.match(text, /id="not-permitted"/, path);
    }
    const apply = await post(fx, "/console/policies/apply", viewer, { name: "viewer.cedar", text: "" });
    assert.equal(apply.status, 403);
    assert.match(await apply.text(), /may not policy\.write/);
    assert.ok(!fx.gateway.services.policies.sources().some((s) => s.name === "viewer.cedar"));
    const invoke = await post(fx, "/console/plugins/hello/invoke", viewer, { export: "greet", input: "x" });
    await invoke.body?.cancel();
    assert.equal(invoke.status, 403);

    const form = new FormData();
    form.append("_csrf", viewer.csrf);
    form.append("name", "viewerplug");
    form.append("wasm", new Blob([await watFixture("http_echo") as Uint8Array<ArrayBuffer>]), "echo.wasm");
    form.append("manifest", echoManifest("viewerplug"));
    const install = await fx.request("/console/plugins/install", {
      method: "POST",
      headers: { origin: ORIGIN, cookie: viewer.cookie },
      body: form,
    });
    await install.body?.cancel();
    assert.equal(install.status, 403);
    assert.equal(await fx.gateway.services.plugins.get("viewerplug"), undefined);

    // The caller role may invoke (Cedar's api.caller) but not install: the page follows.
    const caller = await signIn(fx, fx.callerToken);
    const detail = await (await fx.request("/console/plugins/hello", { headers: { cookie: caller.cookie } })).text();
    assert.match(detail, /id="not-permitted"/, "caller may not plugin.read");
  });
});

Deno.test("console answers every page, error and asset with the strict CSP and no inline script or style", async () => {
  await withGateway(async (fx) => {
    const browser = await signIn(fx, fx.adminToken);
    const paths = [
      "/console/sign-in",
      "/console/plugins",
      "/console/plugins/stamp",
      "/console/plugins/nosuch",
      "/console/audit",
      "/console/policies",
      "/console/health",
      "/console/playground",
      "/console/nowhere",
      "/console/assets/console.js",
      "/console/assets/console.css",
    ];
    for (const path of paths) {
      const response = await fx.request(path, { headers: { cookie: browser.cookie } });
      const text = await response.text();
      assert.equal(response.headers.get("content-security-policy"), CONSOLE_CSP, path);
      assert.equal(response.headers.get("x-content-type-options"), "nosniff", path);
      if (response.headers.get("content-type")?.startsWith("text/html")) {
        assert.ok(!/<script(?![^>]*\bsrc=)/.test(text), `${path}: no inline script`);
        assert.ok(!/<style|\sstyle=/.test(text), `${path}: no inline style`);
        assert.ok(!/\son[a-z]+=/.test(text), `${path}: no inline handlers`);
      }
    }
    const missing = await fx.request("/console/assets/../../deno.json", { headers: { cookie: browser.cookie } });
    assert.notEqual(missing.status, 200);
    await missing.body?.cancel();
  });
});

Deno.test("console escapes plugin output, audit fields and policy text that contain <script>", async () => {
  await withGateway(async (fx) => {
    const browser = await signIn(fx, fx.adminToken);
    const evil = "<script>alert(1)</script>";
    const invoke = await post(fx, "/console/plugins/hello/invoke", browser, { export: "echo", input: evil });
    const invoked = await invoke.text();
    assert.equal(invoke.status, 200);
    assert.ok(!invoked.includes(evil));
    assert.match(invoked, /id="invoke-output">&lt;script&gt;alert\(1\)&lt;\/script&gt;</);

    fx.gateway.services.audit.record({
      time: new Date().toISOString(),
      callId: `"><script>x</script>`,
      plugin: evil,
      version: "1.0.0",
      action: `fs.read${evil}`,
      resource: `File::"${evil}"`,
      decision: "deny",
      policies: [],
      errors: [],
      caller: evil,
      durationUs: 1,
      reason: evil,
    });
    const audit = await (await fx.request("/console/audit", { headers: { cookie: browser.cookie } })).text();
    assert.ok(!audit.includes("<script>"), "no raw script tag in the audit page");
    assert.ok(audit.includes("&lt;script&gt;alert(1)&lt;/script&gt;"));

    const applied = await post(fx, "/console/policies/apply", browser, {
      name: "escaped.cedar",
      text: `// ${evil}\npermit(principal, action == Action::"clock.now", resource);\n`,
    });
    await applied.body?.cancel();
    assert.equal(applied.status, 303);
    const policies = await (await fx.request("/console/policies", { headers: { cookie: browser.cookie } })).text();
    assert.ok(!policies.includes(evil));
    assert.ok(policies.includes("// &lt;script&gt;alert(1)&lt;/script&gt;"));
  });
});

Deno.test("console invoke shows the output, the timing and the host calls of that call with their decisions", async () => {
  await withGateway(async (fx) => {
    const browser = await signIn(fx, fx.adminToken);
    const response = await post(fx, "/console/plugins/stamp/invoke", browser, { export: "stamp", input: "hi" });
    const text = await response.text();
    assert.equal(response.status, 200);
    assert.match(text, /id="invoke-result" class="card" data-outcome="ok"/);
    assert.match(text, /id="invoke-timing">\d+\.\d ms</);
    for (const action of ["log.write", "clock.now", "random.get"]) {
      assert.match(
        text,
        new RegExp(`data-testid="host-call" data-action="${action.replace(".", "\\.")}" data-decision="allow"`),
      );
    }
    const audit = await (await fx.request("/console/audit", { headers: { cookie: browser.cookie } })).text();
    assert.match(audit, /<g data-testid="chart-row" data-plugin="stamp" data-action="clock\.now" data-allow="1"/);
    const bar =
      /<a href="(\/console\/audit\?plugin=stamp&amp;action=clock\.now&amp;decision=allow[^"]*)" data-testid="chart-bar"/
        .exec(audit);
    assert.ok(bar, "a bar links to its events");
    const drill = await (await fx.request(bar[1]!.replaceAll("&amp;", "&"), { headers: { cookie: browser.cookie } }))
      .text();
    const items = [...drill.matchAll(/data-testid="audit-event" data-plugin="([^"]*)" data-action="([^"]*)"/g)];
    assert.ok(items.length >= 1);
    assert.ok(items.every(([, plugin, action]) => plugin === "stamp" && action === "clock.now"));
    const failed = await post(fx, "/console/plugins/trap/invoke", browser, { export: "unreachable", input: "" });
    const failedText = await failed.text();
    assert.equal(failed.status, 502);
    assert.match(failedText, /data-outcome="error"/);
    assert.match(failedText, /id="invoke-error"/);
  });
});

Deno.test("console plugin page: the limits in force, the report of a /v1 install kept across a restart, none for a configured plugin", async () => {
  const fx = await startGateway();
  let again: Awaited<ReturnType<typeof createGateway>> | undefined;
  try {
    let browser = await signIn(fx, fx.adminToken);
    const pageOf = async (request: GatewayFixture["request"], name: string) =>
      await expectOk(await request(`/console/plugins/${name}`, { headers: { cookie: browser.cookie } }), name);
    const limit = (text: string, key: string) =>
      new RegExp(`data-testid="limit" data-limit="${key}" data-value="(\\d+)"`).exec(text)?.[1];

    // bomb's manifest lowers memory to 64 pages; the fixture's keycard.yaml sets the deadline and instances.
    const bomb = await pageOf(fx.request, "bomb");
    assert.equal(limit(bomb, "memoryPages"), "64");
    assert.match(bomb, /64 pages of 64 KiB \(4,096 KiB\)/);
    assert.equal(limit(bomb, "deadlineMs"), "500");
    assert.equal(limit(bomb, "instances"), "1");
    assert.equal(limit(bomb, "queue"), "2");
    assert.equal(limit(bomb, "hostCalls"), "10000");
    assert.match(bomb, /id="no-report"/);

    // Installed through the API, not the console: the console shows the report the install passed.
    await expectOk(
      await fx.request(
        "/v1/plugins/echoer",
        asAdmin(fx, { method: "PUT", body: pluginForm(await watFixture("http_echo"), echoManifest("echoer")) }),
      ),
      "install echoer",
    );
    const echoer = await pageOf(fx.request, "echoer");
    assert.match(echoer, /id="install-report" class="card" data-passed="true"/);
    assert.match(echoer, /data-testid="check-row" data-check="[^"]+" data-passed="true"/);
    assert.doesNotMatch(echoer, /id="no-report"/);
    // With the least grant of what the run did: echo needs nothing, so a manifest granting clock.now is warned of.
    assert.match(echoer, /<pre id="proposal-yaml">grants: \[\]/);
    const wide = echoManifest("echowide").replace(
      "capabilities: []",
      "capabilities: [clock.now]\ngrants:\n  - clock.now: {}",
    );
    await expectOk(
      await fx.request(
        "/v1/plugins/echowide",
        asAdmin(fx, { method: "PUT", body: pluginForm(await watFixture("http_echo"), wide) }),
      ),
      "install echowide",
    );
    assert.match(await pageOf(fx.request, "echowide"), /id="proposal-warnings"[^>]*>[^<]*clock\.now/);
    const api = JSON.parse(await expectOk(await fx.request("/v1/plugins/echoer", asAdmin(fx)), "GET echoer"));
    assert.equal(api.report.passed, true);
    assert.equal(api.limits.deadlineMs, 500);
    const list = JSON.parse(await expectOk(await fx.request("/v1/plugins", asAdmin(fx)), "GET /v1/plugins"));
    assert.ok(list.plugins.every((plugin: { report?: unknown }) => plugin.report === undefined), "lists stay small");

    // A restart on the same data dir: the report is read back from the registry.
    await fx.gateway.close();
    const { config } = await loadConfig({ path: fx.configPath, env: {} });
    again = await createGateway(config, { adminToken: fx.adminToken });
    const gateway = again;
    const request: GatewayFixture["request"] = async (path, init) =>
      await gateway.app.request(new URL(path, ORIGIN).href, init);
    browser = await signIn({ ...fx, gateway, request }, fx.adminToken);
    const after = await pageOf(request, "echoer");
    assert.match(after, /id="install-report" class="card" data-passed="true"/);
    assert.match(await pageOf(request, "hello"), /id="no-report"/);
  } finally {
    await again?.close();
    await fx.close();
  }
});

Deno.test("console invoke counts every host call, repeats summed by the audit trail included", async () => {
  const manifest = "name: flood\nversion: 1.0.0\nexports:\n  - name: flood\ncapabilities: [clock.now]\n" +
    "grants:\n  - clock.now: {}\n";
  const fx = await startGateway({ plugins: [{ name: "flood", wasm: await watFixture("clock_flood"), manifest }] });
  try {
    const browser = await signIn(fx, fx.adminToken);
    // 25 identical decisions in one call: the first few are events of their own, the rest one summed event.
    const input = new Uint8Array(8);
    new DataView(input.buffer).setBigUint64(0, 25n, true);
    const response = await post(fx, "/console/plugins/flood/invoke", browser, {
      export: "flood",
      input: new TextDecoder().decode(input),
    });
    const text = await expectOk(response, "invoke flood");
    assert.match(text, /<h3>Host calls \(25\)<\/h3>/);
    const counts = [...text.matchAll(/data-testid="host-call" data-action="clock\.now"[\s\S]*?class="count">(\d+)</g)]
      .map((match) => Number(match[1]));
    assert.ok(counts.length > 1 && counts.length < 25, `events: ${counts.join(", ")}`);
    assert.equal(counts.reduce((sum, count) => sum + count, 0), 25);
    assert.ok(counts.some((count) => count > 1), "a summed event shows its count");
  } finally {
    await fx.close();
  }
});

Deno.test("console audit chart: allow and deny per plugin and action over a chosen range, each bar opening exactly its events", async () => {
  await withGateway(async (fx) => {
    const browser = await signIn(fx, fx.adminToken);
    for (let i = 0; i < 3; i++) {
      await (await post(fx, "/console/plugins/stamp/invoke", browser, { export: "stamp", input: "x" })).body?.cancel();
    }
    // Outside stamp's fs.read grant: denied.
    const denied = await post(fx, "/console/plugins/stamp/invoke", browser, {
      export: "read_file",
      input: "/etc/passwd",
    });
    await denied.body?.cancel();
    const audit = async (query: string) =>
      await (await fx.request(`/console/audit${query}`, { headers: { cookie: browser.cookie } })).text();

    const chart = await audit("?range=15m");
    assert.match(chart, /<svg id="audit-chart" class="chart"[^>]*data-range="15m" data-bucket-ms="30000"/);
    const row = (text: string, action: string) =>
      new RegExp(
        `data-testid="chart-row" data-plugin="stamp" data-action="${action}" data-allow="(\\d+)" data-deny="(\\d+)"`,
      )
        .exec(text)?.slice(1).map(Number);
    assert.deepEqual(row(chart, "clock\\.now"), [3, 0]);
    assert.deepEqual(row(chart, "fs\\.read"), [0, 1]);
    assert.match(chart, /<option value="15m" selected="">last 15m<\/option>/);

    // Every allow bar of clock.now opens exactly its events: their counts add up to the bar's.
    const bars = [
      ...chart.matchAll(/<a href="([^"]+)" data-testid="chart-bar" data-decision="allow" data-count="(\d+)"/g),
    ]
      .filter(([, href]) => href!.includes("action=clock.now"));
    assert.ok(bars.length >= 1);
    let total = 0;
    for (const [, href, count] of bars) {
      assert.match(href!, /until=/);
      const drill = await audit(href!.replaceAll("&amp;", "&").slice("/console/audit".length));
      const items = [
        ...drill.matchAll(
          /data-testid="audit-event" data-plugin="stamp" data-action="clock\.now" data-decision="allow"/g,
        ),
      ];
      assert.equal(items.length, Number(count), href);
      assert.doesNotMatch(drill, /data-testid="audit-event" data-plugin="(?!stamp)|data-decision="deny"/);
      assert.match(drill, /id="audit-window"/);
      total += Number(count);
    }
    assert.equal(total, 3);

    const bad = await fx.request("/console/audit?range=2d", { headers: { cookie: browser.cookie } });
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /Chart range must be one of 15m, 1h, 6h, 24h, got &quot;2d&quot;/);
  });
});

Deno.test("console install runs conformance: a failing report is shown and nothing installed; a passing one goes live", async () => {
  await withGateway(async (fx) => {
    const browser = await signIn(fx, fx.adminToken);
    const upload = async (name: string, wasm: Uint8Array, manifest: string) => {
      const form = new FormData();
      form.append("_csrf", browser.csrf);
      form.append("name", "");
      form.append("wasm", new Blob([wasm as Uint8Array<ArrayBuffer>]), `${name}.wasm`);
      form.append("manifestFile", new Blob([manifest]), "plugin.yaml");
      return await fx.request("/console/plugins/install", {
        method: "POST",
        headers: { origin: ORIGIN, cookie: browser.cookie },
        body: form,
      });
    };
    const bad = await upload(
      "trap2",
      await watFixture("trap"),
      "name: trap2\nversion: 1.0.0\nexports:\n  - name: unreachable\ncapabilities: []\n",
    );
    const badText = await bad.text();
    assert.equal(bad.status, 422, badText.slice(0, 500));
    assert.match(badText, /id="install-report" class="card" data-passed="false"/);
    assert.match(badText, /data-testid="check-row" data-check="[^"]+" data-passed="false"/);
    assert.equal(await fx.gateway.services.plugins.get("trap2"), undefined);

    const check = new FormData();
    check.append("_csrf", browser.csrf);
    check.append("name", "stampcheck");
    check.append("mode", "check");
    check.append("wasm", new Blob([await examplePlugin("stamp") as Uint8Array<ArrayBuffer>]), "stamp.wasm");
    const checked = await fx.request("/console/plugins/install", {
      method: "POST",
      headers: { origin: ORIGIN, cookie: browser.cookie },
      body: check,
    });
    const checkedText = await checked.text();
    assert.equal(checked.status, 200, checkedText.slice(0, 500));
    assert.match(checkedText, /id="install-outcome"[^>]*>Checked only, not installed/);
    assert.match(checkedText, /<pre id="proposal-yaml">grants:/);
    assert.equal(await fx.gateway.services.plugins.get("stampcheck"), undefined);

    const good = await upload("echoer", await watFixture("http_echo"), echoManifest("echoer"));
    const goodText = await good.text();
    assert.equal(good.status, 201, goodText.slice(0, 500));
    assert.match(goodText, /data-passed="true"/);
    assert.match(goodText, /id="install-outcome"[^>]*>Installed echoer 1\.0\.0</);
    assert.equal((await fx.gateway.services.plugins.get("echoer"))?.state, "loaded");
    const list = await (await fx.request("/console/plugins", { headers: { cookie: browser.cookie } })).text();
    assert.match(list, /data-testid="plugin-row" data-plugin="echoer"/);
  });
});

Deno.test("console policy editor: invalid text gets line and column and applies nothing; valid text plans and applies", async () => {
  await withGateway(async (fx) => {
    const browser = await signIn(fx, fx.adminToken);
    const before = fx.gateway.services.policies.version();
    const validate = (text: string) =>
      fx.request("/console/policies/validate", {
        method: "POST",
        headers: {
          origin: ORIGIN,
          cookie: browser.cookie,
          "x-csrf-token": browser.csrf,
          "content-type": "application/json",
        },
        body: JSON.stringify({ name: "edit.cedar", text }),
      });
    const invalid = await (await validate("permit(principal, action, resource)\nwhen { nope };")).json();
    assert.equal(invalid.valid, false);
    assert.equal(typeof invalid.line, "number");
    assert.equal(typeof invalid.column, "number");
    assert.equal(fx.gateway.services.policies.version(), before, "validating changes nothing");
    const valid = await (await validate('permit(principal, action == Action::"clock.now", resource);')).json();
    assert.equal(valid.valid, true);
    assert.equal(typeof valid.plan.totals.decisions, "number");

    const refused = await post(fx, "/console/policies/apply", browser, { name: "edit.cedar", text: "permit(" });
    const refusedText = await refused.text();
    assert.equal(refused.status, 400);
    assert.match(refusedText, /id="policy-error"[^>]*data-state="invalid"[^>]*>[^<]*line \d+/);
    assert.ok(!fx.gateway.services.policies.sources().some((s) => s.name === "edit.cedar"));
    assert.equal(fx.gateway.services.policies.version(), before);

    const badName = await post(fx, "/console/policies/apply", browser, { name: "../x", text: "" });
    await badName.body?.cancel();
    assert.equal(badName.status, 400);
  });
});

Deno.test("console audit stream, authenticated by the session cookie, delivers a new decision live", async () => {
  await withGateway(async (fx) => {
    const browser = await signIn(fx, fx.adminToken);
    const controller = new AbortController();
    const response = await fx.request("/console/audit/stream?plugin=stamp", {
      headers: { cookie: browser.cookie },
      signal: controller.signal,
    });
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/);
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    const until = async (pattern: RegExp) => {
      while (!pattern.test(buffer)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`Stream ended before ${pattern}: ${buffer}`);
        buffer += value;
      }
    };
    try {
      await within(10_000, "ready event", until(/event: ready/));
      const invoke = await post(fx, "/console/plugins/stamp/invoke", browser, { export: "stamp", input: "x" });
      await invoke.body?.cancel();
      await within(10_000, "decision event", until(/event: decision\ndata: .*"plugin":"stamp"/));
    } finally {
      controller.abort();
      await reader.cancel().catch(() => {});
    }
  });
});

Deno.test("console audit streams are bounded per session: past the bound 429, and a closed stream frees its place", async () => {
  await withGateway(async (fx) => {
    const browser = await signIn(fx, fx.adminToken);
    const streams: { controller: AbortController; reader: ReadableStreamDefaultReader<Uint8Array> }[] = [];
    const open = async () => {
      const controller = new AbortController();
      const response = await fx.request("/console/audit/stream", {
        headers: { cookie: browser.cookie },
        signal: controller.signal,
      });
      return { controller, response };
    };
    try {
      for (let i = 0; i < 4; i++) {
        const { controller, response } = await open();
        assert.equal(response.status, 200);
        const reader = response.body!.getReader();
        await within(10_000, "ready event", reader.read()); // the stream is running, so counted
        streams.push({ controller, reader });
      }
      const refused = await open();
      assert.equal(refused.response.status, 429);
      await refused.response.body?.cancel();

      const first = streams.shift()!;
      first.controller.abort();
      await first.reader.cancel().catch(() => {});
      // The place is freed when the stream's loop ends: poll, bounded.
      let again: Awaited<ReturnType<typeof open>> | undefined;
      for (let attempt = 0; attempt < 100; attempt++) {
        again = await open();
        if (again.response.status === 200) break;
        await again.response.body?.cancel();
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.equal(again?.response.status, 200);
      streams.push({ controller: again!.controller, reader: again!.response.body!.getReader() });
    } finally {
      for (const { controller, reader } of streams) {
        controller.abort();
        await reader.cancel().catch(() => {});
      }
    }
  });
});

Deno.test("console playground decides a request with the deciding policies' text; health shows calls and p50/p99", async () => {
  await withGateway(async (fx) => {
    const browser = await signIn(fx, fx.adminToken);
    const invoke = await post(fx, "/console/plugins/stamp/invoke", browser, { export: "stamp", input: "x" });
    await invoke.body?.cancel();

    const picked = await (await fx.request("/console/playground?event=0", { headers: { cookie: browser.cookie } }))
      .text();
    assert.match(picked, /data-testid="pg-event"/);
    const decided = await post(fx, "/console/playground", browser, {
      principal: JSON.stringify({
        type: "Plugin",
        id: "stamp",
        attrs: { name: "stamp", version: "1.0.0", sha256: "", tenant: "" },
      }),
      action: "clock.now",
      resource: JSON.stringify({ type: "Runtime", id: "clock" }),
      context: JSON.stringify({ caller: "" }),
    });
    const decidedText = await decided.text();
    assert.equal(decided.status, 200, decidedText.slice(0, 300));
    assert.match(decidedText, /id="pg-result" class="card" data-decision="allow"/);
    assert.match(decidedText, /data-testid="pg-policy" data-id="grant\.stamp\.\d+"/);
    assert.match(decidedText, /<pre>[^<]*permit/);

    const bad = await post(fx, "/console/playground", browser, { principal: "{", action: "x", resource: "{}" });
    const badText = await bad.text();
    assert.equal(bad.status, 400);
    assert.match(badText, /id="pg-error"[^>]*>&quot;principal&quot; is not JSON/);
    const deep = await post(fx, "/console/playground", browser, {
      principal: JSON.stringify({ type: "Client", id: "x" }),
      action: "plugin.read",
      resource: JSON.stringify({ type: "Api", id: "keycard" }),
      context: '{"a":'.repeat(200) + "1" + "}".repeat(200),
    });
    assert.equal(deep.status, 400, "nesting is bounded before Cedar sees it");
    assert.match(await deep.text(), /&quot;context&quot; nests deeper than 32/);

    // A host call as a plugin makes it: an HTTP fetch decided by name, then by address (private: denied).
    const permit = 'permit (principal == Plugin::"stamp", action == Action::"http.request", resource);\n';
    await expectOk(
      await fx.request("/v1/policies/http.cedar", asAdmin(fx, { method: "PUT", body: permit })),
      "put http.cedar",
    );
    const explained = await post(fx, "/console/playground/explain", browser, {
      call: "plugin: stamp\nhttp.request: https://api.example.com/v1\nip: 10.0.0.5\n",
    });
    const explainedText = await expectOk(explained, "explain");
    assert.match(explainedText, /id="pg-explanation" class="card" data-decision="deny"/);
    assert.match(explainedText, /data-testid="pg-phase" data-phase="name" data-decision="allow"/);
    assert.match(explainedText, /data-testid="pg-phase" data-phase="address" data-decision="deny"/);
    assert.match(explainedText, /data-testid="pg-policy" data-id="base\.http\.private-addresses"/);
    const unreadable = await post(fx, "/console/playground/explain", browser, { call: "plugin: stamp\nbogus: 1\n" });
    assert.equal(unreadable.status, 400);
    assert.match(await unreadable.text(), /id="pg-call-error"[^>]*>[^<]*bogus/);

    const health = await (await fx.request("/console/health", { headers: { cookie: browser.cookie } })).text();
    const row = /<tr data-plugin="stamp">([\s\S]*?)<\/tr>/.exec(health)?.[1] ?? "";
    assert.match(row, /class="calls">[1-9]/);
    assert.match(row, /class="p50">\d+\.\d+ ms/);
    assert.match(row, /class="p99">\d+\.\d+ ms/);

    const viewer = await signIn(fx, fx.viewerToken);
    const refused = await post(fx, "/console/playground", viewer, { principal: "{}", action: "x", resource: "{}" });
    await refused.body?.cancel();
    assert.equal(refused.status, 403);
    const refusedExplain = await post(fx, "/console/playground/explain", viewer, { call: "plugin: stamp\n" });
    await refusedExplain.body?.cancel();
    assert.equal(refusedExplain.status, 403);
  });
});
