// Routes through the shipped commands: an upstream run here on 127.0.0.1 port 0, behind request and response hooks
// (header-guard, redact), a plugin handler, the shipped public /quote, and SIGHUP reloads of keycard.yaml's routes.
import assert from "node:assert/strict";
import { bearer, expectProblem, expectStatus, makeSite, QUOTE_ROUTE, startKeycard } from "./_server.ts";

interface Seen {
  method: string;
  path: string;
  query: string;
  headers: Record<string, string>;
  body: string;
}

/** The upstream: answers what it saw as JSON; /api/orders/secret answers secrets for redact to mask. */
function startUpstream() {
  const seen: Seen[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    const url = new URL(request.url);
    const record = {
      method: request.method,
      path: url.pathname,
      query: url.search.slice(1),
      headers: Object.fromEntries(request.headers),
      body: await request.text(),
    };
    seen.push(record);
    if (url.pathname === "/api/orders/secret") {
      return Response.json({ id: 7, password: "hunter2", note: "AKIAABCDEFGHIJKLMNOP" });
    }
    return Response.json(record, { headers: { "x-upstream": "yes" } });
  });
  return { seen, url: `http://127.0.0.1:${server.addr.port}`, server };
}

function routes(upstream: string, extra: string[] = []): string[] {
  return [
    ...QUOTE_ROUTE,
    "  - name: orders",
    "    match: { path: /api/orders/*, methods: [GET, POST] }",
    `    upstream: ${upstream}`,
    "    auth: token",
    "    hooks:",
    "      - { plugin: header-guard, on: request, priority: 10, failure: closed }",
    '      - { plugin: redact, on: response, priority: 20, failure: open, config: { patterns: "password,secret" } }',
    "  - name: greet",
    "    match: { path: /greet, methods: [POST] }",
    "    auth: public",
    '    handler: { plugin: hello, export: greet, contentType: "text/plain; charset=utf-8" }',
    ...extra,
  ];
}

Deno.test("deno task start serves routes: upstream behind hooks, a handler, /quote, SIGHUP reloads", async (t) => {
  const upstream = startUpstream();
  try {
    await using site = await makeSite({ routes: routes(upstream.url) });
    await using kc = await startKeycard(site);
    const caller = bearer(site.callerToken);

    await t.step("a request with the header passes header-guard to the upstream, tagged and forwarded", async () => {
      const response = await kc.fetch("/api/orders/42?x=1", {
        method: "POST",
        headers: { ...caller, "x-api-key": "k-1", "content-type": "text/plain" },
        body: "an order",
      });
      const seen = JSON.parse(await expectStatus(kc, response, 200)) as Seen;
      assert.equal(response.headers.get("x-upstream"), "yes");
      assert.deepEqual([seen.method, seen.path, seen.query, seen.body], ["POST", "/api/orders/42", "x=1", "an order"]);
      assert.match(seen.headers["x-request-id"] ?? "", /^[0-9a-f]{16}$/);
      assert.equal(seen.headers["x-forwarded-for"], "127.0.0.1");
      assert.equal(seen.headers["x-api-key"], "k-1");
    });

    await t.step("without the header, header-guard answers 401 and the upstream is never reached", async () => {
      const before = upstream.seen.length;
      const response = await kc.fetch("/api/orders/42", { headers: caller });
      assert.equal(await expectStatus(kc, response, 401), '{"error":"missing header x-api-key"}');
      assert.equal(upstream.seen.length, before);
    });

    await t.step("a token route: no token 401, a role Cedar does not permit 403, the upstream untouched", async () => {
      const before = upstream.seen.length;
      await expectProblem(await kc.fetch("/api/orders/1", { headers: { "x-api-key": "k" } }), 401, "unauthenticated");
      await expectProblem(
        await kc.fetch("/api/orders/1", { headers: { ...bearer(site.viewerToken), "x-api-key": "k" } }),
        403,
        "forbidden",
      );
      assert.equal(upstream.seen.length, before);
    });

    await t.step("redact masks the upstream's secrets in the response and counts them", async () => {
      const response = await kc.fetch("/api/orders/secret", { headers: { ...caller, "x-api-key": "k" } });
      const body = await expectStatus(kc, response, 200);
      assert.equal(response.headers.get("x-redacted"), "2");
      assert.ok(!body.includes("hunter2") && !body.includes("AKIAABCDEFGHIJKLMNOP"), body);
      assert.match(body, /"password":"\*\*\*"/);
    });

    await t.step("a method the route does not list is not routed: 404 problem", async () => {
      const before = upstream.seen.length;
      await expectProblem(
        await kc.fetch("/api/orders/1", { method: "DELETE", headers: { ...caller, "x-api-key": "k" } }),
        404,
        "not-found",
      );
      assert.equal(upstream.seen.length, before);
    });

    await t.step("a handler route: hello's greet answers the request body itself", async () => {
      const response = await kc.fetch("/greet", { method: "POST", body: "route" });
      assert.equal(await expectStatus(kc, response, 200), "Hello, route!");
      assert.equal(response.headers.get("content-type"), "text/plain; charset=utf-8");
    });

    await t.step("SIGHUP reloads a new route from keycard.yaml; requests are served before and after", async () => {
      await expectProblem(await kc.fetch("/hup"), 404, "not-found");
      await site.writeConfig({
        routes: routes(upstream.url, [
          "  - name: hup",
          "    match: { path: /hup }",
          "    auth: public",
          `    upstream: ${upstream.url}`,
        ]),
      });
      const from = kc.run.stdout.lines.length;
      assert.ok(kc.run.signal("SIGHUP"));
      await kc.run.stdout.waitFor(/^routes reloaded: quote, orders, greet, hup$/, { from });
      const response = await kc.fetch("/hup?after=1");
      const seen = JSON.parse(await expectStatus(kc, response, 200)) as Seen;
      assert.deepEqual([seen.path, seen.query], ["/hup", "after=1"]);
      assert.equal(await (await kc.fetch("/greet", { method: "POST", body: "still" })).text(), "Hello, still!");
    });

    await t.step("SIGHUP with a broken keycard.yaml keeps the running routes and says so", async () => {
      await Deno.writeTextFile(site.configPath, "routes: [ {name: broken\n");
      const from = kc.run.stdout.lines.length;
      assert.ok(kc.run.signal("SIGHUP"));
      await kc.run.stdout.waitFor(/^routes not reloaded, the running ones stay: /, { from });
      await expectStatus(kc, await kc.fetch("/hup"), 200);
      await expectStatus(kc, await kc.fetch("/quote"), 200);
    });
  } finally {
    await upstream.server.shutdown();
  }
});
