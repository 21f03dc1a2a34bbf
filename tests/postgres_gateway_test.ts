// Two gateways on one PostgreSQL database, in process: what one replica writes is in force on the other, the audit
// log is shared, and a database outage leaves loaded plugins serving, refuses writes with 503 and spools the audit.
import assert from "node:assert/strict";
import postgres from "postgres";
import { loadConfig } from "../src/config/mod.ts";
import { createGateway } from "../src/gateway/mod.ts";
import { StoreUnavailableError } from "../src/store/mod.ts";
import {
  asAdmin,
  BASE,
  echoManifest,
  expectOk,
  expectProblem,
  type GatewayFixture,
  invokeAsCaller,
  pluginForm,
  startGateway,
  storeYaml,
} from "./_gateway_fixture.ts";
import { createTestDatabase } from "./_postgres.ts";
import { testPostgres } from "./_postgres_kv.ts";
import { startTcpProxy } from "./_tcp_proxy.ts";
import { eventually, watFixture } from "./_test_utils.ts";

const ignored = testPostgres === undefined ? " (ignored: no PostgreSQL)" : "";
const ignore = testPostgres === undefined;

/** Bound of every wait for a replica to follow another: the 1 s, with room for a loaded CI machine. */
const FOLLOW_MS = 5000;

/** Waits (bounded) until a replica has followed another: the 1 s, with room for a loaded CI machine. */
function follows<T>(what: string, check: () => Promise<T>, ms = FOLLOW_MS) {
  return eventually(what, check, ms);
}

const NO_ECHO =
  '@id("ops.no-echo")\nforbid (principal, action == Action::"plugin.call", resource == Plugin::"echo");\n';

Deno.test({
  name: `two replicas on one database follow each other's installs, policy writes and removals${ignored}`,
  ignore,
  async fn() {
    await using db = await createTestDatabase(testPostgres!.url);
    const a = await startGateway({ yaml: storeYaml(db.url, { replica: "a", timeoutMs: 1000 }) });
    try {
      const b = await startGateway({ yaml: storeYaml(db.url, { replica: "b", timeoutMs: 1000 }) });
      try {
        const echo = await watFixture("http_echo");
        // Install on A: B runs it, with the same bytes.
        const installed = await a.request(
          "/v1/plugins/echo",
          asAdmin(a, { method: "PUT", body: pluginForm(echo, echoManifest("echo")) }),
        );
        await expectOk(installed, "install on A");
        assert.equal(await expectOk(await invokeAsCaller(a, "echo", "echo", "hi"), "echo on A"), "hi");
        await follows(
          "echo on B",
          async () => assert.equal(await expectOk(await invokeAsCaller(b, "echo", "echo", "b"), "B"), "b"),
        );
        const onB = await (await b.request("/v1/plugins/echo", asAdmin(b))).json();
        assert.equal(onB.state, "loaded");

        // A policy written on B denies on A; removed on A, allowed on B again.
        await expectOk(
          await b.request("/v1/policies/no-echo.cedar", asAdmin(b, { method: "PUT", body: NO_ECHO })),
          "policy on B",
        );
        await expectProblem(await invokeAsCaller(b, "echo", "echo"), 403, "forbidden");
        await follows(
          "deny on A",
          async () => expectProblem(await invokeAsCaller(a, "echo", "echo"), 403, "forbidden"),
        );
        // A counted how long the change took to reach it.
        const lag = /^keycard_propagation_lag_seconds_count (\d+)$/m.exec(
          await (await a.request("/metrics", asAdmin(a))).text(),
        );
        assert.ok(Number(lag?.[1]) >= 1, `propagation lag observed on A: ${lag?.[0]}`);
        const sources = await (await a.request("/v1/policies", asAdmin(a))).json() as { sources: { name: string }[] };
        assert.ok(sources.sources.some((s) => s.name === "no-echo.cedar"));
        // The policy went to the database, not to A's or B's policy directory.
        await assert.rejects(Deno.stat(`${b.dir}/policies/no-echo.cedar`), Deno.errors.NotFound);
        assert.equal(
          (await a.request("/v1/policies/no-echo.cedar", asAdmin(a, { method: "DELETE" }))).status,
          204,
        );
        await follows("allow on B", async () => expectOk(await invokeAsCaller(b, "echo", "echo"), "B"));

        // A removal on B unloads on A.
        assert.equal((await b.request("/v1/plugins/echo", asAdmin(b, { method: "DELETE" }))).status, 204);
        await follows(
          "echo gone on A",
          async () => expectProblem(await invokeAsCaller(a, "echo", "echo"), 404, "not-found"),
        );

        // The audit log is shared: A's query shows B's events, each with its replica.
        await expectOk(await invokeAsCaller(b, "stamp", "stamp", "b"), "stamp on B");
        await expectOk(await invokeAsCaller(a, "stamp", "stamp", "a"), "stamp on A");
        await follows("events of both replicas on A and on B", async () => {
          for (const fx of [a, b]) {
            const response = await fx.request("/v1/audit?plugin=stamp&limit=1000", asAdmin(fx));
            const { events } = await response.json() as { events: { replica?: string }[] };
            assert.deepEqual([...new Set(events.map((e) => e.replica))].sort(), ["a", "b"]);
          }
        });
        // A plan on B replays the events of both replicas from the database (B's own files hold only B's).
        const onlyB = await decisionsInDatabase(db.url, "stamp");
        const plan = await b.request(
          "/v1/policies/plan",
          asAdmin(b, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ files: { "no-echo.cedar": NO_ECHO } }),
          }),
        );
        const report = JSON.parse(await expectOk(plan, "plan on B")) as { totals: { decisions: number } };
        assert.ok(
          report.totals.decisions >= onlyB.decisions,
          `the plan replayed every replica's decisions (${report.totals.decisions} of ${onlyB.decisions} stored)`,
        );
      } finally {
        await b.close();
      }
    } finally {
      await a.close();
    }
  },
});

/** Decisions recorded for a plugin: the sum of its events' counts (an event stands for `count` decisions). */
async function decisionsInDatabase(
  url: string,
  plugin: string,
): Promise<{ decisions: number; uids: number; rows: number }> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const [row] = await sql<{ decisions: number; uids: number; rows: number }[]>`
      SELECT coalesce(sum(coalesce((event->>'count')::int, 1)), 0)::int AS decisions,
        count(DISTINCT uid)::int AS uids, count(*)::int AS rows
      FROM audit WHERE event->>'plugin' = ${plugin}`;
    return row!;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

interface Ready {
  status: string;
  store?: { kind: string; state: string; replica: string; spooled: number };
}

async function readyz(fx: GatewayFixture): Promise<Ready> {
  const response = await fx.request("/readyz");
  assert.equal(response.status, 200, "readyz answers 200 while serving, the store down or not");
  return await response.json() as Ready;
}

Deno.test({
  name:
    `a database outage: loaded plugins serve, writes answer 503, the audit is spooled and drained exactly${ignored}`,
  ignore,
  async fn() {
    await using db = await createTestDatabase(testPostgres!.url);
    const target = new URL(db.url);
    await using proxy = await startTcpProxy({ hostname: target.hostname, port: Number(target.port) });
    const viaProxy = new URL(db.url);
    viaProxy.port = String(proxy.port);
    const fx = await startGateway({ yaml: storeYaml(viaProxy.href, { replica: "solo", timeoutMs: 1000 }) });
    let closed = false;
    try {
      assert.deepEqual(await readyz(fx), {
        status: "ready",
        policyVersion: (await readyz(fx) as Ready & { policyVersion: number }).policyVersion,
        store: { kind: "postgres", state: "up", replica: "solo", spooled: 0 },
      });
      for (let i = 0; i < 5; i++) {
        await expectOk(await invokeAsCaller(fx, "stamp", "stamp", `before ${i}`), "stamp before");
      }

      // A console session made while the database is up.
      const signIn = await fx.request("/console/session", {
        method: "POST",
        headers: { origin: BASE },
        body: new URLSearchParams({ token: fx.adminToken }),
      });
      await signIn.body?.cancel();
      const cookie = (signIn.headers.get("set-cookie") ?? "").split(";")[0]!;
      assert.equal((await fx.request("/console/plugins", { headers: { cookie } })).status, 200);

      proxy.cut();
      // The console cannot tell whether the session lives: a 503 page, never "signed out" nor signed in.
      const consolePage = await fx.request("/console/plugins", { headers: { cookie } });
      const consoleText = await consolePage.text();
      assert.equal(consolePage.status, 503, consoleText.slice(0, 300));
      assert.equal(consolePage.headers.get("retry-after"), "5");
      assert.match(consoleText, /id="error-message"[^>]*>Cannot read a console session: /);
      await follows("readyz shows the store down", async () => {
        const ready = await readyz(fx);
        assert.equal(ready.status, "degraded");
        assert.equal(ready.store?.state, "down");
      });
      // Loaded plugins keep serving from memory; their audit events go to the spool.
      for (let i = 0; i < 20; i++) {
        await expectOk(await invokeAsCaller(fx, "stamp", "stamp", `during ${i}`), "stamp during");
      }
      assert.ok((await expectOk(await invokeAsCaller(fx, "hello", "greet", "outage"), "hello during")).length > 0);
      // Writes are refused with a clear 503 and change nothing.
      const before = await (await fx.request("/v1/policies", asAdmin(fx))).json();
      const put = await fx.request("/v1/policies/no-echo.cedar", asAdmin(fx, { method: "PUT", body: NO_ECHO }));
      assert.equal(put.headers.get("retry-after"), "5");
      const problem = await expectProblem(put, 503, "store-unavailable");
      assert.match(String(problem.detail), /unreachable|did not answer/);
      assert.doesNotMatch(String(problem.detail), /forbid/);
      const install = await fx.request(
        "/v1/plugins/echo",
        asAdmin(fx, { method: "PUT", body: pluginForm(await watFixture("http_echo"), echoManifest("echo")) }),
      );
      await expectProblem(install, 503, "store-unavailable");
      assert.deepEqual(await (await fx.request("/v1/policies", asAdmin(fx))).json(), before);
      await follows("events spooled", async () => assert.ok(((await readyz(fx)).store?.spooled ?? 0) > 0));
      const metrics = await (await fx.request("/metrics", asAdmin(fx))).text();
      assert.match(metrics, /^keycard_store_up 0$/m);
      assert.match(metrics, /^keycard_audit_spool_events [1-9]\d*$/m);

      proxy.restore();
      await follows("the store up again and the spool drained", async () => {
        const ready = await readyz(fx);
        assert.equal(ready.status, "ready");
        assert.deepEqual(ready.store, { kind: "postgres", state: "up", replica: "solo", spooled: 0 });
      }, 15_000);
      assert.equal((await fx.request("/console/plugins", { headers: { cookie } })).status, 200, "the session lived on");
      // Writes work again.
      await expectOk(
        await fx.request("/v1/policies/no-echo.cedar", asAdmin(fx, { method: "PUT", body: NO_ECHO })),
        "policy after",
      );
      for (let i = 0; i < 5; i++) {
        await expectOk(await invokeAsCaller(fx, "stamp", "stamp", `after ${i}`), "stamp after");
      }
      const recorded = fx.gateway.services.audit.counters()
        .filter((c) => c.plugin === "stamp")
        .reduce((sum, c) => sum + c.count, 0);
      assert.ok(recorded >= 30 * 3, `stamp made its host calls (${recorded} decisions)`);
      // Closing writes out what is pending (open sums included); then the database holds every decision once.
      closed = true;
      await fx.close();
      const stored = await decisionsInDatabase(db.url, "stamp");
      assert.equal(stored.decisions, recorded, "every decision stored once: none lost, none doubled");
      assert.equal(stored.uids, stored.rows);
    } finally {
      if (!closed) await fx.close();
    }
  },
});

Deno.test({
  name: `a replica whose database cannot be reached does not start, and says why without the password${ignored}`,
  ignore,
  async fn() {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    const error = await startGateway({
      yaml: storeYaml(`postgres://keycard:sekret@127.0.0.1:${port}/k`, { replica: "x" }),
    })
      .then(() => assert.fail("expected the start to fail"), (error: unknown) => error);
    assert.ok(error instanceof StoreUnavailableError, String(error));
    assert.match(
      error.message,
      new RegExp(`Cannot connect to PostgreSQL at "postgres://keycard:\\*\\*\\*@127\\.0\\.0\\.1:${port}/k"`),
    );
    assert.doesNotMatch(error.message, /sekret/);
  },
});

Deno.test("the files store: /readyz shows no store, and policy writes go to the policy directory", async () => {
  const fx = await startGateway();
  try {
    const ready = await readyz(fx);
    assert.equal(ready.store, undefined);
    await expectOk(
      await fx.request("/v1/policies/no-echo.cedar", asAdmin(fx, { method: "PUT", body: NO_ECHO })),
      "put",
    );
    assert.equal(await Deno.readTextFile(`${fx.dir}/policies/no-echo.cedar`), NO_ECHO);
    const metrics = await (await fx.request("/metrics", asAdmin(fx))).text();
    assert.doesNotMatch(metrics, /keycard_store_up/);
  } finally {
    await fx.close();
  }
});

Deno.test({
  name: `a replica without a name gets one, kept in its data dir across restarts${ignored}`,
  ignore,
  async fn() {
    await using db = await createTestDatabase(testPostgres!.url);
    const fx = await startGateway({ yaml: ["store:", "  kind: postgres", `  url: ${JSON.stringify(db.url)}`] });
    try {
      const first = (await readyz(fx)).store?.replica ?? "";
      assert.match(first, /^r-[0-9a-f]{12}$/);
      assert.equal((await Deno.readTextFile(`${fx.dir}/data/replica-id`)).trim(), first);
      await fx.gateway.close();
      const { config } = await loadConfig({ path: fx.configPath, env: {} });
      const again = await createGateway(config, { adminToken: fx.adminToken });
      try {
        const view = again.services.store?.();
        assert.equal(view?.kind === "postgres" && view.replica, first);
      } finally {
        await again.close();
      }
    } finally {
      await Deno.remove(fx.dir, { recursive: true });
    }
  },
});
