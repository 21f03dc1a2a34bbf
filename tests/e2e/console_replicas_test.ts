// The operator console behind a load balancer (issue 15 on issue 14's replicas): two replicas started with
// `deno task start <config>` on one PostgreSQL database share console sessions, so a browser signed in on one is
// signed in on the other, its CSRF token works on both, and signing out on one ends the session on both.
// Ignored by name without PostgreSQL.
import assert from "node:assert/strict";
import { startCluster, testPostgres } from "./_replicas.ts";
import type { Replica } from "./_replicas.ts";

const ignore = testPostgres === undefined;

/** A console request as a browser on the replica's own origin sends it (a balancer forwards the Host it was sent). */
function consoleFetch(replica: Replica, path: string, cookie: string, init: RequestInit = {}): Promise<Response> {
  return replica.fetch(path, {
    redirect: "manual",
    ...init,
    headers: { origin: replica.base, cookie, ...init.headers as Record<string, string> },
  });
}

/** The CSRF token a console page carries. */
function csrfOf(page: string): string {
  const token = /<meta name="csrf-token" content="([^"]+)"/.exec(page)?.[1];
  assert.ok(token, "the page carries the CSRF token");
  return token;
}

Deno.test({
  name: `console sessions on two replicas: sign in on one, work on the other, sign out anywhere${
    ignore ? " (ignored: no PostgreSQL)" : ""
  }`,
  ignore,
  async fn() {
    await using cluster = await startCluster(["a", "b"]);
    const [a, b] = cluster.replicas as [Replica, Replica];

    const signIn = await consoleFetch(a, "/console/session", "", {
      method: "POST",
      body: new URLSearchParams({ token: cluster.tokens.admin }),
    });
    await signIn.body?.cancel();
    assert.equal(signIn.status, 303);
    const cookie = (signIn.headers.get("set-cookie") ?? "").split(";")[0]!;
    assert.match(cookie, /^keycard_console=[A-Za-z0-9_-]{43}$/);
    const id = cookie.slice("keycard_console=".length);

    // The database holds a hash of the id, not the id.
    const rows = await cluster.sql`SELECT id_hash, client_id FROM console_sessions`;
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.client_id, "admin");
    assert.notEqual(rows[0]!.id_hash, id);

    // On the other replica the same cookie is signed in, and its CSRF token works there.
    const page = await consoleFetch(b, "/console/plugins", cookie);
    const text = await page.text();
    assert.equal(page.status, 200, text.slice(0, 300));
    assert.match(text, /id="whoami"[^>]*>admin</);
    const csrf = csrfOf(text);
    const invoked = await consoleFetch(b, "/console/plugins/stamp/invoke", cookie, {
      method: "POST",
      body: new URLSearchParams({ _csrf: csrf, export: "stamp", input: "from b" }),
    });
    const result = await invoked.text();
    assert.equal(invoked.status, 200, result.slice(0, 300));
    assert.match(result, /id="invoke-result" class="card" data-outcome="ok"/);
    // A's page carries the same session's token.
    assert.equal(csrfOf(await (await consoleFetch(a, "/console/audit", cookie)).text()), csrf);

    // Signing out on B ends the session on A too.
    const out = await consoleFetch(b, "/console/sign-out", cookie, {
      method: "POST",
      body: new URLSearchParams({ _csrf: csrf }),
    });
    await out.body?.cancel();
    assert.equal(out.status, 303);
    for (const replica of [a, b]) {
      const after = await consoleFetch(replica, "/console/plugins", cookie);
      await after.body?.cancel();
      assert.equal(after.status, 303, `replica ${replica.name} still opens the signed-out session`);
      assert.equal(new URL(after.headers.get("location")!, replica.base).pathname, "/console/sign-in");
    }
    assert.equal((await cluster.sql`SELECT count(*)::int AS n FROM console_sessions`)[0]!.n, 0);
  },
});
