import assert from "node:assert/strict";
import { authorizedFetch, type AuthorizedFetchOptions, type HttpTarget } from "./authorized_fetch.ts";
import { HostCallError } from "../runtime/mod.ts";

// A throwaway CA and a leaf for "api.test" (P-256, valid until 2126), made with
// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 …` and
// `openssl x509 -req … -extfile` (subjectAltName=DNS:api.test, serverAuth).
const TEST_CA = `-----BEGIN CERTIFICATE-----
MIIBnDCCAUGgAwIBAgIULndkWHjwYmQp3bXpeKA0GW8NV+YwCgYIKoZIzj0EAwIw
GjEYMBYGA1UEAwwPa2V5Y2FyZCB0ZXN0IENBMCAXDTI2MTEyMjE0MDYzM1oYDzIx
MjYxMDI5MTQwNjMzWjAaMRgwFgYDVQQDDA9rZXljYXJkIHRlc3QgQ0EwWTATBgcq
hkjOPQIBBggqhkjOPQMBBwNCAARTgzq6jSlh6LaanMNlOfS6xkszdXJIp2Df4+kl
3c3pZRKaJaNpzDic1rK3YtxnuyIA73RlKg/ZO4BcnwTzseFGo2MwYTAdBgNVHQ4E
FgQU1LgtQ7hiZIg7Zk3XnUwu8fj1J2YwHwYDVR0jBBgwFoAU1LgtQ7hiZIg7Zk3X
nUwu8fj1J2YwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAgQwCgYIKoZI
zj0EAwIDSQAwRgIhAOQXkshAZ0splgnZHTBHUEWx5jCcr0F4vDXiVolnU+N8AiEA
qrnzx5HyhG8BUaj44NpSueWGMotUKta2eCuoxmSaR9Y=
-----END CERTIFICATE-----`;
const TEST_CERT = `-----BEGIN CERTIFICATE-----
MIIBqDCCAU6gAwIBAgIUMqCYMG4ibdgxS8cjdGgdkKfpbH4wCgYIKoZIzj0EAwIw
GjEYMBYGA1UEAwwPa2V5Y2FyZCB0ZXN0IENBMCAXDTI2MTEyMjE0MDYzM1oYDzIx
MjYxMDI5MTQwNjMzWjATMREwDwYDVQQDDAhhcGkudGVzdDBZMBMGByqGSM49AgEG
CCqGSM49AwEHA0IABLwAz43dY2uLcVdSYv4eiQ8Y025a1wsvClISh+XIel2EBbpU
Z+DGMkYdUhOicypQyBHfks9NcVLaVZZ6FZvWWPOjdzB1MBMGA1UdEQQMMAqCCGFw
aS50ZXN0MAkGA1UdEwQCMAAwEwYDVR0lBAwwCgYIKwYBBQUHAwEwHQYDVR0OBBYE
FNSeozrEAc1wJR/K/LEcQb/IHVzrMB8GA1UdIwQYMBaAFNS4LUO4YmSIO2ZN151M
LvH49SdmMAoGCCqGSM49BAMCA0gAMEUCIDUUQAO8v2vt42GWthJnKb31W9SJvZHN
5+f33+YaPOAgAiEAr0PeaRrAMG5aSp0W+tLFcQeSYdVqk+/ppPjSA42CJCI=
-----END CERTIFICATE-----`;
const TEST_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgMMJte57115xuN42a
2wXtFWHvvGTv6HLHCNjZLtRCCqGhRANCAAS8AM+N3WNri3FXUmL+HokPGNNuWtcL
LwpSEoflyHpdhAW6VGfgxjJGHVITonMqUMgR35LPTXFS2lWWehWb1ljz
-----END PRIVATE KEY-----`;

/** Every request in these tests is bounded by this, so no test can hang. */
const TIMEOUT_MS = 3_000;

interface TestServer {
  origin: string;
  port: number;
  hits: Request[];
  [Symbol.asyncDispose](): Promise<void>;
}

/** A real server on loopback that records each request before handling it. */
function serve(
  handler: (request: Request, server: TestServer) => Response | Promise<Response>,
  options: { hostname?: string; cert?: string; key?: string } = {},
): TestServer {
  const hostname = options.hostname ?? "127.0.0.1";
  const hits: Request[] = [];
  const test: TestServer = {
    origin: "",
    port: 0,
    hits,
    async [Symbol.asyncDispose]() {
      await httpServer.shutdown();
    },
  };
  const httpServer = Deno.serve({ hostname, port: 0, onListen() {}, ...options }, (request) => {
    hits.push(request);
    return handler(request, test);
  });
  test.port = httpServer.addr.port;
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  test.origin = `${options.cert ? "https" : "http"}://${host}:${test.port}`;
  return test;
}

/** Echoes what arrived as JSON. */
async function echo(request: Request): Promise<Response> {
  return Response.json({
    method: request.method,
    url: request.url,
    host: request.headers.get("host"),
    headers: Object.fromEntries(request.headers),
    body: await request.text(),
  });
}

/** Options that allow everything and record each target. */
function allowAll(extra: Partial<AuthorizedFetchOptions> = {}): AuthorizedFetchOptions & { seen: HttpTarget[] } {
  const seen: HttpTarget[] = [];
  return { timeoutMs: TIMEOUT_MS, ...extra, seen, authorize: (target) => void seen.push(target) };
}

function json(body: Uint8Array): Record<string, unknown> {
  return JSON.parse(new TextDecoder().decode(body));
}

function hostCallError(code: string, pattern?: RegExp): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof HostCallError, `expected a HostCallError, got ${error}`);
    assert.equal(error.code, code, error.message);
    if (pattern) assert.match(error.message, pattern);
    return true;
  };
}

/** Refuses loopback except the listed ports, link-local, and non-http(s) schemes, as the base policy would. */
function policy(allowedPorts: number[], seen: HttpTarget[] = []): (target: HttpTarget) => void {
  return (target) => {
    seen.push(target);
    if (target.scheme !== "http" && target.scheme !== "https") {
      throw new HostCallError("denied", `Cannot fetch "${target.url}": scheme "${target.scheme}" is forbidden`);
    }
    if (target.ip?.startsWith("169.254.") || (target.ip === "127.0.0.1" && !allowedPorts.includes(target.port))) {
      throw new HostCallError("denied", `Cannot fetch "${target.url}": address ${target.ip} is forbidden`);
    }
  };
}

Deno.test("authorizedFetch() sends a GET and returns status, lower-cased headers and body", async () => {
  await using server = serve((request) => {
    const response = Response.json({ method: request.method, path: new URL(request.url).pathname });
    response.headers.set("X-Answer", "42");
    return response;
  });
  const options = allowAll();
  const response = await authorizedFetch({ url: `${server.origin}/items?page=2` }, options);
  assert.equal(response.status, 200);
  assert.equal(response.headers["x-answer"], "42");
  assert.equal(response.headers["content-type"], "application/json");
  assert.deepEqual(json(response.body), { method: "GET", path: "/items" });
  assert.equal(response.url, `${server.origin}/items?page=2`);
  assert.deepEqual(options.seen.map(({ url: _, ...rest }) => rest), [
    {
      phase: "address",
      scheme: "http",
      host: "127.0.0.1",
      port: server.port,
      ip: "127.0.0.1",
      method: "GET",
      path: "/items?page=2",
      hop: 0,
    },
  ]);
  assert.equal(options.seen[0]?.url.href, `${server.origin}/items?page=2`);
});

Deno.test("authorizedFetch() sends a POST body and headers, dropping hop-by-hop headers", async () => {
  await using server = serve(echo);
  const response = await authorizedFetch({
    url: `${server.origin}/submit`,
    method: "post",
    headers: {
      "Content-Type": "text/plain",
      "X-Trace": "abc",
      "Keep-Alive": "timeout=5",
      "Proxy-Authorization": "Basic eDp5",
      "TE": "trailers",
      "Upgrade": "websocket",
      "Content-Length": "999",
    },
    body: new TextEncoder().encode("hello"),
  }, allowAll());
  const got = json(response.body) as { method: string; body: string; headers: Record<string, string> };
  assert.equal(got.method, "POST");
  assert.equal(got.body, "hello");
  assert.equal(got.headers["content-type"], "text/plain");
  assert.equal(got.headers["x-trace"], "abc");
  assert.equal(got.headers["content-length"], "5");
  for (const name of ["keep-alive", "proxy-authorization", "te", "upgrade"]) assert.equal(got.headers[name], undefined);
});

Deno.test("authorizedFetch() connects to the resolved IP and sends the hostname as Host", async () => {
  await using server = serve(echo);
  const seen: HttpTarget[] = [];
  const resolved: string[] = [];
  const response = await authorizedFetch({ url: `http://API.test:${server.port}/v1?q=1` }, {
    timeoutMs: TIMEOUT_MS,
    resolve: (hostname) => {
      resolved.push(hostname);
      return Promise.resolve(["127.0.0.1", "10.0.0.9"]);
    },
    authorize: (target) => {
      seen.push(target);
      if (target.host !== "api.test") throw new HostCallError("denied", `Cannot fetch "${target.host}"`);
    },
  });
  assert.deepEqual(resolved, ["api.test"]);
  // Decided by name before the lookup, then by the address it resolved to.
  assert.deepEqual(seen.map((t) => [t.phase, t.host, t.ip]), [
    ["name", "api.test", undefined],
    ["address", "api.test", "127.0.0.1"],
  ]);
  assert.equal(seen[1]?.path, "/v1?q=1");
  const got = json(response.body) as { host: string; url: string };
  assert.equal(got.host, `api.test:${server.port}`);
  assert.equal(response.url, `http://api.test:${server.port}/v1?q=1`);
});

Deno.test("authorizedFetch() lets the policy refuse a name that resolves to loopback", async () => {
  await using server = serve(echo);
  const seen: HttpTarget[] = [];
  await assert.rejects(
    authorizedFetch({ url: `http://rebind.test:${server.port}/` }, {
      timeoutMs: TIMEOUT_MS,
      resolve: () => Promise.resolve(["127.0.0.1"]),
      authorize: policy([], seen),
    }),
    hostCallError("denied", /127\.0\.0\.1 is forbidden/),
  );
  assert.deepEqual(seen.map((t) => [t.phase, t.host, t.ip]), [
    ["name", "rebind.test", undefined],
    ["address", "rebind.test", "127.0.0.1"],
  ]);
  assert.equal(server.hits.length, 0);
});

Deno.test("authorizedFetch() pins https to the resolved IP while checking the certificate for the hostname", async () => {
  await using server = serve(echo, { cert: TEST_CERT, key: TEST_KEY });
  const options = allowAll({ resolve: () => Promise.resolve(["127.0.0.1"]), caCerts: [TEST_CA] });
  const response = await authorizedFetch({ url: `https://api.test:${server.port}/secure` }, options);
  assert.equal((json(response.body) as { host: string }).host, `api.test:${server.port}`);
  assert.equal(options.seen[1]?.scheme, "https");
  assert.equal(options.seen[1]?.ip, "127.0.0.1");
  // The same address under a name the certificate does not cover is refused by TLS.
  await assert.rejects(
    authorizedFetch({ url: `https://other.test:${server.port}/secure` }, options),
    hostCallError("unavailable", /other\.test/),
  );
});

Deno.test("authorizedFetch() normalizes numeric IPv4 forms to 127.0.0.1", async () => {
  await using server = serve(echo);
  for (const host of ["2130706433", "0x7f000001", "127.1", "0177.0.0.1"]) {
    const options = allowAll();
    const response = await authorizedFetch({ url: `http://${host}:${server.port}/n` }, options);
    assert.equal(response.status, 200, host);
    assert.equal(options.seen[0]?.host, "127.0.0.1", host);
    assert.equal(options.seen[0]?.ip, "127.0.0.1", host);
    assert.equal((json(response.body) as { host: string }).host, `127.0.0.1:${server.port}`, host);
  }
  await assert.rejects(
    authorizedFetch({ url: `http://0x7f000001:${server.port}/` }, { timeoutMs: TIMEOUT_MS, authorize: policy([]) }),
    hostCallError("denied"),
  );
  assert.equal(server.hits.length, 4);
});

Deno.test("authorizedFetch() unmaps IPv4-mapped IPv6 addresses so an IPv4 policy applies", async () => {
  await using server = serve(echo);
  const seen: HttpTarget[] = [];
  await assert.rejects(
    authorizedFetch({ url: `http://[::ffff:127.0.0.1]:${server.port}/` }, {
      timeoutMs: TIMEOUT_MS,
      authorize: policy([], seen),
    }),
    hostCallError("denied", /127\.0\.0\.1 is forbidden/),
  );
  await assert.rejects(
    authorizedFetch({ url: `http://mapped.test:${server.port}/` }, {
      timeoutMs: TIMEOUT_MS,
      resolve: () => Promise.resolve(["0:0:0:0:0:FFFF:a9fe:a9fe"]),
      authorize: policy([], seen),
    }),
    hostCallError("denied", /169\.254\.169\.254 is forbidden/),
  );
  assert.deepEqual(seen.map((t) => [t.host, t.ip]), [["127.0.0.1", "127.0.0.1"], ["mapped.test", undefined], [
    "mapped.test",
    "169.254.169.254",
  ]]);
  const options = allowAll();
  const response = await authorizedFetch({ url: `http://[::ffff:7f00:1]:${server.port}/` }, options);
  assert.equal((json(response.body) as { host: string }).host, `[::ffff:7f00:1]:${server.port}`);
  assert.equal(server.hits.length, 1);
});

Deno.test("authorizedFetch() gives an [::1] URL the host ::1", async () => {
  await using server = serve(echo, { hostname: "::1" });
  const options = allowAll();
  const response = await authorizedFetch({ url: `http://[::1]:${server.port}/six` }, options);
  assert.equal(options.seen[0]?.host, "::1");
  assert.equal(options.seen[0]?.ip, "::1");
  assert.equal((json(response.body) as { host: string }).host, `[::1]:${server.port}`);
});

Deno.test("authorizedFetch() refuses a redirect the policy denies without contacting its target", async () => {
  await using target = serve(echo);
  await using allowed = serve((request) => {
    const path = new URL(request.url).pathname;
    const location = path === "/metadata"
      ? "http://169.254.169.254/latest/meta-data/"
      : `http://127.0.0.1:${target.port}/internal`;
    return new Response(null, { status: 302, headers: { location } });
  });
  for (const path of ["/loopback", "/metadata"]) {
    const seen: HttpTarget[] = [];
    await assert.rejects(
      authorizedFetch({ url: `${allowed.origin}${path}` }, {
        timeoutMs: TIMEOUT_MS,
        authorize: policy([allowed.port], seen),
      }),
      hostCallError("denied", /is forbidden/),
    );
    assert.deepEqual(seen.map((t) => [t.hop, t.ip]), [[0, "127.0.0.1"], [
      1,
      path === "/loopback" ? "127.0.0.1" : "169.254.169.254",
    ]]);
  }
  assert.equal(allowed.hits.length, 2);
  assert.equal(target.hits.length, 0);
});

Deno.test("authorizedFetch() follows redirects up to maxRedirects and fails with limit beyond", async () => {
  await using server = serve((request) => {
    const n = Number(new URL(request.url).pathname.slice(1));
    return n >= 3 ? new Response("done") : Response.redirect(new URL(`/${n + 1}`, request.url), 307);
  });
  const options = allowAll({ maxRedirects: 3 });
  const response = await authorizedFetch({ url: `${server.origin}/0` }, options);
  assert.equal(new TextDecoder().decode(response.body), "done");
  assert.equal(response.url, `${server.origin}/3`);
  assert.deepEqual(options.seen.map((t) => [t.hop, t.path]), [[0, "/0"], [1, "/1"], [2, "/2"], [3, "/3"]]);

  const before = server.hits.length;
  await assert.rejects(
    authorizedFetch({ url: `${server.origin}/0` }, allowAll({ maxRedirects: 2 })),
    hostCallError("limit", /maxRedirects \(2\)/),
  );
  assert.equal(server.hits.length - before, 3);
});

Deno.test("authorizedFetch() turns a POST into a GET without body on 303", async () => {
  await using server = serve((request) =>
    new URL(request.url).pathname === "/form" ? Response.redirect(new URL("/result", request.url), 303) : echo(request)
  );
  const options = allowAll();
  const response = await authorizedFetch({
    url: `${server.origin}/form`,
    method: "POST",
    headers: { "content-type": "text/plain", "x-keep": "1" },
    body: new TextEncoder().encode("payload"),
  }, options);
  const got = json(response.body) as { method: string; body: string; headers: Record<string, string> };
  assert.equal(got.method, "GET");
  assert.equal(got.body, "");
  assert.equal(got.headers["content-type"], undefined);
  assert.equal(got.headers["x-keep"], "1");
  assert.deepEqual(options.seen.map((t) => t.method), ["POST", "GET"]);
});

Deno.test("authorizedFetch() strips Authorization and Cookie when a redirect changes origin", async () => {
  await using other = serve(echo);
  await using first = serve((request) =>
    new URL(request.url).pathname === "/same"
      ? Response.redirect(new URL("/echo", request.url), 302)
      : new URL(request.url).pathname === "/echo"
      ? echo(request)
      : Response.redirect(`${other.origin}/echo`, 307)
  );
  const headers = { authorization: "Bearer secret", cookie: "s=1", "x-keep": "1" };
  const same = json((await authorizedFetch({ url: `${first.origin}/same`, headers }, allowAll())).body) as {
    headers: Record<string, string>;
  };
  assert.equal(same.headers["authorization"], "Bearer secret");
  assert.equal(same.headers["cookie"], "s=1");
  const cross = json((await authorizedFetch({ url: `${first.origin}/cross`, headers }, allowAll())).body) as {
    headers: Record<string, string>;
  };
  assert.equal(cross.headers["authorization"], undefined);
  assert.equal(cross.headers["cookie"], undefined);
  assert.equal(cross.headers["x-keep"], "1");
});

Deno.test("authorizedFetch() stops reading a streamed body past maxResponseBytes", async () => {
  const chunk = new Uint8Array(64 * 1024);
  const total = 64 * 1024 * 1024;
  let sent = 0;
  let cancelled = false;
  await using server = serve(() =>
    new Response(
      new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent >= total) return controller.close();
          sent += chunk.byteLength;
          controller.enqueue(chunk);
        },
        cancel() {
          cancelled = true;
        },
      }),
    )
  );
  await assert.rejects(
    authorizedFetch({ url: `${server.origin}/big` }, allowAll({ maxResponseBytes: 100_000 })),
    hostCallError("limit", /maxResponseBytes \(100000\)/),
  );
  // Give the server a moment to see the closed socket, bounded.
  for (let i = 0; i < 50 && !cancelled; i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(cancelled, "the server's stream was cancelled");
  assert.ok(sent < total / 4, `the server sent ${sent} bytes of ${total}`);
});

Deno.test("authorizedFetch() refuses a declared content-length over maxResponseBytes", async () => {
  await using server = serve(() => new Response(new Uint8Array(2048)));
  await assert.rejects(
    authorizedFetch({ url: `${server.origin}/` }, allowAll({ maxResponseBytes: 1024 })),
    hostCallError("limit", /content-length 2048/),
  );
  const response = await authorizedFetch({ url: `${server.origin}/` }, allowAll({ maxResponseBytes: 2048 }));
  assert.equal(response.body.byteLength, 2048);
});

/** A server that never answers until the test releases it. */
function stall(): TestServer & { release: () => void } {
  const { promise, resolve } = Promise.withResolvers<void>();
  const server = serve(async () => {
    await promise;
    return new Response("late");
  });
  const dispose = server[Symbol.asyncDispose];
  return Object.assign(server, {
    release: resolve,
    [Symbol.asyncDispose]: () => (resolve(), dispose()),
  });
}

Deno.test("authorizedFetch() times out a slow server with unavailable within timeoutMs", async () => {
  await using server = stall();
  const started = performance.now();
  await assert.rejects(
    authorizedFetch({ url: `${server.origin}/slow` }, { authorize: () => {}, timeoutMs: 300 }),
    hostCallError("unavailable", /timed out after 300 ms/),
  );
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= 290 && elapsed < 500, `took ${elapsed} ms`);
});

Deno.test("authorizedFetch() times out a slow authorizer or resolver too", async () => {
  const never = new Promise<never>(() => {});
  await assert.rejects(
    authorizedFetch({ url: "http://slow.test/" }, { authorize: () => {}, resolve: () => never, timeoutMs: 100 }),
    hostCallError("unavailable", /timed out/),
  );
  await assert.rejects(
    authorizedFetch({ url: "http://127.0.0.1:9/" }, { authorize: () => never, timeoutMs: 100 }),
    hostCallError("unavailable", /timed out/),
  );
});

Deno.test("authorizedFetch() stops when the signal aborts", async () => {
  await using server = stall();
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error("deadline")), 100);
  const started = performance.now();
  try {
    await assert.rejects(
      authorizedFetch({ url: `${server.origin}/slow` }, {
        authorize: () => {},
        timeoutMs: TIMEOUT_MS,
        signal: controller.signal,
      }),
      hostCallError("unavailable", /aborted/),
    );
  } finally {
    clearTimeout(timer);
  }
  assert.ok(performance.now() - started < 400);
  await assert.rejects(
    authorizedFetch({ url: `${server.origin}/` }, { authorize: () => {}, signal: AbortSignal.abort() }),
    hostCallError("unavailable", /aborted/),
  );
  assert.equal(server.hits.length, 1);
});

Deno.test("authorizedFetch() refuses invalid URLs, userinfo, methods and a host header", async () => {
  const options = allowAll();
  const cases: [Parameters<typeof authorizedFetch>[0], RegExp][] = [
    [{ url: "not a url" }, /Cannot parse URL "not a url"/],
    [{ url: "/relative" }, /Cannot parse URL/],
    [{ url: "http://a@127.0.0.1/" }, /userinfo/],
    [{ url: "http://a:b@127.0.0.1/" }, /userinfo/],
    [{ url: "http://127.0.0.1/", method: "TRACE" }, /method "TRACE"/],
    [{ url: "http://127.0.0.1/", method: "CONNECT" }, /method "CONNECT"/],
    [{ url: "http://127.0.0.1/", headers: { Host: "evil.test" } }, /header "Host"/],
    [{ url: "http://127.0.0.1/", headers: { "bad name": "x" } }, /header "bad name"/],
    [{ url: "http://127.0.0.1/", headers: { "x-a": "1\r\nx-b: 2" } }, /header "x-a"/],
    [{ url: "http://127.0.0.1/", body: new Uint8Array(1) }, /GET and HEAD have no body/],
  ];
  for (const [request, pattern] of cases) {
    await assert.rejects(authorizedFetch(request, options), hostCallError("invalid", pattern));
  }
  assert.equal(options.seen.length, 0);
  await assert.rejects(
    authorizedFetch(
      { url: "http://127.0.0.1/", method: "PUT", body: new Uint8Array(11) },
      allowAll({ maxRequestBytes: 10 }),
    ),
    hostCallError("limit", /maxRequestBytes \(10\)/),
  );
});

Deno.test("authorizedFetch() asks authorize about other schemes and refuses them even if allowed", async () => {
  const seen: HttpTarget[] = [];
  for (const url of ["file:///etc/passwd", "ftp://files.test/x", "gopher://127.0.0.1:70/"]) {
    await assert.rejects(
      authorizedFetch({ url }, { timeoutMs: TIMEOUT_MS, authorize: policy([], seen) }),
      hostCallError("denied", /is forbidden/),
    );
  }
  assert.deepEqual(seen.map((t) => [t.phase, t.scheme, t.host, t.port, t.ip]), [
    ["name", "file", "", 0, undefined],
    ["name", "ftp", "files.test", 21, undefined],
    ["address", "gopher", "127.0.0.1", 70, "127.0.0.1"],
  ]);
  const options = allowAll();
  await assert.rejects(authorizedFetch({ url: "ftp://files.test/x" }, options), hostCallError("invalid", /"ftp"/));
  assert.equal(options.seen.length, 1);
});

Deno.test("authorizedFetch() reports an unreachable or unresolvable host as unavailable", async () => {
  const closed = serve(echo);
  const port = closed.port;
  await closed[Symbol.asyncDispose]();
  await assert.rejects(
    authorizedFetch({ url: `http://127.0.0.1:${port}/` }, allowAll()),
    hostCallError("unavailable", new RegExp(`127\\.0\\.0\\.1:${port}`)),
  );
  await assert.rejects(
    authorizedFetch({ url: "http://nowhere.test/" }, allowAll({ resolve: () => Promise.resolve([]) })),
    hostCallError("unavailable", /Cannot resolve "nowhere.test": no addresses/),
  );
});

Deno.test("authorizedFetch() never tells the caller what a name resolved to", async () => {
  const closed = serve(echo);
  const port = closed.port;
  await closed[Symbol.asyncDispose]();
  // Allowed by the authorizer, refused by the peer: the error names the URL, not the address.
  for (const answer of ["127.0.0.1", "::ffff:127.0.0.1", "::1"]) {
    await assert.rejects(
      authorizedFetch({ url: `http://secret.test:${port}/` }, allowAll({ resolve: () => Promise.resolve([answer]) })),
      (error) => {
        assert.ok(error instanceof HostCallError && error.code === "unavailable", String(error));
        assert.match(error.message, /^Cannot fetch "http:\/\/secret\.test:\d+\/"/);
        assert.doesNotMatch(error.message, /127\.0\.0\.1|::1|::ffff/, error.message);
        return true;
      },
    );
  }
  // Answers that are no canonical address fail without being echoed.
  for (const answer of ["0x7f.1", "127.1", "2130706433", "fe80::1%eth0", "<script>", "10.0.0.1.evil"]) {
    await assert.rejects(
      authorizedFetch({ url: "http://odd.test/" }, allowAll({ resolve: () => Promise.resolve([answer]) })),
      (error) => {
        assert.ok(error instanceof HostCallError && error.code === "unavailable", String(error));
        assert.equal(error.message, 'Cannot resolve "odd.test": the answer is not an IP address');
        return true;
      },
    );
  }
  // A resolver failure is named by its code only.
  await assert.rejects(
    authorizedFetch(
      { url: "http://odd.test/" },
      allowAll({
        resolve: () => Promise.reject(Object.assign(new Error("lookup of 10.1.1.1 failed"), { code: "ENOTFOUND" })),
      }),
    ),
    hostCallError("unavailable", /^Cannot resolve "odd\.test": ENOTFOUND$/),
  );
});

Deno.test("authorizedFetch() resolves no name the authorizer refuses by name, redirects included", async () => {
  await using redirector = serve(() =>
    new Response(null, { status: 302, headers: { location: "http://exfil-0123abcd.attacker.test/" } })
  );
  const lookups: string[] = [];
  const seen: HttpTarget[] = [];
  const options: AuthorizedFetchOptions = {
    timeoutMs: TIMEOUT_MS,
    resolve: (name) => {
      lookups.push(name);
      return Promise.resolve(["127.0.0.1"]);
    },
    authorize: (target) => {
      seen.push(target);
      if (target.host !== "127.0.0.1") throw new HostCallError("denied", `Cannot fetch "${target.host}"`);
    },
  };
  await assert.rejects(authorizedFetch({ url: "http://secret.attacker.test/" }, options), hostCallError("denied"));
  await assert.rejects(authorizedFetch({ url: `${redirector.origin}/` }, options), hostCallError("denied"));
  assert.deepEqual(lookups, []);
  assert.deepEqual(seen.map((t) => [t.hop, t.phase, t.host]), [
    [0, "name", "secret.attacker.test"],
    [0, "address", "127.0.0.1"],
    [1, "name", "exfil-0123abcd.attacker.test"],
  ]);
});

Deno.test("authorizedFetch() refuses an address outside the process's net permission instead of crashing", async () => {
  // These tests run with --allow-net=127.0.0.1,[::1]; node:net would throw NotCapable out of reach (uncaught).
  for (const url of ["http://[2002:7f00:1::]:9/", "http://10.255.255.1:9/"]) {
    await assert.rejects(
      authorizedFetch({ url }, allowAll()),
      hostCallError("unavailable", /may not connect to .* \(Deno net permission\)/),
    );
  }
  await assert.rejects(
    authorizedFetch({ url: "http://hidden.test:9/" }, allowAll({ resolve: () => Promise.resolve(["10.255.255.1"]) })),
    (error) => {
      assert.ok(error instanceof HostCallError && error.code === "unavailable", String(error));
      assert.doesNotMatch(error.message, /10\.255/);
      return true;
    },
  );
});
