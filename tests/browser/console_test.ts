// The operator console (issue 15) in a real browser: Debian's Chromium, driven by puppeteer-core, against keycard
// started as the README starts it (`deno task start`, tests/e2e/_server.ts) on 127.0.0.1. The steps follow the
// issue: sign in, see the example plugins, install one by upload and read its conformance report, invoke it and see
// its host calls, watch its audit events arrive live, edit a policy with an error (shown inline, nothing applied),
// fix it and apply, check that a viewer cannot mutate, sign out. Every page must carry the CSP header and log no
// console error, exception or CSP violation. The screenshots land in tests/browser/screenshots/ (the README shows
// them).
import assert from "node:assert/strict";
import { join } from "node:path";
import type { HTTPResponse, Page } from "puppeteer-core";
import { browserAvailability, Chromium, screenshot, type WatchedPage } from "./_browser.ts";
import {
  bearer,
  echoManifest,
  EXAMPLE_PLUGINS,
  type Keycard,
  makeSite,
  pluginDir,
  REPO,
  startKeycard,
  within,
} from "../e2e/_server.ts";
import { watFixture } from "../_test_utils.ts";

const { ignore, suffix } = await browserAvailability();

/** Bound of one step, whatever it waits on. */
const STEP_BOUND = 60_000;

/** An operator policy that lets the `viewer` role read (the shipped api.cedar grants it nothing). */
const VIEWER_CEDAR = `// Viewers may look, not change.
@id("console.viewer")
permit (
  principal,
  action in [Action::"plugin.read", Action::"policy.read", Action::"audit.read"],
  resource
)
when { principal.roles.contains("viewer") };
`;

/** The operator policy the suite edits in the console: a forbid that matches no client. */
const EDITED_CEDAR = `// Edited by the browser suite.
@id("console.edited")
forbid (principal, action == Action::"plugin.remove", resource)
when { principal.roles.contains("nobody") };
`;

/** The same file fixed: stamp may no longer draw random bytes (a narrowing the plan shows before it applies). */
const FIXED_CEDAR = `// Edited by the browser suite: stamp may no longer draw random bytes.
@id("console.edited")
forbid (principal == Plugin::"stamp", action == Action::"random.get", resource);
`;

/** A configured plugin with no build: it cannot load, and the console shows it failed with its error. */
const BROKEN_MANIFEST = "name: console-broken\nversion: 1.0.0\nexports:\n  - name: run\ncapabilities: []\n";

/** What the console may never serve without: a CSP that allows only the gateway's own scripts. */
function assertStrictCsp(response: HTTPResponse | Response | null, where: string): void {
  assert.ok(response, `${where}: no response`);
  const csp = response instanceof Response
    ? response.headers.get("content-security-policy")
    : response.headers()["content-security-policy"];
  assert.ok(csp, `${where}: no Content-Security-Policy header`);
  assert.match(csp, /default-src 'self'/, `${where}: ${csp}`);
  assert.match(csp, /script-src 'self'(;|$)/, `${where}: scripts beyond 'self' in ${csp}`);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/, `${where}: ${csp}`);
  assert.match(csp, /frame-ancestors 'none'/, `${where}: ${csp}`);
}

/** No console error, exception or CSP violation so far; clears the list for the next step. */
function assertNoProblems(watched: WatchedPage, where: string): void {
  const lines = watched.problems.take();
  assert.deepEqual(lines, [], `${where}: the page logged problems`);
}

/** The response's status, or a failure quoting the page's #error-message (what the console said). */
async function assertStatus(response: HTTPResponse, status: number): Promise<void> {
  if (response.status() === status) return;
  const body = await response.text().catch(() => "");
  const message = /id="error-message"[^>]*>([^<]*)</.exec(body)?.[1] ?? body.slice(0, 300);
  assert.fail(
    `${response.request().method()} ${response.url()}: expected ${status}, got ${response.status()}: ${message}`,
  );
}

/** Text of the first element matching `selector` (trimmed), failing when there is none. */
async function text(page: Page, selector: string): Promise<string> {
  return (await page.$eval(selector, (element) => element.textContent ?? "")).trim();
}

/** Attribute of the first element matching `selector`. */
async function attribute(page: Page, selector: string, name: string): Promise<string | null> {
  return await page.$eval(selector, (element, name) => element.getAttribute(name), name);
}

/** Path (with query) the page is on. */
function pathOf(page: Page): string {
  const url = new URL(page.url());
  return url.pathname + url.search;
}

/** Clicks `selector` and waits for the navigation it starts; returns the response of the page navigated to. */
async function submit(page: Page, selector: string): Promise<HTTPResponse> {
  const [response] = await Promise.all([page.waitForNavigation({ waitUntil: "load" }), page.click(selector)]);
  assert.ok(response, `clicking ${selector} navigated nowhere`);
  return response;
}

/** Replaces a textarea's or input's value as a person would: select all, then type. */
async function retype(page: Page, selector: string, value: string): Promise<void> {
  await page.click(selector);
  await page.keyboard.down("Control");
  await page.keyboard.press("a");
  await page.keyboard.up("Control");
  await page.keyboard.press("Backspace");
  await page.type(selector, value);
}

/** The policy set as the API reports it: what "nothing applied" is checked against. */
async function policySet(kc: Keycard): Promise<{ version: unknown; sources: { name: string; text?: string }[] }> {
  const response = await kc.fetch("/v1/policies", { headers: bearer(kc.adminToken) });
  assert.equal(response.status, 200, "GET /v1/policies");
  return await response.json();
}

/** Every installed name@version#sha256 by the API. */
async function pluginList(kc: Keycard): Promise<string[]> {
  const response = await kc.fetch("/v1/plugins", { headers: bearer(kc.adminToken) });
  assert.equal(response.status, 200, "GET /v1/plugins");
  const { plugins } = await response.json() as { plugins: { name: string; version: string; sha256?: string }[] };
  return plugins.map((p) => `${p.name}@${p.version}#${p.sha256}`).sort();
}

/** Status of a plugin by the API. */
async function pluginStatus(kc: Keycard, name: string): Promise<number> {
  const response = await kc.fetch(`/v1/plugins/${name}`, { headers: bearer(kc.adminToken) });
  await response.body?.cancel();
  return response.status;
}

Deno.test({
  name: `the console in Chromium: sign in, plugins, install, invoke, live audit, policies, viewer, sign out${suffix}`,
  ignore,
  // puppeteer keeps its pipe and websocket open across steps; the browser and the server are closed in finally.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    await using site = await makeSite();
    await Deno.writeTextFile(join(site.policiesDir, "console-viewer.cedar"), VIEWER_CEDAR);
    await Deno.writeTextFile(join(site.policiesDir, "console-edited.cedar"), EDITED_CEDAR);
    const broken = join(site.dir, "console-broken");
    await Deno.mkdir(broken);
    await Deno.writeTextFile(join(broken, "plugin.yaml"), BROKEN_MANIFEST);
    await site.writeConfig({ plugins: [...EXAMPLE_PLUGINS.map(pluginDir), broken] });
    await using kc = await startKeycard(site);
    await using chromium = await Chromium.launch();
    const tmp = await Deno.makeTempDir({ prefix: "keycard-browser-" });
    const url = (path: string) => new URL(path, kc.base).href;
    const admin = await chromium.newPage();
    const { page } = admin;
    let sessionCookie = "";
    let signedIn = false;

    /**
     * One step of the suite, bounded; the page must have logged no problem during it. A step that needs the admin's
     * session is ignored, by name, when signing in failed (that step says why).
     */
    const step = (name: string, fn: () => Promise<void>, options: { session?: boolean } = { session: true }) =>
      t.step({
        name: options.session && !signedIn ? `${name} (ignored: the admin could not sign in)` : name,
        ignore: options.session === true && !signedIn,
        fn: async () => {
          await within(STEP_BOUND, `the step "${name}"`, fn());
          assertNoProblems(admin, name);
        },
      });
    const noSession = { session: false };

    try {
      await step("signed out, every page redirects to sign-in, which carries a strict CSP", async () => {
        for (const path of ["/console/", "/console/plugins", "/console/plugins/hello", "/console/audit"]) {
          const response = await kc.fetch(path, { redirect: "manual" });
          await response.body?.cancel();
          assert.equal(response.status, 303, `GET ${path}`);
          assert.equal(new URL(response.headers.get("location")!, kc.base).pathname, "/console/sign-in", path);
        }
        for (const path of ["/console/policies", "/console/health", "/console/playground"]) {
          const response = await page.goto(url(path), { waitUntil: "load" });
          assertStrictCsp(response, path);
          assert.equal(new URL(page.url()).pathname, "/console/sign-in", `${path} led to ${page.url()}`);
        }
        assert.equal(await attribute(page, "#token", "type"), "password");
        await screenshot(page, "sign-in");
        // Without an icon of its own, Chromium asks for /favicon.ico and logs the 404 as a console error.
        const favicon = await kc.fetch("/favicon.ico");
        await favicon.body?.cancel();
        const icon = await page.$(`link[rel~="icon"]`);
        assert.ok(icon || favicon.ok, `no <link rel="icon"> and GET /favicon.ico answers ${favicon.status}`);
      }, noSession);

      await step("a wrong token is refused on the sign-in page, with no cookie set", async () => {
        await page.goto(url("/console/sign-in"), { waitUntil: "load" });
        await page.type("#token", "not-a-token");
        const response = await submit(page, "#sign-in-submit");
        await assertStatus(response, 401);
        assertStrictCsp(response, "POST /console/session");
        assert.notEqual(await text(page, "#sign-in-error"), "");
        const cookies = await page.browserContext().cookies();
        assert.deepEqual(cookies.filter((c) => c.name === "keycard_console"), []);
      }, noSession);

      await step("an admin signs in; the session cookie is HttpOnly, SameSite=Strict and out of scripts", async () => {
        await page.goto(url("/console/sign-in"), { waitUntil: "load" });
        await page.type("#token", kc.adminToken);
        const response = await submit(page, "#sign-in-submit");
        await assertStatus(response, 200);
        assert.equal(new URL(page.url()).pathname, "/console/plugins");
        assert.equal(await text(page, "#whoami"), "admin");
        const cookie = (await page.browserContext().cookies()).find((c) => c.name === "keycard_console");
        assert.ok(cookie, "the keycard_console cookie is set");
        signedIn = true;
        sessionCookie = `${cookie.name}=${cookie.value}`;
        assert.equal(cookie.httpOnly, true);
        assert.equal(cookie.sameSite, "Strict");
        assert.equal(cookie.path, "/console");
        assert.equal(
          cookie.session,
          true,
          `a session cookie (no expiry), kept for the browser session only: ${cookie.expires}`,
        );
        const scripts = await page.evaluate("document.cookie") as string;
        assert.doesNotMatch(scripts, /keycard_console/, "scripts cannot read the session cookie");
        assert.ok(!(await page.content()).includes(kc.adminToken), "the token is not in the page");
        for (const id of ["nav-plugins", "nav-audit", "nav-policies", "nav-health", "nav-playground", "sign-out"]) {
          assert.ok(await page.$(`#${id}`), `#${id} in the header`);
        }
      }, noSession);

      await step("the plugins page lists the example plugins, loaded, at 1280x800", async () => {
        const response = await page.goto(url("/console/plugins"), { waitUntil: "load" });
        assertStrictCsp(response, "/console/plugins");
        for (const name of ["hello", "stamp", "header-guard", "redact", "quoter"]) {
          const row = `tr[data-testid="plugin-row"][data-plugin="${name}"]`;
          assert.ok(await page.$(row), `a row for ${name}`);
          assert.equal(await text(page, `${row} .plugin-state`), "loaded", `${name} is loaded`);
        }
        assert.equal(await text(page, `tr[data-plugin="stamp"] .plugin-version`), "1.0.0");
        assert.ok(await page.$("form#install-form"), "an admin sees the install form");
        // A configured plugin that could not load is listed as failed, with its error.
        assert.equal(await text(page, `tr[data-plugin="console-broken"] .plugin-state`), "failed");
        assert.match(await text(page, `p.plugin-error[data-plugin="console-broken"]`), /^console-broken: .+/);
        await assertNoSideways(page, 1280);
        await screenshot(page, "plugins-1280");
        await page.goto(url("/console/plugins/console-broken"), { waitUntil: "load" });
        assert.equal(await text(page, "#plugin-state"), "failed");
        assert.match(await text(page, "#plugin-error"), /no build\/plugin\.wasm/, "the plugin page says why it failed");
        assert.equal(await page.$("form#invoke-form"), null, "a plugin that is not serving has no invoke form");
        await screenshot(page, "plugin-failed");
      });

      await step("the plugins page works at phone width (390x844)", async () => {
        await page.setViewport({ width: 390, height: 844 });
        try {
          await page.goto(url("/console/plugins"), { waitUntil: "load" });
          assert.ok(await page.$(`tr[data-plugin="stamp"]`));
          await assertNoSideways(page, 390);
          for (const id of ["#nav-plugins", "#sign-out", "#install-submit"]) {
            const box = await (await page.$(id))?.boundingBox();
            assert.ok(
              box && box.width > 0 && box.x >= 0 && box.x + box.width <= 390,
              `${id} is on screen: ${JSON.stringify(box)}`,
            );
          }
          await screenshot(page, "plugins-390");
          await page.goto(url("/console/plugins/stamp"), { waitUntil: "load" });
          await assertNoSideways(page, 390);
          await screenshot(page, "plugin-stamp-390");
          // The other pages at the same width: no sideways scrolling either.
          const wide: string[] = [];
          for (const path of ["/console/audit", "/console/policies", "/console/health", "/console/playground"]) {
            await page.goto(url(path), { waitUntil: "load" });
            const width = await page.evaluate("document.documentElement.scrollWidth") as number;
            if (width > 390) wide.push(`${path} is ${width} px wide`);
          }
          assert.deepEqual(wide, [], "pages that scroll sideways at 390 px");
        } finally {
          await page.setViewport({ width: 1280, height: 800 });
        }
      });

      await step("a plugin that fails conformance is reported and not installed", async () => {
        const wasm = join(tmp, "bad.wasm");
        await Deno.writeFile(wasm, await watFixture("http_echo"));
        await page.goto(url("/console/plugins"), { waitUntil: "load" });
        await page.type("#install-name", "console-bad");
        await (await page.$("#install-wasm"))!.uploadFile(wasm);
        // Declares an export the module does not have: conformance must refuse it.
        await page.type(
          "#install-manifest",
          'name: console-bad\nversion: 1.0.0\nexports:\n  - name: missing\n    samples: [""]\ncapabilities: []\n',
        );
        const response = await submit(page, "#install-submit");
        await assertStatus(response, 422);
        assert.equal(await attribute(page, "section#install-report", "data-passed"), "false");
        assert.match(await text(page, "#install-outcome"), /^Not installed/);
        assert.ok((await page.$$(`tr[data-testid="check-row"][data-passed="false"]`)).length > 0, "a failed check");
        assert.equal(await pluginStatus(kc, "console-bad"), 404, "nothing installed");
      });

      await step("install by upload shows the conformance report, then the plugin is live", async () => {
        const wasm = join(tmp, "echo.wasm");
        await Deno.writeFile(wasm, await watFixture("http_echo"));
        const manifest = join(tmp, "plugin.yaml");
        await Deno.writeTextFile(manifest, echoManifest("console-echo"));
        await page.goto(url("/console/plugins"), { waitUntil: "load" });
        await page.type("#install-name", "console-echo");
        await (await page.$("#install-wasm"))!.uploadFile(wasm);
        await (await page.$("#install-manifest-file"))!.uploadFile(manifest);
        const response = await submit(page, "#install-submit");
        await assertStatus(response, 201);
        assertStrictCsp(response, "POST /console/plugins/install");
        assert.equal(await attribute(page, "section#install-report", "data-passed"), "true");
        assert.equal(await text(page, "#install-outcome"), "Installed console-echo 1.0.0");
        const checks = await page.$$eval(
          `tr[data-testid="check-row"]`,
          (rows) => rows.map((row) => row.getAttribute("data-passed")),
        );
        assert.ok(checks.length > 0, "the report lists its checks");
        assert.ok(!checks.includes("false"), `no failed check: ${checks}`);
        assert.ok(await page.$("table#report-footprint"), "the report shows the footprint");
        await screenshot(page, "install-report", { scrollTo: "section#install-report" });
        assert.equal(await pluginStatus(kc, "console-echo"), 200, "the API lists it");
        await page.goto(url("/console/plugins"), { waitUntil: "load" });
        assert.equal(await text(page, `tr[data-plugin="console-echo"] .plugin-state`), "loaded");
        // Its page keeps the report of the install, and shows the limits it runs under (keycard.yaml's deadline).
        await page.goto(url("/console/plugins/console-echo"), { waitUntil: "load" });
        assert.equal(await attribute(page, "section#install-report", "data-passed"), "true");
        assert.equal(await attribute(page, `tr[data-testid="limit"][data-limit="deadlineMs"]`, "data-value"), "1000");
        assert.equal(await attribute(page, `tr[data-testid="limit"][data-limit="memoryPages"]`, "data-value"), "256");
        // With the least grant of what conformance saw it do: echo needs nothing.
        assert.match(await text(page, "pre#proposal-yaml"), /^grants: \[\]/);
        await screenshot(page, "plugin-echo-limits", { scrollTo: "table#plugin-limits" });
      });

      await step("a check-only upload shows the report and the least grant, and installs nothing", async () => {
        const before = await pluginList(kc);
        await page.goto(url("/console/plugins"), { waitUntil: "load" });
        await (await page.$("#install-wasm"))!.uploadFile(join(REPO, "plugins", "stamp", "build", "plugin.wasm"));
        await (await page.$("#install-manifest-file"))!.uploadFile(join(REPO, "plugins", "stamp", "plugin.yaml"));
        const response = await submit(page, "#check-submit");
        await assertStatus(response, 200);
        assert.match(await text(page, "#install-outcome"), /^Checked only, not installed/);
        const proposal = await text(page, "pre#proposal-yaml");
        for (const action of ["clock.now", "random.get", "log.write"]) {
          assert.ok(proposal.includes(action), `the proposal grants ${action}:\n${proposal}`);
        }
        assert.match(await text(page, "pre#proposal-cedar"), /permit/);
        await screenshot(page, "install-check", { scrollTo: "section#proposal" });
        assert.deepEqual(await pluginList(kc), before, "nothing installed");
      });

      await step("invoking the uploaded plugin shows its output and timing", async () => {
        await page.goto(url("/console/plugins/console-echo"), { waitUntil: "load" });
        assert.equal(await text(page, "h1#plugin-name"), "console-echo");
        await page.select("#invoke-export", "echo");
        await page.type("#invoke-input", "hello from the console");
        const response = await submit(page, "#invoke-submit");
        await assertStatus(response, 200);
        assert.equal(await attribute(page, "section#invoke-result", "data-outcome"), "ok");
        assert.equal(await page.$eval("pre#invoke-output", (pre) => pre.textContent), "hello from the console");
        assert.match(await text(page, "#invoke-timing"), /^\d+(\.\d+)? ms$/);
      });

      await step("invoking stamp shows its host calls and their decisions", async () => {
        await page.goto(url("/console/plugins/stamp"), { waitUntil: "load" });
        assert.match(await text(page, "section#plugin-cedar pre"), /permit/, "the Cedar its grants compile to");
        await page.select("#invoke-export", "stamp");
        await page.type("#invoke-input", "console");
        const response = await submit(page, "#invoke-submit");
        await assertStatus(response, 200);
        assert.equal(await attribute(page, "section#invoke-result", "data-outcome"), "ok");
        const output = JSON.parse(await page.$eval("pre#invoke-output", (pre) => pre.textContent ?? ""));
        assert.equal(output.input, "console");
        assert.notEqual(await text(page, "#invoke-call-id"), "");
        const calls = await page.$$eval(
          `tr[data-testid="host-call"]`,
          (rows) => rows.map((row) => `${row.getAttribute("data-action")}:${row.getAttribute("data-decision")}`),
        );
        for (const action of ["clock.now", "random.get", "log.write"]) {
          assert.ok(calls.includes(`${action}:allow`), `${action} allowed among ${calls}`);
        }
        await screenshot(page, "plugin-stamp-invoke", { scrollTo: "section#invoke-result" });
      });

      await step("the audit page tails stamp's decisions live", async () => {
        const response = await page.goto(url("/console/audit?plugin=stamp"), { waitUntil: "load" });
        assertStrictCsp(response, "/console/audit");
        await page.waitForSelector(`ul#audit-live[data-live="true"]`);
        assert.equal(await text(page, "#audit-status"), "live");
        const call = await kc.fetch("/v1/plugins/stamp/invoke/stamp", {
          method: "POST",
          headers: bearer(site.callerToken),
          body: "live",
        });
        await call.body?.cancel();
        assert.equal(call.status, 200);
        const callId = call.headers.get("x-keycard-call-id");
        assert.ok(callId, "the call has an id");
        await page.waitForSelector(`li[data-testid="audit-event"][data-call-id="${callId}"]`);
        const plugins = await page.$$eval(
          `li[data-testid="audit-event"]`,
          (items) => items.map((li) => li.getAttribute("data-plugin")),
        );
        assert.deepEqual([...new Set(plugins)], ["stamp"], "the filter holds for live events too");
        assert.ok(await page.$("svg#audit-chart"), "the chart of decisions");
        await screenshot(page, "audit");
        // Drill down: a bar of allows leads to those events.
        await submit(page, `svg#audit-chart a[data-testid="chart-bar"][data-decision="allow"]`);
        const drilled = new URL(page.url()).searchParams;
        assert.equal(drilled.get("plugin"), "stamp");
        assert.equal(drilled.get("decision"), "allow");
        const decisions = await page.$$eval(
          `li[data-testid="audit-event"]`,
          (items) => items.map((li) => `${li.getAttribute("data-plugin")}:${li.getAttribute("data-decision")}`),
        );
        assert.ok(decisions.length > 0, "the bar's events are listed");
        assert.deepEqual([...new Set(decisions)], ["stamp:allow"]);

        // The chart's counts: clock.now's row totals its bars, and its bars add up to the events listed.
        await page.goto(url("/console/audit?plugin=stamp&action=clock.now"), { waitUntil: "load" });
        const row = `svg#audit-chart g[data-testid="chart-row"][data-plugin="stamp"][data-action="clock.now"]`;
        const allowed = Number(await attribute(page, row, "data-allow"));
        assert.ok(allowed >= 2, `the console's and the API's calls at least: ${allowed}`);
        const bars = await page.$$eval(
          `${row} a[data-testid="chart-bar"][data-decision="allow"]`,
          (links) => links.map((a) => Number(a.getAttribute("data-count"))),
        );
        assert.equal(bars.reduce((sum, count) => sum + count, 0), allowed, `bars ${bars}`);
        const listed = await page.$$(`li[data-testid="audit-event"][data-action="clock.now"][data-decision="allow"]`);
        assert.equal(listed.length, allowed, "as many events listed as the chart counts");

        // The filter form: decision deny over the last 15 minutes; only denies are listed.
        await page.goto(url("/console/audit?plugin=stamp"), { waitUntil: "load" });
        await page.select("#filter-decision", "deny");
        await page.select("#filter-range", "15m");
        await submit(page, "#filter-apply");
        const filtered = new URL(page.url()).searchParams;
        assert.equal(filtered.get("decision"), "deny");
        assert.equal(filtered.get("range"), "15m");
        const shown = await page.$$eval(
          `li[data-testid="audit-event"]`,
          (items) => items.map((li) => li.getAttribute("data-decision")),
        );
        assert.ok(shown.every((decision) => decision === "deny"), `only denies: ${shown}`);
        const chart = await page.$("svg#audit-chart");
        if (chart) assert.equal(await attribute(page, "svg#audit-chart", "data-range"), "15m");
        else assert.ok(await page.$("#audit-chart-empty"), "no chart means no decisions in the range");
      });

      await step("a policy with an error is shown inline at line and column, and nothing is applied", async () => {
        const before = await policySet(kc);
        const response = await page.goto(url("/console/policies"), { waitUntil: "load" });
        assertStrictCsp(response, "/console/policies");
        await submit(page, `section[data-testid="policy-source"][data-name^="console-edited"] a.policy-edit`);
        assert.equal(
          await page.$eval("#policy-editor", (area) => (area as unknown as { value: string }).value),
          EDITED_CEDAR,
        );
        await page.click("#policy-editor");
        await page.keyboard.down("Control");
        await page.keyboard.press("End");
        await page.keyboard.up("Control");
        await page.keyboard.type("permit (principal, action, resource) when { principal.roles.contains( };\n");
        await page.waitForSelector(`#policy-error[data-state="invalid"]`);
        const error = await text(page, "#policy-error");
        // The broken line is the 5th: the error names it and its column, in the text and as attributes.
        assert.match(error, /line 5, column \d+/, `the error names line and column: ${JSON.stringify(error)}`);
        assert.equal(await attribute(page, "#policy-error", "data-line"), "5");
        assert.match((await attribute(page, "#policy-error", "data-column")) ?? "", /^\d+$/);
        await screenshot(page, "policies-error", { scrollTo: "form#policy-form" });
        const applied = await submit(page, "#policy-apply");
        await assertStatus(applied, 400);
        assert.notEqual(await text(page, "#policy-error"), "");
        assert.deepEqual(await policySet(kc), before, "the policy set is unchanged");
        assert.equal(await Deno.readTextFile(join(site.policiesDir, "console-edited.cedar")), EDITED_CEDAR);
      });

      await step("the fixed policy validates as you type and applies through the same API", async () => {
        const before = await policySet(kc);
        await page.goto(url("/console/policies"), { waitUntil: "load" });
        await submit(page, `section[data-testid="policy-source"][data-name^="console-edited"] a.policy-edit`);
        await retype(page, "#policy-editor", FIXED_CEDAR);
        await page.waitForSelector(`#policy-error[data-state="valid"]`);
        // Before applying, the plan: stamp's recorded random.get allows would now be denied.
        await page.waitForSelector(`#policy-plan[data-state="ready"]`);
        assert.match(await text(page, "#policy-plan-totals"), /[1-9]\d* narrowed/);
        const narrowings = await page.$$eval(
          `#policy-plan li[data-testid="plan-narrowing"]`,
          (items) => items.map((li) => li.textContent ?? ""),
        );
        assert.ok(narrowings.some((line) => line.includes("random.get")), `narrowings: ${narrowings}`);
        await screenshot(page, "policies-plan", { scrollTo: "#policy-plan" });
        const response = await submit(page, "#policy-apply");
        await assertStatus(response, 200);
        assert.match(pathOf(page), /^\/console\/policies\?applied=console-edited(\.cedar)?(&|$)/);
        assert.ok(await page.$("#policy-applied"));
        const after = await policySet(kc);
        assert.notDeepEqual(after.version, before.version, "a new policy set version");
        const source = after.sources.find((s) => s.name.startsWith("console-edited"));
        assert.ok(source?.text?.includes('"random.get"'), `the API serves the new text: ${JSON.stringify(source)}`);
        await screenshot(page, "policies-applied", { scrollTo: "#policy-applied" });
      });

      await step(
        "health counts stamp's calls; the playground decides a picked audit event with its policies",
        async () => {
          let response = await page.goto(url("/console/health"), { waitUntil: "load" });
          assertStrictCsp(response, "/console/health");
          const calls = Number(await text(page, `table#health-plugins tr[data-plugin="stamp"] td.calls`));
          assert.ok(calls >= 2, `stamp's calls: the console's and the API's (${calls})`);
          await screenshot(page, "health");

          response = await page.goto(url("/console/playground"), { waitUntil: "load" });
          assertStrictCsp(response, "/console/playground");
          const picked = await page.$$eval(
            `ul#pg-events li[data-testid="pg-event"] a`,
            (links) => links.findIndex((a) => /stamp clock\.now/.test(a.textContent ?? "")),
          );
          assert.ok(picked >= 0, "a recent stamp clock.now event to pick");
          await submit(page, `ul#pg-events li[data-testid="pg-event"]:nth-child(${picked + 1}) a`);
          assert.match(await page.$eval("#pg-action", (input) => input.getAttribute("value") ?? ""), /clock\.now/);
          await submit(page, "#pg-submit");
          assert.equal(await attribute(page, "section#pg-result", "data-decision"), "allow");
          const policies = await page.$$eval(
            `div[data-testid="pg-policy"] pre`,
            (pres) => pres.map((p) => p.textContent),
          );
          assert.ok(
            policies.some((text) => text?.includes('Action::"clock.now"')),
            `the deciding policy with its text: ${policies}`,
          );
          await screenshot(page, "playground", { scrollTo: "section#pg-result" });

          // A host call as a plugin makes it: an HTTP fetch to a private address, refused at the address phase.
          await retype(page, "#pg-call", "plugin: stamp\nhttp.request: http://[::ffff:169.254.169.254]/\n");
          await submit(page, "#pg-explain");
          assert.equal(await attribute(page, "section#pg-explanation", "data-decision"), "deny");
          assert.ok(await page.$(`div[data-testid="pg-phase"][data-phase="address"][data-decision="deny"]`));
          assert.match(
            await text(
              page,
              `section#pg-explanation div[data-testid="pg-policy"][data-id="base.http.private-addresses"] pre`,
            ),
            /forbid/,
          );
          await screenshot(page, "playground-explain", { scrollTo: "section#pg-explanation" });
        },
      );

      await step("a viewer sees no mutation controls, and forged mutations are refused", async () => {
        const context = await chromium.browser.createBrowserContext();
        try {
          const viewer = await chromium.newPage(context);
          const v = viewer.page;
          await v.goto(url("/console/sign-in"), { waitUntil: "load" });
          await v.type("#token", site.viewerToken);
          await submit(v, "#sign-in-submit");
          assert.equal(await text(v, "#whoami"), "viewer");
          assert.ok(await v.$(`tr[data-plugin="stamp"]`), "a viewer sees the plugins");
          assert.equal(await v.$("form#install-form"), null, "no install form");
          await screenshot(v, "plugins-viewer");
          await v.goto(url("/console/plugins/stamp"), { waitUntil: "load" });
          assert.equal(await v.$("form#invoke-form"), null, "no invoke form");
          await v.goto(url("/console/policies"), { waitUntil: "load" });
          assert.ok(await v.$(`section[data-testid="policy-source"]`), "a viewer sees the policies");
          assert.equal(await v.$("form#policy-form"), null, "no policy form");

          const policiesBefore = await policySet(kc);
          // Forged from the viewer's own signed-in page, with its CSRF token: Cedar must still refuse.
          const forged = await v.evaluate(`(async () => {
            const csrf = document.querySelector('meta[name="csrf-token"]').content;
            const install = new FormData();
            install.set("_csrf", csrf);
            install.set("name", "console-forged");
            install.set("manifest", "name: console-forged\\nversion: 1.0.0\\n");
            install.set("wasm", new Blob([new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0])]), "x.wasm");
            const policy = new URLSearchParams({ _csrf: csrf, name: "console-edited", text: "" });
            const invoke = new URLSearchParams({ _csrf: csrf, export: "stamp", input: "x" });
            return [
              (await fetch("/console/plugins/install", { method: "POST", body: install })).status,
              (await fetch("/console/policies/apply", { method: "POST", body: policy })).status,
              (await fetch("/console/plugins/stamp/invoke", { method: "POST", body: invoke })).status,
            ];
          })()`);
          assert.deepEqual(forged, [403, 403, 403], "install, policy apply and invoke refused");
          assert.equal(await pluginStatus(kc, "console-forged"), 404);
          assert.deepEqual(await policySet(kc), policiesBefore);
          // The browser logs each refused fetch as a failed resource load: expected here, and only these.
          const refused = viewer.problems.take();
          assert.ok(refused.every((line) => /status of 403/.test(line)), `only the 403s: ${refused}`);
          assertNoProblems(viewer, "viewer");
        } finally {
          await context.close();
        }
      });

      await step("an admin's mutation without the CSRF token is refused", async () => {
        await page.goto(url("/console/policies"), { waitUntil: "load" });
        const before = await policySet(kc);
        const status = await page.evaluate(`(async () => {
          const body = new URLSearchParams({ name: "console-edited", text: "// no csrf\\n" });
          return (await fetch("/console/policies/apply", { method: "POST", body })).status;
        })()`);
        assert.equal(status, 403);
        assert.deepEqual(await policySet(kc), before);
        const refused = admin.problems.take();
        assert.ok(refused.every((line) => /status of 403/.test(line)), `only the 403: ${refused}`);
      });

      await step("signing out removes the cookie and the session; pages redirect to sign-in", async () => {
        await page.goto(url("/console/plugins"), { waitUntil: "load" });
        const response = await submit(page, "#sign-out");
        assert.equal(new URL(response.url()).pathname, "/console/sign-in");
        const cookies = await page.browserContext().cookies();
        assert.deepEqual(cookies.filter((c) => c.name === "keycard_console"), [], "the cookie is gone");
        await page.goto(url("/console/plugins"), { waitUntil: "load" });
        assert.equal(new URL(page.url()).pathname, "/console/sign-in");
        assert.ok(sessionCookie, "the earlier step saw the cookie");
        const replayed = await kc.fetch("/console/plugins", { redirect: "manual", headers: { cookie: sessionCookie } });
        await replayed.body?.cancel();
        assert.equal(replayed.status, 303, "the old cookie no longer opens a session");
        assert.equal(new URL(replayed.headers.get("location")!, kc.base).pathname, "/console/sign-in");
      });
    } finally {
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  },
});

/** The page does not scroll sideways at this width (the layout fits the viewport). */
async function assertNoSideways(page: Page, width: number): Promise<void> {
  const scrollWidth = await page.evaluate("document.documentElement.scrollWidth") as number;
  assert.ok(scrollWidth <= width, `the page is ${scrollWidth} px wide at a ${width} px viewport`);
}
