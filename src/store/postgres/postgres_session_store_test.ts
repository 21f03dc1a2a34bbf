import assert from "node:assert/strict";
import { refusedDatabase } from "../../../tests/_postgres.ts";
import { testOnDatabase } from "../../../tests/_postgres_kv.ts";
import { StoreUnavailableError } from "../errors.ts";
import { PostgresSessionStore } from "./postgres_session_store.ts";

testOnDatabase(
  "PostgresSessionStore on two replicas: a session made on one is read and ended on the other",
  async (db) => {
    const a = new PostgresSessionStore(await db.connect());
    const b = new PostgresSessionStore(await db.connect());
    const session = await a.create({ id: "admin", roles: ["admin"] });
    assert.match(session.id, /^[A-Za-z0-9_-]{43}$/);
    const seen = await b.get(session.id);
    assert.deepEqual(seen, session);
    assert.equal(await b.get("x".repeat(43)), undefined);
    assert.equal(await b.get("../../etc"), undefined);
    assert.equal(await b.get(undefined), undefined);
    assert.equal(await b.delete(session.id), true);
    assert.equal(await a.get(session.id), undefined, "signed out on b, signed out on a");
    assert.equal(await a.delete(session.id), false);
  },
);

testOnDatabase(
  "PostgresSessionStore keeps only a SHA-256 of each session id: the table's reader cannot ride one",
  async (db) => {
    const sql = await db.connect();
    const store = new PostgresSessionStore(sql);
    const session = await store.create({ id: "admin", roles: ["admin"] });
    const rows = await sql`SELECT id_hash, client_id, roles FROM console_sessions`;
    assert.equal(rows.length, 1);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(session.id)));
    assert.equal(rows[0]!.id_hash, Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join(""));
    assert.equal(rows[0]!.client_id, "admin");
    assert.deepEqual(rows[0]!.roles, ["admin"]);
    assert.equal(await store.get(rows[0]!.id_hash as string), undefined, "the hash is no session id");
  },
);

testOnDatabase(
  "PostgresSessionStore ends expired sessions: never returned, deleted when met and at sign-in",
  async (db) => {
    const sql = await db.connect();
    let now = 1_000_000;
    const store = new PostgresSessionStore(sql, { ttlMs: 100, now: () => now });
    const first = await store.create({ id: "a", roles: [] });
    const second = await store.create({ id: "b", roles: [] });
    now += 99;
    assert.equal((await store.get(first.id))?.client.id, "a");
    now += 1;
    assert.equal(await store.get(first.id), undefined);
    assert.equal((await sql`SELECT count(*)::int AS n FROM console_sessions`)[0]!.n, 1, "the expired one met is gone");
    await store.create({ id: "c", roles: [] });
    assert.equal(await store.get(second.id), undefined);
    assert.equal((await sql`SELECT count(*)::int AS n FROM console_sessions`)[0]!.n, 1, "a sign-in sweeps the rest");
  },
);

testOnDatabase(
  "PostgresSessionStore.sweep deletes every expired session and keeps the live ones",
  async (db) => {
    const sql = await db.connect();
    let now = 1_000_000;
    const store = new PostgresSessionStore(sql, { ttlMs: 100, now: () => now });
    await store.create({ id: "a", roles: [] });
    await store.create({ id: "b", roles: [] });
    now += 50;
    const live = await store.create({ id: "c", roles: [] });
    assert.equal(await store.sweep(), 0);
    now += 50;
    assert.equal(await store.sweep(), 2);
    assert.equal((await sql`SELECT count(*)::int AS n FROM console_sessions`)[0]!.n, 1);
    assert.equal((await store.get(live.id))?.client.id, "c");
  },
);

testOnDatabase(
  "PostgresSessionStore at its bound: the client holding the most gives up its oldest, never another's",
  async (db) => {
    const a = new PostgresSessionStore(await db.connect(), { maxSessions: 4 });
    const b = new PostgresSessionStore(await db.connect(), { maxSessions: 4 });
    const admin = await a.create({ id: "admin", roles: ["admin"] });
    const viewer = [];
    for (let i = 0; i < 20; i++) viewer.push(await (i % 2 ? a : b).create({ id: "viewer", roles: ["viewer"] }));
    assert.equal((await b.get(admin.id))?.client.id, "admin", "the viewer's sign-ins never end the admin's session");
    const live = [];
    for (const session of viewer) live.push((await a.get(session.id)) !== undefined);
    assert.deepEqual(live.lastIndexOf(false), 16, "the viewer keeps its 3 newest");
    const other = await b.create({ id: "other", roles: [] });
    assert.equal((await a.get(other.id))?.client.id, "other");
    assert.equal((await a.get(admin.id))?.client.id, "admin");
    assert.equal(await a.get(viewer[17]!.id), undefined, "the viewer, holding the most, gave up its oldest");
  },
);

Deno.test("PostgresSessionStore fails as unavailable at once when nothing listens at the database's address", async () => {
  // A port that was free a moment ago: connecting is refused.
  await using refused = refusedDatabase();
  const { sql } = refused;
  const store = new PostgresSessionStore(sql, { timeoutMs: 10_000 });
  const id = "A".repeat(43);
  const cases: [() => Promise<unknown>, string][] = [
    [() => store.create({ id: "a", roles: [] }), "Cannot sign in to the console: the database is unreachable"],
    [() => store.get(id), "Cannot read a console session: the database is unreachable"],
    [() => store.delete(id), "Cannot sign out of the console: the database is unreachable"],
    [() => store.sweep(), "Cannot sweep expired console sessions: the database is unreachable"],
  ];
  for (const [call, message] of cases) {
    await assert.rejects(call(), (error: unknown) => {
      assert.ok(error instanceof StoreUnavailableError, String(error));
      assert.equal(error.message, `${message} (ECONNREFUSED)`);
      return true;
    });
  }
});
