import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError, loadConfig, parseRoutes, type RouteConfig } from "./mod.ts";

const repo = fileURLToPath(new URL("../../", import.meta.url));

const EXAMPLE = `routes:
  - name: orders
    match: { path: /api/orders/*, methods: [GET, POST] }
    upstream: http://127.0.0.1:9001
    auth: token
    timeouts: { connectMs: 2000, responseMs: 10000 }
    hooks:
      - { plugin: header-guard, on: request,  priority: 10, failure: closed }
      - { plugin: redact,       on: response, priority: 20, failure: open, export: on_response, config: { patterns: "password,secret" } }
  - name: quote
    match: { path: /quote }
    handler: { plugin: quoter, export: handle }
`;

const EXAMPLE_ROUTES: RouteConfig[] = [
  {
    name: "orders",
    match: { path: "/api/orders/*", methods: ["GET", "POST"] },
    upstream: "http://127.0.0.1:9001",
    auth: "token",
    timeouts: { connectMs: 2000, responseMs: 10000 },
    hooks: [
      { plugin: "header-guard", on: "request", priority: 10, failure: "closed", export: "on_request", config: {} },
      {
        plugin: "redact",
        on: "response",
        priority: 20,
        failure: "open",
        export: "on_response",
        config: { patterns: "password,secret" },
      },
    ],
  },
  {
    name: "quote",
    match: { path: "/quote" },
    handler: { plugin: "quoter", export: "handle" },
    auth: "token",
    timeouts: { connectMs: 2000, responseMs: 10000 },
    hooks: [],
  },
];

/** Parses `text` as a routes document, expecting a ConfigError. */
function routesError(text: string): ConfigError {
  try {
    parseRoutes(text, "routes.yaml");
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
    assert.equal(error.file, "routes.yaml");
    return error;
  }
  return assert.fail(`expected a ConfigError for:\n${text}`);
}

/** A routes document of one route per line, each a flow map. */
function doc(...routes: string[]): string {
  return `routes:\n${routes.map((route) => `  - ${route}\n`).join("")}`;
}

Deno.test("loadConfig() loads routes from keycard.yaml with every default filled in", async () => {
  const dir = await Deno.makeTempDir({ prefix: "keycard_routes_" });
  try {
    await Deno.writeTextFile(join(dir, "keycard.yaml"), `server: { port: 8081 }\n${EXAMPLE}`);
    const { config } = await loadConfig({ path: "keycard.yaml", cwd: dir, env: {} });
    assert.deepEqual(config.routes, EXAMPLE_ROUTES);
    assert.equal("methods" in config.routes[1]!.match, false);
    assert.equal("handler" in config.routes[0]!, false);
    assert.equal("upstream" in config.routes[1]!, false);

    await Deno.writeTextFile(join(dir, "keycard.yaml"), EXAMPLE.replace("on: response", "on: reply"));
    await assert.rejects(loadConfig({ path: "keycard.yaml", cwd: dir, env: {} }), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.deepEqual([error.file, error.line, error.column, error.path], [
        "keycard.yaml",
        9,
        37,
        "routes[0].hooks[1].on",
      ]);
      assert.equal(
        error.message,
        'Invalid config "keycard.yaml" at line 9, column 37: "routes[0].hooks[1].on" ' +
          'expected "request" or "response", got "reply"',
      );
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parseRoutes() returns the routes of a routes document with defaults filled in", () => {
  assert.deepEqual(parseRoutes(EXAMPLE, "routes.yaml"), EXAMPLE_ROUTES);
  assert.deepEqual(parseRoutes("routes: []\n", "routes.yaml"), []);
  assert.deepEqual(parseRoutes("routes:\n", "routes.yaml"), []);

  const [route] = parseRoutes(
    doc(
      "{ name: a.b_c-1, match: { path: /x/, methods: [get, Post, GET] }, upstream: 'HTTPS://Example.COM:443/base/', " +
        "auth: public, timeouts: { responseMs: 500 }, hooks: [{ plugin: p, on: response, priority: -5 }] }",
    ),
    "routes.yaml",
  );
  assert.deepEqual(route, {
    name: "a.b_c-1",
    match: { path: "/x/", methods: ["GET", "POST"] },
    upstream: "https://example.com/base",
    auth: "public",
    timeouts: { connectMs: 2000, responseMs: 500 },
    hooks: [{ plugin: "p", on: "response", priority: -5, failure: "closed", export: "on_response", config: {} }],
  });
});

Deno.test("parseRoutes() keeps a handler's contentType and envelope only when written", () => {
  const routes = parseRoutes(
    doc(
      "{ name: a, match: { path: /a }, handler: { plugin: hello, export: greet } }",
      `{ name: b, match: { path: /b }, handler: { plugin: hello, contentType: 'text/plain; charset="utf-8"' } }`,
      "{ name: c, match: { path: /c }, handler: { plugin: quoter, envelope: true } }",
      "{ name: d, match: { path: /d }, handler: { plugin: quoter, envelope: false, contentType: application/json } }",
    ),
    "routes.yaml",
  );
  assert.deepEqual(routes.map((route) => route.handler), [
    { plugin: "hello", export: "greet" },
    { plugin: "hello", export: "handle", contentType: 'text/plain; charset="utf-8"' },
    { plugin: "quoter", export: "handle", envelope: true },
    { plugin: "quoter", export: "handle", envelope: false, contentType: "application/json" },
  ]);
});

Deno.test("parseRoutes() accepts the example commented in the shipped keycard.yaml", async () => {
  const text = await Deno.readTextFile(join(repo, "keycard.yaml"));
  const example = text.slice(text.indexOf("# Routes:")).split("\n").filter((line) => line.startsWith("#   "))
    .map((line) => line.slice(1));
  const routes = parseRoutes(`routes:\n${example.join("\n")}\n`, "keycard.yaml");
  assert.deepEqual(routes.map((route) => route.name), ["orders"]);
  assert.equal(routes[0]?.hooks.length, 2);

  // The shipped file itself has one public handler route.
  const { config } = await loadConfig({ path: join(repo, "keycard.yaml"), env: {} });
  assert.deepEqual(config.routes.map((r) => [r.name, r.auth, r.handler?.plugin]), [["quote", "public", "quoter"]]);
});

Deno.test("parseRoutes() refuses a broken rule with line, column and path", () => {
  const ok = "match: { path: /x }, upstream: http://h";
  // A route (the document's line 2), the text its offending node starts with, the path and the message.
  const cases: [string, string, string, RegExp][] = [
    [`{ name: "a b", ${ok} }`, '"a b"', "routes[0].name", /expected a name of 1-64 letters.*, got "a b"/],
    [`{ name: ${"n".repeat(65)}, ${ok} }`, "nnn", "routes[0].name", /expected a name of 1-64/],
    [`{ ${ok} }`, "{", "routes[0].name", /is required: expected a name/],
    ["{ name: a, upstream: http://h }", "{", "routes[0].match", /is required: expected a map/],
    [
      "{ name: a, match: { path: x }, upstream: http://h }",
      "x }",
      "routes[0].match.path",
      /expected a path starting with "\/", optionally ending in "\/\*", got "x"/,
    ],
    ["{ name: a, match: { path: /a/*/b }, upstream: http://h }", "/a/", "routes[0].match.path", /trailing "\/\*"/],
    ["{ name: a, match: { path: /a* }, upstream: http://h }", "/a*", "routes[0].match.path", /trailing "\/\*"/],
    ["{ name: a, match: { path: '/a?b' }, upstream: http://h }", "'/a", "routes[0].match.path", /"\?" or "#"/],
    ["{ name: a, match: { path: /a/../b }, upstream: http://h }", "/a/", "routes[0].match.path", /"\.\." segments/],
    ["{ name: a, match: { path: //* }, upstream: http://h }", "//*", "routes[0].match.path", /empty/],
    [
      "{ name: a, match: { path: /x, methods: [GET, FETCH] }, upstream: http://h }",
      "FETCH",
      "routes[0].match.methods[1]",
      /expected a method \(GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\), got "FETCH"/,
    ],
    [
      "{ name: a, match: { path: /x, methods: [] }, upstream: http://h }",
      "[]",
      "routes[0].match.methods",
      /expected at least one method \(leave out methods for any\)/,
    ],
    [
      "{ name: a, match: { path: /x, method: GET }, upstream: http://h }",
      "method:",
      "routes[0].match.method",
      /is not a known key \(expected one of "path", "methods"\)/,
    ],
    [`{ name: a, ${ok}, auth: none }`, "none", "routes[0].auth", /expected "token" or "public", got "none"/],
    [
      `{ name: a, ${ok}, timeouts: { connectMs: 0 } }`,
      "0 }",
      "routes[0].timeouts.connectMs",
      /expected an integer from 1 to 600000, got 0/,
    ],
    [`{ name: a, ${ok}, hooks: { plugin: p } }`, "{ plugin", "routes[0].hooks", /expected a list, got a map/],
    [`{ name: a, ${ok}, hooks: [{ on: request }] }`, "{ on", "routes[0].hooks[0].plugin", /is required/],
    [`{ name: a, ${ok}, hooks: [{ plugin: .p, on: request }] }`, ".p", "routes[0].hooks[0].plugin", /plugin name/],
    [`{ name: a, ${ok}, hooks: [{ plugin: p }] }`, "{ plugin", "routes[0].hooks[0].on", /is required: expected "req/],
    [
      `{ name: a, ${ok}, hooks: [{ plugin: p, on: request, priority: 1.5 }] }`,
      "1.5",
      "routes[0].hooks[0].priority",
      /expected an integer, got 1\.5/,
    ],
    [
      `{ name: a, ${ok}, hooks: [{ plugin: p, on: request, failure: shut }] }`,
      "shut",
      "routes[0].hooks[0].failure",
      /expected "closed" or "open", got "shut"/,
    ],
    [
      `{ name: a, ${ok}, hooks: [{ plugin: p, on: request, export: "" }] }`,
      '""',
      "routes[0].hooks[0].export",
      /expected an export name, got ""/,
    ],
    [
      `{ name: a, ${ok}, hooks: [{ plugin: p, on: request, config: { max: 5 } }] }`,
      "5 }",
      "routes[0].hooks[0].config.max",
      /expected a string \(quote numbers and true\/false\), got 5/,
    ],
    [
      "{ name: a, match: { path: /x }, handler: { export: handle } }",
      "{ export",
      "routes[0].handler.plugin",
      /is required: expected a plugin name/,
    ],
    [
      "{ name: a, match: { path: /x }, handler: quoter }",
      "quoter",
      "routes[0].handler",
      /expected a map, got "quoter"/,
    ],
    [
      "{ name: a, match: { path: /x }, handler: { plugin: p, contentType: text } }",
      "text }",
      "routes[0].handler.contentType",
      /expected a media type such as "text\/plain; charset=utf-8", got "text"/,
    ],
    [
      '{ name: a, match: { path: /x }, handler: { plugin: p, contentType: "text/plain\\r\\nx-evil: 1" } }',
      '"text',
      "routes[0].handler.contentType",
      /expected a media type .*, got "text\/plain\\r\\nx-evil: 1"/,
    ],
    [
      "{ name: a, match: { path: /x }, handler: { plugin: p, contentType: 'text/plain; charset' } }",
      "'text",
      "routes[0].handler.contentType",
      /expected a media type/,
    ],
    [
      "{ name: a, match: { path: /x }, handler: { plugin: p, envelope: yes } }",
      "yes",
      "routes[0].handler.envelope",
      /expected true or false, got "yes"/,
    ],
    [
      "{ name: a, match: { path: /x }, handler: { plugin: p, content-type: text/plain } }",
      "content-type:",
      "routes[0].handler.content-type",
      /is not a known key \(expected one of "plugin", "export", "contentType", "envelope"\)/,
    ],
  ];
  for (const [route, node, path, message] of cases) {
    const text = doc(route);
    const error = routesError(text);
    assert.deepEqual([error.line, error.column, error.path], [2, 5 + route.indexOf(node), path], text);
    assert.ok(error.message.startsWith(`Invalid config "routes.yaml" at line 2, column ${error.column}: "${path}" `));
    assert.match(error.message, message, text);
  }

  // Block style: the second hook's `on`, as in the brief's example.
  const block = routesError(
    "routes:\n  - name: a\n    match: { path: /x }\n    upstream: http://h\n    hooks:\n" +
      "      - plugin: p\n        on: request\n      - plugin: q\n        on: both\n",
  );
  assert.deepEqual([block.line, block.column, block.path], [9, 13, "routes[0].hooks[1].on"]);
});

Deno.test("parseRoutes() refuses paths the gateway serves itself", () => {
  for (
    const path of [
      "/v1",
      "/v1/routes",
      "/v1/*",
      "/healthz",
      "/healthz/deep",
      "/readyz",
      "/metrics",
      "/openapi.json",
      "/console",
      "/console/plugins",
      "/console/*",
      "/*",
    ]
  ) {
    const error = routesError(doc(`{ name: a, match: { path: "${path}" }, upstream: http://h }`));
    assert.deepEqual([error.line, error.column, error.path], [2, 31, "routes[0].match.path"], path);
    assert.match(
      error.message,
      /expected a path outside the gateway's own "\/v1\/", "\/console\/", "\/healthz", "\/readyz", "\/metrics" and "\/openapi.json"/,
    );
    assert.ok(error.message.includes(`got "${path}"`), error.message);
  }
  assert.match(
    routesError(doc('{ name: a, match: { path: "/*" }, upstream: http://h }')).message,
    /\(it takes "\/v1"\)/,
  );

  // Neighbours of the reserved paths are free.
  for (const path of ["/", "/v10", "/v2/*", "/healthzz", "/metrics.txt", "/api/v1/*", "/consoles", "/app/console/*"]) {
    assert.equal(parseRoutes(doc(`{ name: a, match: { path: "${path}" }, upstream: http://h }`), "r").length, 1);
  }
});

Deno.test("parseRoutes() refuses two routes of one name", () => {
  const error = routesError(
    doc(
      "{ name: orders, match: { path: /a }, upstream: http://h }",
      "{ name: orders, match: { path: /b }, upstream: http://h }",
    ),
  );
  assert.deepEqual([error.line, error.column, error.path], [3, 13, "routes[1].name"]);
  assert.match(error.message, /"routes\[1\]\.name" repeats "orders" of entry 0: route names are unique$/);
});

Deno.test("parseRoutes() refuses two routes that take the same requests, naming both", () => {
  const cases: [string, string, string][] = [
    ["{ path: /a/* }", "{ path: /a/* }", "any method"],
    ["{ path: /a, methods: [GET, POST] }", "{ path: /a, methods: [post, PUT] }", "methods POST"],
    ["{ path: /a }", "{ path: /a, methods: [DELETE] }", "methods DELETE"],
    ["{ path: /a, methods: [GET, HEAD] }", "{ path: /a }", "methods GET, HEAD"],
  ];
  for (const [first, second, shared] of cases) {
    const error = routesError(
      doc(
        `{ name: one, match: ${first}, upstream: http://h }`,
        "{ name: other, match: { path: /b }, upstream: http://h }",
        `{ name: two, match: ${second}, handler: { plugin: p } }`,
      ),
    );
    assert.deepEqual([error.line, error.column, error.path], [4, 25, "routes[2].match"]);
    assert.match(
      error.message,
      new RegExp(`route "two" takes the same requests as route "one" of entry 0: path "[^"]+", ${shared}$`),
    );
  }

  // Other methods, or another pattern (exact vs prefix), are other requests.
  const routes = parseRoutes(
    doc(
      "{ name: r1, match: { path: /a, methods: [GET] }, upstream: http://h }",
      "{ name: r2, match: { path: /a, methods: [POST] }, upstream: http://h }",
      "{ name: r3, match: { path: /a/* }, upstream: http://h }",
      "{ name: r4, match: { path: /a/ }, upstream: http://h }",
    ),
    "r",
  );
  assert.equal(routes.length, 4);
});

Deno.test("parseRoutes() refuses an upstream that is not a plain http or https URL", () => {
  const cases: [string, RegExp][] = [
    [
      "http://127.0.0.1:9001/api?debug=1",
      /without query or fragment \(the request's own query is passed on\), got "http/,
    ],
    ["http://127.0.0.1:9001/?", /without query or fragment/],
    ["http://127.0.0.1:9001/#top", /without query or fragment/],
    ["ftp://127.0.0.1/", /expected an http or https URL without query or fragment, got "ftp:\/\/127.0.0.1\/"/],
    ["127.0.0.1:9001", /expected an http or https URL/],
    ["/api", /expected an http or https URL/],
    ["http://user:secret@127.0.0.1/", /without user or password, got a URL with credentials$/],
  ];
  for (const [upstream, message] of cases) {
    const error = routesError(doc(`{ name: a, match: { path: /x }, upstream: "${upstream}" }`));
    assert.deepEqual([error.line, error.column, error.path], [2, 47, "routes[0].upstream"], upstream);
    assert.match(error.message, message);
    assert.ok(!error.message.includes("secret"), error.message);
  }
  const numeric = routesError(doc("{ name: a, match: { path: /x }, upstream: 9001 }"));
  assert.match(numeric.message, /expected an http or https URL without query or fragment, got 9001/);
});

Deno.test("parseRoutes() requires exactly one of upstream and handler", () => {
  const both = routesError(doc("{ name: a, match: { path: /x }, upstream: http://h, handler: { plugin: p } }"));
  assert.deepEqual([both.line, both.column, both.path], [2, 5, "routes[0]"]);
  assert.match(both.message, /"routes\[0\]" sets both "upstream" and "handler": a route either proxies to an upstream/);

  const neither = routesError("routes:\n  - name: a\n    match: { path: /x }\n");
  assert.deepEqual([neither.line, neither.column, neither.path], [2, 5, "routes[0]"]);
  assert.match(neither.message, /"routes\[0\]" sets neither "upstream" nor "handler"/);
});

Deno.test("parseRoutes() refuses a document that is not a map of routes", () => {
  const other = routesError("routes: []\nplugins: []\n");
  assert.deepEqual([other.line, other.column, other.path], [2, 1, "plugins"]);
  assert.match(other.message, /is not a known key \(expected one of "routes"\)/);

  const list = routesError("- name: a\n");
  assert.deepEqual([list.line, list.path], [1, undefined]);
  assert.match(list.message, /the document must be a map with a "routes" list, got a list/);

  assert.match(routesError("").message, /"routes" is required: expected a list/);
  assert.match(routesError("routes: {}\n").message, /"routes" expected a list, got a map/);
  assert.match(routesError("routes: [\n").message, /not valid YAML/);
});

Deno.test("parseRoutes() reports the first problem and counts the others", () => {
  const error = routesError(
    doc("{ name: a, match: { path: /v1/x }, upstream: http://h }", "{ name: 'b c', match: { path: /y } }"),
  );
  assert.deepEqual([error.line, error.path], [2, "routes[0].match.path"]);
  assert.match(error.message, /\(and 1 more\)$/);
});
