// Hostile at every door (issue findings 2, 9, 10, 11): a plugin that raises its own limits, encoded paths that
// reach upstreams unchanged, unlimited token guessing, /metrics disclosed without a token. Real gateway, real
// plugins, a real upstream that records the raw targets it receives, a real listener for raw request targets.
import assert from "node:assert/strict";
import { join } from "node:path";
import { AuthThrottle } from "../../src/http/mod.ts";
import {
  bearer,
  echoManifest,
  expectProblem,
  type GatewayFixture,
  pluginForm,
  startGateway,
} from "../_gateway_fixture.ts";
import { rawGet, type RecordingUpstream, recordingUpstream } from "../_raw_http.ts";
import { watFixture } from "../_test_utils.ts";
import { tally } from "./_tally.ts";

/** The default ceilings an install is checked against (keycard.yaml leaves `ceilings` out). */
const CEILINGS = { deadlineMs: 5000, instances: 4, queue: 64, memoryPages: 1024 };
/** Failed authentications per address and window before 429 (the default). */
const FAILURES = 20;

function routes(upstream: RecordingUpstream): string[] {
  return [
    "routes:",
    `  - { name: pub, match: { path: /pub/* }, auth: public, upstream: "${upstream.url}" }`,
    `  - { name: priv, match: { path: /priv/* }, auth: token, upstream: "${upstream.url}" }`,
  ];
}

/** Serves the fixture's app on 127.0.0.1 (raw targets need a socket: fetch() rewrites them). */
function listen(fx: GatewayFixture): { port: number; close(): Promise<void> } {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, fx.gateway.app.fetch);
  return { port: server.addr.port, close: () => server.shutdown() };
}

Deno.test("adversarial gateway: limits, paths, token guessing, metrics", async () => {
  const t = tally("gateway");
  const echo = await watFixture("http_echo");
  const upstream = recordingUpstream();
  const fx = await startGateway({
    yaml: routes(upstream),
    plugins: [{ name: "greedy", wasm: echo, manifest: `${echoManifest("greedy")}limits: { instances: 16 }\n` }],
  });
  const server = listen(fx);
  try {
    // -- 2. limit escalation --------------------------------------------------------------------------------
    const install = (name: string, limits: string) =>
      fx.request(`/v1/plugins/${name}`, {
        method: "PUT",
        headers: bearer(fx.adminToken),
        body: pluginForm(echo, `${echoManifest(name)}limits: ${limits}\n`),
      });
    const refused = async (name: string, limits: string, limit: string, value: number) => {
      const before = [...Deno.readDirSync(join(fx.dir, "data"))].map((e) => e.name).sort();
      const body = await expectProblem(await install(name, limits), 422, "limit-exceeds-ceiling");
      const ceiling = CEILINGS[limit as keyof typeof CEILINGS];
      assert.match(String(body.detail), new RegExp(`"${limit}" of ${value} .*ceiling of ${ceiling}`));
      const exceeded = body.exceeded as { limit: string; value: number; ceiling: number }[];
      assert.ok(exceeded.some((e) => e.limit === limit && e.value === value && e.ceiling === ceiling));
      assert.equal((body.requestedLimits as Record<string, number>)[limit], value);
      await expectProblem(
        await fx.request(`/v1/plugins/${name}`, { headers: bearer(fx.adminToken) }),
        404,
        "not-found",
      );
      assert.deepEqual([...Deno.readDirSync(join(fx.dir, "data"))].map((e) => e.name).sort(), before);
    };
    await t.attack(
      "install asking deadlineMs 30000 (16 x 30 s spins)",
      () => refused("spin1", "{ deadlineMs: 30000 }", "deadlineMs", 30000),
    );
    await t.attack("install asking 16 instances", () => refused("spin2", "{ instances: 16 }", "instances", 16));
    await t.attack("install asking a queue of 256", () => refused("spin3", "{ queue: 256 }", "queue", 256));
    await t.attack(
      "install asking 4096 memory pages (256 MiB per instance)",
      () => refused("fat", "{ memoryPages: 4096 }", "memoryPages", 4096),
    );
    await t.attack("install asking every limit at once: each named", async () => {
      const body = await expectProblem(
        await install("all", "{ deadlineMs: 30000, instances: 16, queue: 256, memoryPages: 4096 }"),
        422,
        "limit-exceeds-ceiling",
      );
      assert.deepEqual((body.exceeded as { limit: string }[]).map((e) => e.limit).sort(), [
        "deadlineMs",
        "instances",
        "memoryPages",
        "queue",
      ]);
    });
    await t.attack(
      "install one past the ceiling (off by one)",
      () => refused("edge", `{ instances: ${CEILINGS.instances + 1} }`, "instances", CEILINGS.instances + 1),
    );
    await t.attack("install at the ceilings exactly is allowed (raise up to, never past)", async () => {
      const response = await install("atceiling", `{ deadlineMs: ${CEILINGS.deadlineMs}, instances: 4 }`);
      assert.equal(response.status, 201, await response.clone().text());
    });
    await t.attack("configured plugin past a ceiling: degraded start, named, others serve", async () => {
      const ready = await (await fx.request("/readyz")).json();
      assert.equal(ready.status, "degraded");
      const failed = (ready.failed as { plugin?: string; error: string }[]).find((f) => f.plugin === "greedy");
      assert.match(failed?.error ?? "", /"instances" of 16 .*ceiling of 4/);
      const hello = await fx.request("/v1/plugins/hello/invoke/greet", {
        method: "POST",
        headers: bearer(fx.callerToken),
        body: "x",
      });
      assert.equal(hello.status, 200);
      const greedy = await fx.request("/v1/plugins/greedy/invoke/echo", {
        method: "POST",
        headers: bearer(fx.adminToken),
        body: "x",
      });
      assert.notEqual(greedy.status, 200);
    });

    // -- 9. encoded paths -----------------------------------------------------------------------------------
    const seen = () => upstream.targets.length;
    const blocked = async (target: string, status: number) => {
      const before = seen();
      const response = await rawGet(server.port, target);
      assert.equal(response.status, status, `${target}: ${response.status} ${response.body.slice(0, 200)}`);
      assert.equal(seen(), before, `${target} reached the upstream as ${upstream.targets.at(-1)}`);
    };
    const forwarded = async (target: string, expected: string) => {
      const response = await rawGet(server.port, target);
      assert.equal(response.status, 200, `${target}: ${response.status} ${response.body.slice(0, 200)}`);
      assert.equal(upstream.targets.at(-1), expected);
    };
    await t.attack("..%2f on a public route", () => blocked("/pub/..%2fpriv/x", 400));
    await t.attack("..%2F (upper case) on a public route", () => blocked("/pub/..%2Fpriv/x", 400));
    await t.attack("%2e%2e as a segment", () => blocked("/pub/%2e%2e/priv/x", 400));
    await t.attack("%2E%2E as a segment", () => blocked("/pub/%2E%2E/priv/x", 400));
    await t.attack(".%2e mixed dot segment", () => blocked("/pub/.%2e/priv/x", 400));
    await t.attack("%2e single dot segment", () => blocked("/pub/%2e/x", 400));
    await t.attack("..%5c encoded backslash", () => blocked("/pub/..%5cpriv/x", 400));
    await t.attack("literal backslash", () => blocked("/pub/..\\priv/x", 400));
    await t.attack("NUL in a segment", () => blocked("/pub/x%00.txt", 400));
    await t.attack("malformed percent-encoding", () => blocked("/pub/x%2", 400));
    await t.attack("literal .. out of a public route into a token route", () => blocked("/pub/../priv/x", 401));
    await t.attack("deeper .. climbing", () => blocked("/pub/a/../../priv/x", 401));
    await t.attack("encoded route prefix does not skip the token route", () => blocked("/%70riv/x", 401));
    await t.attack("double slash before a token route", () => blocked("//priv/x", 401));
    await t.attack(
      "double-encoded dots are not decoded twice",
      () => forwarded("/pub/%252e%252e/priv/x", "/pub/%252e%252e/priv/x"),
    );
    await t.attack("merged slashes reach the upstream normalized", () => forwarded("/pub//a///b", "/pub/a/b"));
    await t.attack("dot segments resolved before forwarding", () => forwarded("/pub/a/./b/../c", "/pub/a/c"));
    await t.attack("unreserved characters decoded before matching", () => forwarded("/%70ub/%78%7E", "/pub/x~"));
    await t.attack("query kept as sent", () => forwarded("/pub/x?a=%2f..", "/pub/x?a=%2f.."));

    // -- 10. token guessing ---------------------------------------------------------------------------------
    const guess = (remote: string, path = "/v1/plugins", token = `wrong-${crypto.randomUUID()}`) =>
      fx.requestFrom(remote, path, { headers: bearer(token) });
    await t.attack(`${FAILURES + 5} wrong tokens from one address: 401s, then 429 with Retry-After`, async () => {
      const statuses: number[] = [];
      let last: Response | undefined;
      for (let i = 0; i < FAILURES + 5; i++) {
        last = await guess("203.0.113.7");
        statuses.push(last.status);
        await last.body?.cancel();
      }
      assert.deepEqual(statuses.slice(0, FAILURES), Array(FAILURES).fill(401));
      assert.deepEqual(statuses.slice(FAILURES), Array(5).fill(429));
      const retryAfter = Number(last!.headers.get("retry-after"));
      assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
    });
    await t.attack("a valid token from the throttled address still passes at once", async () => {
      const response = await fx.requestFrom("203.0.113.7", "/v1/plugins", { headers: bearer(fx.adminToken) });
      assert.equal(response.status, 200);
      await response.body?.cancel();
    });
    await t.attack("another address is not throttled by the first one's guesses", async () => {
      const wrong = await guess("203.0.113.8");
      assert.equal(wrong.status, 401);
      await wrong.body?.cancel();
      const right = await fx.requestFrom("203.0.113.8", "/v1/plugins", { headers: bearer(fx.callerToken) });
      assert.equal(right.status, 403); // authenticated; api.cedar lets callers only call
      await right.body?.cancel();
    });
    await t.attack("guessing on a token route is throttled too", async () => {
      let last: Response | undefined;
      for (let i = 0; i <= FAILURES; i++) {
        last = await guess("198.51.100.9", "/priv/x");
        await last.body?.cancel();
      }
      assert.equal(last!.status, 429);
      assert.ok(Number(last!.headers.get("retry-after")) >= 1);
      const valid = await fx.requestFrom("198.51.100.9", "/priv/x", { headers: bearer(fx.callerToken) });
      assert.equal(valid.status, 200);
      await valid.body?.cancel();
    });
    await t.attack("rotating addresses inside one IPv6 /64 counts as one client", async () => {
      let last: Response | undefined;
      for (let i = 0; i <= FAILURES; i++) {
        last = await guess(`2001:db8:1:2::${(i + 1).toString(16)}`);
        await last.body?.cancel();
      }
      assert.equal(last!.status, 429);
    });
    await t.attack("no Authorization header at all is counted as a failure", async () => {
      let last: Response | undefined;
      for (let i = 0; i <= FAILURES; i++) {
        last = await fx.requestFrom("192.0.2.44", "/v1/plugins");
        await last.body?.cancel();
      }
      assert.equal(last!.status, 429);
    });
    await t.attack("the per-address table stays bounded under 100,000 spoofed addresses", () => {
      let now = 0;
      const throttle = new AuthThrottle({ failures: 3, windowMs: 60_000, maxAddresses: 1000, now: () => now });
      for (let i = 0; i < 100_000; i++) throttle.fail(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
      assert.ok(throttle.size <= 1000, `${throttle.size} addresses kept`);
      now += 60_001;
      assert.equal(throttle.fail("10.0.0.1"), 0);
    });

    // -- 11. disclosure -------------------------------------------------------------------------------------
    await t.attack("/metrics without a token names no plugin", async () => {
      const response = await fx.requestFrom("192.0.2.50", "/metrics");
      const body = await expectProblem(response, 401, "unauthenticated");
      assert.doesNotMatch(JSON.stringify(body), /hello|keycard_calls_total/);
    });
    await t.attack("/metrics with a caller's token is forbidden by Cedar", async () => {
      await expectProblem(
        await fx.requestFrom("192.0.2.50", "/metrics", { headers: bearer(fx.callerToken) }),
        403,
        "forbidden",
      );
    });
    await t.attack("/metrics with a viewer's token is forbidden by Cedar", async () => {
      await expectProblem(
        await fx.requestFrom("192.0.2.50", "/metrics", { headers: bearer(fx.viewerToken) }),
        403,
        "forbidden",
      );
    });
    await t.attack("/metrics token guessing is throttled like the API", async () => {
      let last: Response | undefined;
      for (let i = 0; i <= FAILURES; i++) {
        last = await guess("192.0.2.51", "/metrics");
        await last.body?.cancel();
      }
      assert.equal(last!.status, 429);
    });
    await t.attack("/metrics over a raw socket without a token", async () => {
      const response = await rawGet(server.port, "/metrics");
      assert.equal(response.status, 401);
      assert.doesNotMatch(response.body, /plugin="/);
    });
    await t.attack("/metrics with the admin token still works", async () => {
      const response = await fx.requestFrom("192.0.2.52", "/metrics", { headers: bearer(fx.adminToken) });
      assert.equal(response.status, 200);
      assert.match(await response.text(), /keycard_calls_total\{plugin="hello"/);
    });
  } finally {
    await server.close();
    await fx.close();
    await upstream.close();
  }

  // server.metrics: open is the operator's explicit choice.
  const open = await startGateway({ server: { metrics: "open" } });
  try {
    await t.attack("server.metrics: open serves /metrics without a token (operator's choice)", async () => {
      const response = await open.request("/metrics");
      assert.equal(response.status, 200);
      await response.body?.cancel();
    });
  } finally {
    await open.close();
  }
  t.report();
});
