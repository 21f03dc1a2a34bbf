// Scale out (issue 14) through the shipped command: replicas started with `deno task start <config>` on one
// PostgreSQL database. A write on any replica (install, remove, policy put and delete) is in force on the others
// within 1 s and the audit log of each shows all of them; a replica SIGKILLed in the middle of an install leaves the
// database with the plugin whole or absent and restarts fine; through a database outage, loaded plugins keep
// answering, writes answer 503 store-unavailable, /readyz says degraded, and the audit events spooled meanwhile
// reach the database exactly once. Ignored by name without PostgreSQL.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { watFixture } from "../_test_utils.ts";
import { startTcpProxy } from "../_tcp_proxy.ts";
import { bearer, BOUND, echoManifest, exists, expectProblem, pluginForm, Run, within } from "./_server.ts";
import {
  armKiller,
  auditCounts,
  invoke,
  makeReplicaSite,
  makeTokens,
  metric,
  readyz,
  type Replica,
  scrape,
  startCluster,
  startReplica,
  testPostgres,
  until,
} from "./_replicas.ts";

const ignore = testPostgres === undefined;
/** What "in force on every replica within 1 s" allows, in milliseconds. */
const PROPAGATION_MS = 1000;
/** How long a probe keeps polling before it fails outright (the assertion on the lag is separate). */
const POLL_BOUND_MS = 10_000;

/** A forbid of every call of plugin `name` through the API (Cedar's `plugin.call`). */
function forbidCalls(name: string): string {
  return `@id("ops.freeze-${name}")\nforbid (principal, action == Action::"plugin.call", resource == Plugin::"${name}");\n`;
}

/** Puts a policy file through a replica's API; returns the response. */
async function putPolicy(replica: Replica, admin: string, name: string, text: string): Promise<Response> {
  return await replica.fetch(`/v1/policies/${name}`, {
    method: "PUT",
    headers: { ...bearer(admin), "content-type": "text/plain" },
    body: text,
  });
}

/**
 * Polls each replica with `probe` (a few ms apart) and returns the lag of each: milliseconds from `since` to its
 * first success. Fails only when a replica never succeeds within the poll bound; the caller asserts on the lags.
 */
async function lags(
  replicas: Replica[],
  what: string,
  probe: (replica: Replica) => Promise<boolean>,
  since: number,
): Promise<Record<string, number>> {
  const measured = await Promise.all(
    replicas.map((replica) =>
      until(`${what} on replica ${replica.name}`, () => probe(replica), { since, boundMs: POLL_BOUND_MS })
    ),
  );
  return Object.fromEntries(replicas.map((replica, i) => [replica.name, Math.round(measured[i]!)]));
}

function assertWithin(measured: Record<string, number>, what: string): void {
  for (const [name, ms] of Object.entries(measured)) {
    assert.ok(ms <= PROPAGATION_MS, `${what} on replica ${name} after ${ms} ms, over ${PROPAGATION_MS} ms`);
  }
}

Deno.test({
  name: "three replicas on one database: writes on any are in force on all within 1 s; the audit shows all three " +
    "(needs PostgreSQL)",
  ignore,
  async fn(t) {
    await using cluster = await startCluster(["a", "b", "c"]);
    const [a, b, c] = cluster.replicas as [Replica, Replica, Replica];
    const { tokens } = cluster;
    const admin = bearer(tokens.admin);

    await t.step("each replica is ready with the postgres store up, and one admin token works on all", async () => {
      for (const replica of cluster.replicas) {
        const body = await readyz(replica);
        assert.equal(body.status, "ready", JSON.stringify(body));
        assert.deepEqual(
          [body.store?.kind, body.store?.state, body.store?.replica],
          ["postgres", "up", replica.name],
          JSON.stringify(body),
        );
        const listed = await replica.fetch("/v1/plugins", { headers: admin });
        assert.equal(listed.status, 200, await listed.text());
        assert.equal(
          (await invoke(replica, tokens.caller, "hello", "greet", replica.name)).text,
          `Hello, ${replica.name}!`,
        );
      }
    });

    const echo = await watFixture("http_echo");
    const echoSha = createHash("sha256").update(echo).digest("hex");
    const calls = (replica: Replica) => invoke(replica, tokens.caller, "echo-r", "echo", "ping");

    await t.step("a plugin installed on A answers on B and C within 1 s, the same module", async () => {
      assert.equal((await calls(b)).status, 404);
      const response = await a.fetch("/v1/plugins/echo-r", {
        method: "PUT",
        headers: admin,
        body: pluginForm(echo, echoManifest("echo-r")),
      });
      assert.equal(response.status, 201, await response.text());
      const since = performance.now();
      const measured = await lags([b, c], "echo-r answers", async (r) => (await calls(r)).text === "ping", since);
      console.log(`install on A -> invocable: ${JSON.stringify(measured)} ms`);
      assertWithin(measured, "the plugin installed on A answered");
      for (const replica of [b, c]) {
        const view = await (await replica.fetch("/v1/plugins/echo-r", { headers: admin })).json();
        assert.equal(view.sha256, echoSha, JSON.stringify(view));
        // The conformance report A's install passed is kept with the version: every replica shows it.
        assert.equal(view.report?.passed, true, JSON.stringify(view));
      }
    });

    await t.step(
      "a forbid put on B denies on A and C within 1 s; deleting it on B allows again within 1 s",
      async () => {
        const put = await putPolicy(b, tokens.admin, "freeze-echo.cedar", forbidCalls("echo-r"));
        assert.equal(put.status, 200, await put.text());
        let since = performance.now();
        assert.equal((await calls(b)).status, 403, "in force at once on the replica that wrote it");
        const denied = await lags([a, c], "echo-r denied", async (r) => (await calls(r)).status === 403, since);
        console.log(`policy put on B -> denied: ${JSON.stringify(denied)} ms`);
        assertWithin(denied, "the forbid put on B denied");

        const removed = await b.fetch("/v1/policies/freeze-echo.cedar", { method: "DELETE", headers: admin });
        assert.equal(removed.status, 204, await removed.text());
        since = performance.now();
        assert.equal((await calls(b)).text, "ping");
        const allowed = await lags(
          [a, c],
          "echo-r allowed again",
          async (r) => (await calls(r)).text === "ping",
          since,
        );
        console.log(`policy delete on B -> allowed: ${JSON.stringify(allowed)} ms`);
        assertWithin(allowed, "the forbid deleted on B allowed again");
      },
    );

    await t.step("a plugin removed on C is gone on A and B within 1 s", async () => {
      const removed = await c.fetch("/v1/plugins/echo-r", { method: "DELETE", headers: admin });
      assert.equal(removed.status, 204, await removed.text());
      const since = performance.now();
      const gone = await lags([a, b], "echo-r gone", async (r) => (await calls(r)).status === 404, since);
      console.log(`remove on C -> 404: ${JSON.stringify(gone)} ms`);
      assertWithin(gone, "the plugin removed on C was gone");
      const rows = await cluster.sql`SELECT count(*)::int AS n FROM plugins WHERE name = 'echo-r'`;
      assert.equal(rows[0]!.n, 0, "no row of it is left in the database");
    });

    await t.step("/metrics of A and C: the lag of the changes they applied, the store up", async () => {
      for (const replica of [a, c]) {
        const text = await scrape(replica, tokens);
        assert.equal(metric(text, "keycard_store_up"), 1);
        assert.ok((metric(text, "keycard_propagation_lag_seconds_count") ?? 0) >= 3, text);
        assert.match(text, /^keycard_propagation_lag_seconds_bucket\{le="1"\} \d+$/m, text);
      }
    });

    await t.step("GET /v1/audit on each replica returns the events recorded by all three", async () => {
      const callIds = new Map<string, string>();
      for (const replica of cluster.replicas) {
        const call = await invoke(replica, tokens.caller, "stamp", "stamp", `from ${replica.name}`);
        assert.equal(call.status, 200, call.text);
        callIds.set(call.callId!, replica.name);
      }
      for (const replica of cluster.replicas) {
        // Each replica writes its events to the database in batches: polled, bounded.
        await until(`the audit of replica ${replica.name} holding the stamp calls of a, b and c`, async () => {
          const response = await replica.fetch("/v1/audit?plugin=stamp&action=clock.now&limit=1000", {
            headers: admin,
          });
          const { events } = await response.json() as { events: { callId: string; replica?: string }[] };
          const seen = new Map(events.filter((e) => callIds.has(e.callId)).map((e) => [e.callId, e.replica]));
          return seen.size === 3 && [...seen].every(([callId, name]) => callIds.get(callId) === name);
        }, { boundMs: POLL_BOUND_MS, everyMs: 50 });
      }
    });
  },
});

/**
 * Lines in a replica's spool: `<dataDir>/audit-spool.jsonl`, and `audit-spool.jsonl.draining`, where a drain moves
 * them while it sends them (and where they stay while the database does not take them).
 */
async function spoolLines(replica: Replica): Promise<number> {
  let lines = 0;
  for (const name of ["audit-spool.jsonl", "audit-spool.jsonl.draining"]) {
    const path = join(replica.site.dataDir, name);
    if (await exists(path)) lines += (await Deno.readTextFile(path)).split("\n").filter((line) => line !== "").length;
  }
  return lines;
}

/** Calls running one after another on each replica until stopped, counted, their failures kept. */
function startTraffic(replicas: Replica[], token: string) {
  let calls = 0;
  const perReplica = new Map<string, number>();
  let stopped = false;
  const failures: string[] = [];
  let waiters: { n: number; resolve: () => void }[] = [];
  const loop = async (replica: Replica) => {
    while (!stopped) {
      // Paced, not synchronized: stamp logs a line per call and a replica refuses a plugin's 101st log line in a
      // second (a "limit" host error), so each replica gets at most one call per 20 ms.
      const paced = new Promise((resolve) => setTimeout(resolve, 20));
      try {
        const call = await invoke(replica, token, "stamp", "stamp", `call ${calls}`);
        if (call.status !== 200 || JSON.parse(call.text).errors.length !== 0) {
          failures.push(`${replica.name}: ${call.status} ${call.text.slice(0, 300)}`);
        }
      } catch (error) {
        failures.push(`${replica.name}: ${error}`);
      }
      calls++;
      perReplica.set(replica.name, (perReplica.get(replica.name) ?? 0) + 1);
      waiters = waiters.filter((w) => calls < w.n || void w.resolve());
      await paced;
    }
  };
  const loops = replicas.map(loop);
  async function stop(): Promise<number> {
    stopped = true;
    await Promise.all(loops);
    return calls;
  }
  return {
    get calls() {
      return calls;
    },
    failures,
    /** Calls made on each replica, by name. */
    perReplica,
    /** Resolves once `n` calls have been made in all. */
    reach(n: number): Promise<void> {
      const { promise, resolve } = Promise.withResolvers<void>();
      if (calls >= n) resolve();
      else waiters.push({ n, resolve });
      return promise;
    },
    /** Stops the loops; resolves with the number of calls made once the last one has answered. */
    stop,
    [Symbol.asyncDispose]: async () => void await stop(),
  };
}

/** A custom section named `name` holding `size` bytes (wasm skips it: the module still validates and runs). */
function customSection(name: string, size: number): Uint8Array {
  const leb = (n: number) => {
    const out: number[] = [];
    do {
      let byte = n & 0x7f;
      n >>>= 7;
      if (n !== 0) byte |= 0x80;
      out.push(byte);
    } while (n !== 0);
    return out;
  };
  const nameBytes = new TextEncoder().encode(name);
  const body = [...leb(nameBytes.length), ...nameBytes];
  const head = [0, ...leb(body.length + size), ...body];
  const section = new Uint8Array(head.length + size);
  section.set(head);
  // Random, so that nothing on the way can shrink it.
  for (let at = head.length; at < section.length; at += 65_536) {
    crypto.getRandomValues(section.subarray(at, Math.min(at + 65_536, section.length)));
  }
  return section;
}

/**
 * A request body streamed in chunks: `reached(fraction)` resolves when that share of it has been handed to the
 * connection (pulled by fetch), which is when a test fires its kill.
 */
function streamedBody(bytes: Uint8Array, chunk = 65_536) {
  let sent = 0;
  const marks: { at: number; resolve: () => void }[] = [];
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= bytes.length) return controller.close();
      const part = bytes.slice(sent, Math.min(sent + chunk, bytes.length));
      sent += part.length;
      controller.enqueue(part);
      for (const mark of marks.filter((m) => sent >= m.at)) mark.resolve();
    },
  });
  return {
    stream,
    reached(fraction: number): Promise<void> {
      const at = Math.ceil(bytes.length * fraction);
      const { promise, resolve } = Promise.withResolvers<void>();
      if (sent >= at) resolve();
      else marks.push({ at, resolve });
      return promise;
    },
  };
}

Deno.test({
  name: "a replica SIGKILLed mid-install leaves the plugin whole or absent on the others, restarts fine and seeds " +
    "no policy again (needs PostgreSQL)",
  ignore,
  async fn(t) {
    await using cluster = await startCluster(["a", "b"], { maxBodyBytes: 64 * 1024 * 1024 });
    const { tokens, sql } = cluster;
    const admin = bearer(tokens.admin);
    let a = cluster.replicas[0]!;
    const b = cluster.replicas[1]!;
    const echo = await watFixture("http_echo");

    // Three kill points: while the body is still arriving; once all of it has been handed over (the server is then
    // checking, compiling and storing the module); and the moment the plugin's row is visible in the database (the
    // replica has not answered yet and may still be loading it or writing its own files).
    const killPoints = [
      { round: 1, at: "half the upload sent", whole: undefined },
      { round: 2, at: "the whole upload sent", whole: undefined },
      { round: 3, at: "the row committed", whole: true },
    ] as const;
    for (const { round, at, whole } of killPoints) {
      const name = `big-${round}`;
      const padding = customSection("padding", 8 * 1024 * 1024);
      const wasm = new Uint8Array(echo.length + padding.length);
      wasm.set(echo);
      wasm.set(padding, echo.length);
      const sha = createHash("sha256").update(wasm).digest("hex");

      await t.step(`round ${round}: SIGKILL of A's server at ${at}, installing ${wasm.length} bytes`, async () => {
        const killer = await armKiller(await a.serverPid());
        const form = new Response(pluginForm(wasm, echoManifest(name)));
        const body = streamedBody(new Uint8Array(await form.arrayBuffer()));
        const install = a.fetch(`/v1/plugins/${name}`, {
          method: "PUT",
          headers: { ...admin, "content-type": form.headers.get("content-type")! },
          body: body.stream,
        }).then(async (response) => `${response.status} ${await response.text()}`, (error) => `${error}`);
        if (round === 1) await within(BOUND.request, "half the upload sent", body.reached(0.5));
        if (round === 2) await within(BOUND.request, "the whole upload sent", body.reached(1));
        if (round === 3) {
          await until("the row in the database", async () => {
            return (await sql`SELECT 1 FROM plugins WHERE name = ${name}`).length === 1;
          }, { boundMs: BOUND.request, everyMs: 1 });
        }
        await killer.fire();
        const outcome = await install;
        const status = await a.run.exit();
        assert.notEqual(status.code, 0, "the launcher reports the server's death");
        console.log(`round ${round}: install answered ${outcome.slice(0, 80)}`);
        await a[Symbol.asyncDispose]();
      });

      await t.step(`round ${round}: on B and in the database, "${name}" is whole or absent`, async () => {
        const rows = await sql<{ sha256: string; size: number }[]>`
          SELECT sha256, octet_length(wasm) AS size FROM plugins WHERE name = ${name}`;
        assert.ok(rows.length <= 1, JSON.stringify(rows));
        if (whole) assert.equal(rows.length, 1, "killed after the commit: the plugin stays installed");
        if (rows.length === 1) {
          assert.deepEqual([rows[0]!.sha256, rows[0]!.size], [sha, wasm.length], "the stored module is the whole one");
          await until(
            `"${name}" answering on B`,
            async () => (await invoke(b, tokens.caller, name, "echo", "x")).text === "x",
          );
        } else {
          assert.equal((await invoke(b, tokens.caller, name, "echo", "x")).status, 404);
          const view = await b.fetch(`/v1/plugins/${name}`, { headers: admin });
          assert.equal(view.status, 404, await view.text());
        }
        console.log(`round ${round}: the database holds ${rows.length === 1 ? "the whole plugin" : "no plugin"}`);
        assert.equal((await invoke(b, tokens.caller, "hello", "greet", "b")).text, "Hello, b!");
      });

      await t.step(`round ${round}: A restarts ready, agrees with B, and installs "${name}" in full`, async () => {
        a = await startReplica(cluster.sites[0]!, tokens);
        cluster.replicas[0] = a;
        const body = await readyz(a);
        assert.deepEqual([body.status, body.store?.state], ["ready", "up"], JSON.stringify(body));
        const list = async (replica: Replica) => {
          const response = await replica.fetch("/v1/plugins", { headers: admin });
          const { plugins } = await response.json() as { plugins: { name: string; sha256?: string }[] };
          return plugins.map((p) => `${p.name}#${p.sha256}`).sort();
        };
        assert.deepEqual(await list(a), await list(b));
        const response = await a.fetch(`/v1/plugins/${name}`, {
          method: "PUT",
          headers: admin,
          body: pluginForm(wasm, echoManifest(name)),
        });
        const answer = await response.text();
        assert.ok([200, 201].includes(response.status), `${response.status} ${answer}`);
        assert.equal((await invoke(a, tokens.caller, name, "echo", "a")).text, "a");
        await until(
          `"${name}" answering on B`,
          async () => (await invoke(b, tokens.caller, name, "echo", "b")).text === "b",
        );
        const rows = await sql`SELECT sha256 FROM plugins WHERE name = ${name}`;
        assert.deepEqual(rows.map((r) => r.sha256), [sha]);
      });
    }

    await t.step("a restart seeds no policy file: one added to A's policies dir is not taken", async () => {
      await a.stop();
      await Deno.writeTextFile(join(cluster.sites[0]!.policiesDir, "late.cedar"), forbidCalls("hello"));
      a = await startReplica(cluster.sites[0]!, tokens);
      cluster.replicas[0] = a;
      for (const replica of [a, b]) {
        assert.equal((await invoke(replica, tokens.caller, "hello", "greet", "x")).text, "Hello, x!");
        const response = await replica.fetch("/v1/policies", { headers: admin });
        const { sources } = await response.json() as { sources: { name: string }[] };
        assert.ok(!sources.some((source) => source.name === "late.cedar"), JSON.stringify(sources));
        assert.ok(sources.some((source) => source.name === "api.cedar"), JSON.stringify(sources));
      }
      assert.equal((await sql`SELECT 1 FROM policies WHERE name = 'late.cedar'`).length, 0);
    });
  },
});

Deno.test({
  name: "a database outage mid-traffic: plugins answer, writes 503, /readyz degraded, the spooled audit (of a " +
    "replica killed meanwhile too) lands exactly once (needs PostgreSQL)",
  ignore,
  async fn(t) {
    const server = new URL(testPostgres?.url ?? "postgres://127.0.0.1/");
    await using proxy = await startTcpProxy({ hostname: server.hostname, port: Number(server.port || 5432) });
    // The replicas reach the database through the proxy; the test's own pool goes straight to it.
    const viaProxy = (url: string) => {
      const u = new URL(url);
      u.port = String(proxy.port);
      return u.href;
    };
    // A store operation gives up after 1 s, so that a write refused during the outage answers quickly.
    await using cluster = await startCluster(["a", "b"], { storeUrlOf: viaProxy, storeLines: ["  timeoutMs: 1000"] });
    const { tokens, sql } = cluster;
    const admin = bearer(tokens.admin);
    const a = cluster.replicas[0]!;
    let b = cluster.replicas[1]!;
    // Stamp calls (clock.now, random.get and log.write each, all allowed) from the `load` client, one after another
    // on each replica, from before the cut until B is killed, and again after the restore.
    await using traffic = startTraffic([a, b], tokens.load);
    const more = (n: number, what: string) =>
      within(
        30_000,
        `${n} more stamp calls ${what}`,
        traffic.reach(traffic.calls + n),
        () => traffic.failures.join("\n"),
      );

    await t.step("before: stamp calls on both replicas, the store up", async () => {
      await more(20, "before the cut");
      for (const replica of [a, b]) {
        assert.equal(metric(await scrape(replica, tokens), "keycard_store_up"), 1);
      }
    });

    await t.step(
      "cut in the middle of the traffic: /readyz turns degraded with the store down, still 200",
      async () => {
        proxy.cut();
        for (const replica of [a, b]) {
          await until(`replica ${replica.name} degraded`, async () => {
            const response = await replica.fetch("/readyz");
            const body = await response.json();
            return response.status === 200 && body.status === "degraded" && body.store?.state === "down";
          }, { boundMs: 30_000, everyMs: 50 });
          assert.equal(metric(await scrape(replica, tokens), "keycard_store_up"), 0);
        }
      },
    );

    await t.step("during the outage: loaded plugins keep answering 200 on both replicas", async () => {
      await more(40, "during the outage");
      assert.deepEqual(traffic.failures, []);
      assert.equal((await invoke(a, tokens.caller, "hello", "greet", "down")).text, "Hello, down!");
    });

    await t.step("during the outage: a policy write and an install answer 503 store-unavailable", async () => {
      const put = await putPolicy(a, tokens.admin, "outage.cedar", forbidCalls("hello"));
      const problem = await expectProblem(put, 503);
      assert.match(String(problem.type), /store-unavailable$/, JSON.stringify(problem));
      const install = await b.fetch("/v1/plugins/late", {
        method: "PUT",
        headers: admin,
        body: pluginForm(await watFixture("http_echo"), echoManifest("late")),
      });
      assert.match(String((await expectProblem(install, 503)).type), /store-unavailable$/);
      // The refused write changed nothing: hello still answers on the replica that refused it.
      assert.equal((await invoke(a, tokens.caller, "hello", "greet", "x")).text, "Hello, x!");
    });

    await t.step("during the outage: the audit events wait in each replica's spool", async () => {
      for (const replica of [a, b]) {
        await until(`replica ${replica.name} spooling`, async () => {
          return (metric(await scrape(replica, tokens), "keycard_audit_spool_events") ?? 0) > 0;
        }, { boundMs: 30_000, everyMs: 50 });
        assert.ok(await spoolLines(replica) > 0, `${replica.name}'s spool files hold its events`);
      }
    });

    let calls = 0;
    await t.step("during the outage: B SIGKILLed with events in its spool keeps them on disk", async () => {
      calls = await traffic.stop();
      assert.deepEqual(traffic.failures, [], "every call of the traffic answered 200 with no host error");
      const decisionsOfB = 3 * traffic.perReplica.get("b")!;
      // Every event of B is in the database (from before the cut) or in its spool; none only in memory any more.
      // (Rows are decisions here: the traffic's pace stays under the audit budget, so nothing is folded.)
      await until("all of B's events stored or spooled", async () => {
        const rows = await sql<{ n: number }[]>`
          SELECT count(*)::int AS n FROM audit WHERE replica = 'b' AND event->>'caller' = 'load'`;
        return rows[0]!.n + (metric(await scrape(b, tokens), "keycard_audit_spool_events") ?? 0) >= decisionsOfB;
      }, { boundMs: 30_000, everyMs: 50 });
      const killer = await armKiller(await b.serverPid());
      await killer.fire();
      assert.notEqual((await b.run.exit()).code, 0);
      assert.ok(await spoolLines(b) > 0, "the spool outlives the process");
    });

    await t.step(
      "restore: A ready again, B restarted, both spools drain, each decision stored exactly once",
      async () => {
        proxy.restore();
        b = await startReplica(cluster.sites[1]!, tokens);
        cluster.replicas[1] = b;
        for (const replica of [a, b]) {
          await until(`replica ${replica.name} ready`, async () => {
            const body = await readyz(replica);
            return body.status === "ready" && body.store?.state === "up";
          }, { boundMs: 30_000, everyMs: 50 });
        }
        await using after = startTraffic([a, b], tokens.load);
        await within(30_000, "20 stamp calls after the restore", after.reach(20), () => after.failures.join("\n"));
        calls += await after.stop();
        assert.deepEqual(after.failures, [], "every call after the restore answered 200 with no host error");
        const expected = { "clock.now": calls, "log.write": calls, "random.get": calls };
        let last: Record<string, number> = {};
        await until("the database's audit of the traffic to be complete", async () => {
          last = await auditCounts(sql, { plugin: "stamp", caller: "load" });
          return Object.values(last).reduce((sum: number, n) => sum + n, 0) >= 3 * calls;
        }, { boundMs: 30_000, everyMs: 100 }).catch((error) => {
          throw new Error(`${error.message}: ${JSON.stringify(last)}, expected ${JSON.stringify(expected)}`);
        });
        for (const replica of [a, b]) {
          await until(`replica ${replica.name}'s spool empty`, async () => {
            return metric(await scrape(replica, tokens), "keycard_audit_spool_events") === 0;
          }, { boundMs: 30_000, everyMs: 50 });
          assert.equal(await spoolLines(replica), 0, `${replica.name}'s spool files are empty`);
        }
        // Counted again once nothing is left to send: none lost, none stored twice.
        const counts = await auditCounts(sql, { plugin: "stamp", caller: "load" });
        const perReplica = await sql<{ replica: string; rows: number; decisions: number }[]>`
        SELECT replica, count(*)::int AS rows, sum(coalesce((event->>'count')::int, 1))::int AS decisions
        FROM audit WHERE event->>'caller' = 'load' GROUP BY 1 ORDER BY 1`;
        console.log(
          `${calls} calls; decisions in the database: ${JSON.stringify(counts)}; ${JSON.stringify(perReplica)}`,
        );
        assert.deepEqual(counts, expected);
        assert.deepEqual(perReplica.map((row) => row.replica), ["a", "b"]);
        const policies = await sql`SELECT name FROM policies WHERE name LIKE 'outage%'`;
        assert.equal(policies.length, 0, "the refused policy write is nowhere");
      },
    );

    await t.step("/metrics: the store up, its operations timed by op, the spool empty", async () => {
      const text = await scrape(a, tokens);
      assert.equal(metric(text, "keycard_store_up"), 1);
      assert.match(text, /^keycard_store_seconds_bucket\{op="[^"]+",le="[^"]+"\} \d+$/m, text);
      assert.equal(metric(text, "keycard_audit_spool_events"), 0);
    });
  },
});

Deno.test({
  name: "a replica whose database refuses connections exits non-zero at start with one line, no password " +
    "(needs PostgreSQL)",
  ignore,
  async fn() {
    // A port nothing listens on: taken, then freed.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    const tokens = makeTokens();
    await using site = await makeReplicaSite("lonely", {
      storeUrl: `postgres://keycard:not-this-secret@127.0.0.1:${port}/keycard`,
      tokens,
      storeLines: ["  timeoutMs: 1000"],
    });
    await using run = new Run(["task", "start", site.configPath], { KEYCARD_ADMIN_TOKEN: tokens.admin });
    const status = await run.exit(BOUND.start);
    assert.notEqual(status.code, 0, run.output());
    assert.equal(run.stdout.lines.some((line) => line.startsWith("keycard serving on")), false, run.output());
    const errors = run.stderr.lines.filter((line) => line.trim() !== "" && !line.startsWith("Task start"));
    assert.equal(errors.length, 1, run.output());
    assert.match(errors[0]!, new RegExp(`127\\.0\\.0\\.1:${port}`), run.output());
    assert.doesNotMatch(run.output(), /not-this-secret/);
  },
});
