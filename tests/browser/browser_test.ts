// The harness itself: Chromium starts headless with a profile of its own that dispose removes, and what the console
// suite counts as a page's problems (console errors, uncaught exceptions, CSP violations) is really collected.
import assert from "node:assert/strict";
import { browserAvailability, Chromium, waitUntil } from "./_browser.ts";
import { within } from "../e2e/_server.ts";

const { ignore, suffix } = await browserAvailability();

Deno.test({
  name: `Chromium collects a page's console errors, uncaught exceptions and CSP violations${suffix}`,
  ignore,
  // puppeteer keeps its pipe and websocket open across awaits of its own; the browser is closed in finally.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () => within(60_000, "the harness test", harness()),
});

async function harness(): Promise<void> {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const path = new URL(request.url).pathname;
    if (path === "/clean") return html("<h1>clean</h1>", "default-src 'self'");
    return html(
      `<h1>dirty</h1><script>console.error("logged on purpose"); throw new Error("thrown on purpose")</script>`,
      "default-src 'self'; script-src 'self' 'unsafe-inline'; img-src 'none'",
      `<img src="/blocked.png">`,
    );
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  let profile = "";
  try {
    await using chromium = await Chromium.launch();
    profile = chromium.browser.process()?.spawnargs.find((arg) => arg.startsWith("--user-data-dir="))?.slice(16) ??
      "";
    assert.ok(profile, "Chromium was started with a --user-data-dir");
    const clean = await chromium.newPage();
    await clean.page.goto(`${base}/clean`);
    assert.equal(await clean.page.$eval("h1", (h1) => h1.textContent), "clean");
    assert.deepEqual(clean.problems.take(), []);

    const dirty = await chromium.newPage();
    await dirty.page.goto(`${base}/dirty`, { waitUntil: "load" });
    const seen: string[] = [];
    await waitUntil(() => seen.push(...dirty.problems.take()) >= 3, "three problems");
    const lines = seen.join("\n");
    assert.match(lines, /console\.error: logged on purpose/);
    assert.match(lines, /pageerror: .*thrown on purpose/);
    assert.match(lines, /csp: img-src blocked http:\/\/127\.0\.0\.1:\d+\/blocked\.png/);
  } finally {
    await server.shutdown();
  }
  await assert.rejects(Deno.lstat(profile), Deno.errors.NotFound, "the profile dir is removed on dispose");
}

function html(body: string, csp: string, extra = ""): Response {
  return new Response(`<!doctype html><html><body>${body}${extra}</body></html>`, {
    headers: { "content-type": "text/html; charset=utf-8", "content-security-policy": csp },
  });
}
