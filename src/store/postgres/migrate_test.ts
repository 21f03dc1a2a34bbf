import assert from "node:assert/strict";
import type { Sql } from "postgres";
import { createTestDatabase, startTestPostgres } from "../../../tests/_postgres.ts";
import { StoreSchemaError, StoreUnavailableError } from "../errors.ts";
import { connect } from "./connect.ts";
import { migrate } from "./migrate.ts";
import { type Migration, MIGRATIONS } from "./migrations.ts";

const server = await startTestPostgres();
const ignored = server === undefined ? " (ignored: no PostgreSQL)" : "";
const LATEST = MIGRATIONS.length;

/** Runs `body` on a fresh database of its own, with a pool on it; ends the pool and drops the database after. */
async function withDatabase(body: (sql: Sql, url: string) => Promise<void>): Promise<void> {
  await using db = await createTestDatabase(server!.url);
  const sql = await connect(db.url, { max: 2 });
  try {
    await body(sql, db.url);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

async function tables(sql: Sql): Promise<string[]> {
  const rows = await sql<{ name: string }[]>`
    SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`;
  return rows.map((row) => row.name);
}

/** The tables of a database at the newest version. */
const TABLES = ["audit", "console_sessions", "keycard_meta", "keycard_migrations", "kv", "plugins", "policies"];

Deno.test({
  name: `migrate() brings a fresh database to the newest version${ignored}`,
  ignore: server === undefined,
  fn: () =>
    withDatabase(async (sql) => {
      const result = await migrate(sql);
      assert.equal(result.version, LATEST);
      assert.deepEqual(result.applied.map((migration) => migration.version), MIGRATIONS.map((m) => m.version));
      assert.deepEqual(await tables(sql), TABLES);
      const rows = await sql`SELECT version, name FROM keycard_migrations ORDER BY version`;
      assert.deepEqual([...rows], MIGRATIONS.map(({ version, name }) => ({ version, name })));
      // The tables take what the store will write.
      await sql`INSERT INTO plugins (name, version, sha256, wasm, manifest)
        VALUES ('hello', '1.0.0', ${"a".repeat(64)}, ${new Uint8Array([0, 97, 115, 109])}, ${
        sql.json({ name: "hello" })
      })`;
      await sql`INSERT INTO policies (name, version, text) VALUES ('base.cedar', 1, 'permit(principal, action, resource);')`;
      await sql`INSERT INTO kv (plugin, namespace, key, value) VALUES ('hello', 'default', 'k', ${new Uint8Array([
        1,
      ])})`;
      await sql`INSERT INTO audit (replica, event) VALUES ('a', ${sql.json({ action: "kv.get" })})`;
      await assert.rejects(
        sql`INSERT INTO plugins (name, version, sha256, wasm, manifest)
        VALUES ('bad', '1.0.0', 'ABC', '', '{}')`,
        /plugins_sha256_check/,
      );
    }),
});

Deno.test({
  name: `migrate() a second time applies nothing and changes nothing${ignored}`,
  ignore: server === undefined,
  fn: () =>
    withDatabase(async (sql) => {
      await migrate(sql);
      const before = await sql`SELECT version, name, sha256, applied_at FROM keycard_migrations ORDER BY version`;
      const again = await migrate(sql);
      assert.deepEqual(again, { version: LATEST, applied: [] });
      const after = await sql`SELECT version, name, sha256, applied_at FROM keycard_migrations ORDER BY version`;
      assert.deepEqual([...after], [...before]);
    }),
});

Deno.test({
  name: `migrate() on 5 connections at once applies each migration exactly once${ignored}`,
  ignore: server === undefined,
  fn: () =>
    withDatabase(async (_sql, url) => {
      // A last migration that is not idempotent: run twice, it would leave two rows.
      const migrations: Migration[] = [
        ...MIGRATIONS,
        { version: LATEST + 1, name: "probe", sql: `INSERT INTO audit (replica, event) VALUES ('migration', '{}')` },
      ];
      const pools = await Promise.all(Array.from({ length: 5 }, () => connect(url, { max: 1 })));
      try {
        const results = await Promise.all(pools.map((pool) => migrate(pool, { migrations })));
        assert.deepEqual(results.map((result) => result.version), Array(5).fill(LATEST + 1));
        const applied = results.flatMap((result) => result.applied.map((migration) => migration.version)).sort();
        assert.deepEqual(applied, migrations.map((migration) => migration.version), "each applied by one replica");
        const [{ count }] = await pools[0]!<[{ count: number }]>`SELECT count(*)::int AS count FROM keycard_migrations`;
        assert.equal(count, LATEST + 1);
        const [{ probes }] = await pools[0]!<[{ probes: number }]>`
          SELECT count(*)::int AS probes FROM audit WHERE replica = 'migration'`;
        assert.equal(probes, 1);
      } finally {
        await Promise.all(pools.map((pool) => pool.end({ timeout: 5 })));
      }
    }),
});

Deno.test({
  name: `migrate() refuses a database migrated by a newer keycard${ignored}`,
  ignore: server === undefined,
  fn: () =>
    withDatabase(async (sql) => {
      await migrate(sql);
      await sql`INSERT INTO keycard_migrations (version, name, sha256)
        VALUES (${LATEST + 1}, 'from the future', ${"0".repeat(64)})`;
      const error = await migrate(sql).then(() => undefined, (error: unknown) => error);
      assert.ok(error instanceof StoreSchemaError, String(error));
      assert.equal(error.databaseVersion, LATEST + 1);
      assert.equal(error.codeVersion, LATEST);
      assert.equal(
        error.message,
        `Database schema version ${LATEST + 1} ("from the future") is newer than this keycard knows (${LATEST}): ` +
          `run a keycard at least as new as the one that migrated it`,
      );
      assert.deepEqual(await tables(sql), TABLES);
    }),
});

Deno.test({
  name: `migrate() refuses a database whose applied migration differs from the code's${ignored}`,
  ignore: server === undefined,
  fn: () =>
    withDatabase(async (sql) => {
      await migrate(sql);
      const edited = MIGRATIONS.map((migration, index) =>
        index === 0 ? { ...migration, sql: `${migration.sql}\n` } : migration
      );
      await assert.rejects(migrate(sql, { migrations: edited }), (error: unknown) => {
        assert.ok(error instanceof StoreSchemaError);
        assert.match(error.message, /^Migration 1 \(".*"\) applied to this database differs from this keycard's/);
        return true;
      });
    }),
});

Deno.test({
  name: `migrate() rolls a failing migration back and says which${ignored}`,
  ignore: server === undefined,
  fn: () =>
    withDatabase(async (sql) => {
      const migrations: Migration[] = [
        ...MIGRATIONS,
        { version: LATEST + 1, name: "broken", sql: "CREATE TABLE half (n int); SELECT no_such_function()" },
      ];
      await assert.rejects(migrate(sql, { migrations }), (error: unknown) => {
        assert.ok(error instanceof StoreSchemaError);
        assert.match(error.message, new RegExp(`^Migration ${LATEST + 1} \\("broken"\\) failed and was rolled back: `));
        return true;
      });
      assert.ok(!(await tables(sql)).includes("half"));
      const [{ version }] = await sql<[{ version: number }]>`SELECT max(version) AS version FROM keycard_migrations`;
      assert.equal(version, LATEST);
    }),
});

Deno.test("migrate() refuses migrations out of order before touching the database", async () => {
  // No database needed: the list is checked first, so a pool that cannot connect is never used.
  const sql = (() => {
    throw new Error("unused");
  }) as unknown as Sql;
  await assert.rejects(
    migrate(sql, { migrations: [{ version: 2, name: "two", sql: "" }] }),
    new RangeError(
      'Migration "two" has version 2 where 1 was expected: migrations are numbered 1, 2, 3 ... in order',
    ),
  );
});

Deno.test("connect() refuses a URL that is not postgres: with a TypeError, password hidden", async () => {
  await assert.rejects(
    connect("not a url"),
    new TypeError(
      'Invalid store URL "not a url": expected postgres://user@host:port/database',
    ),
  );
  await assert.rejects(
    connect("mysql://keycard:secret@127.0.0.1/keycard"),
    new TypeError(
      'Invalid store URL "mysql://keycard:***@127.0.0.1/keycard": the scheme must be postgres: or postgresql:',
    ),
  );
});

Deno.test("connect() to a closed port fails at once with StoreUnavailableError", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  const started = performance.now();
  const error = await connect(`postgres://keycard:secret@127.0.0.1:${port}/keycard`).then(() => undefined, (e) => e);
  assert.ok(error instanceof StoreUnavailableError, String(error));
  assert.equal(error.code, "ECONNREFUSED");
  assert.ok(
    error.message.startsWith(`Cannot connect to PostgreSQL at "postgres://keycard:***@127.0.0.1:${port}/keycard": `),
    error.message,
  );
  assert.ok(!error.message.includes("secret"));
  assert.ok(performance.now() - started < 5_000, "within 5 s");
});

Deno.test("connect() to a server that never answers gives up after the connect timeout", async () => {
  // Accepts the TCP connection, then says nothing: only the client's timeout can end the wait.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) accepted.push(conn);
  })();
  try {
    const started = performance.now();
    const error = await connect(`postgres://keycard@127.0.0.1:${listener.addr.port}/keycard`, {
      connectTimeoutSeconds: 1,
    }).then(() => undefined, (e) => e);
    const elapsed = performance.now() - started;
    assert.ok(error instanceof StoreUnavailableError, String(error));
    assert.equal(error.code, "CONNECT_TIMEOUT");
    assert.match(error.message, /: no answer within the connect timeout/);
    assert.ok(elapsed >= 900 && elapsed < 5_000, `gave up after ${Math.round(elapsed)} ms`);
  } finally {
    listener.close();
    await accepting;
    for (const conn of accepted) conn.close();
  }
});

Deno.test({
  name: `connect() to a database that does not exist says so${ignored}`,
  ignore: server === undefined,
  async fn() {
    const url = new URL(server!.url);
    url.pathname = "/keycard_no_such_database";
    const error = await connect(url.href).then(() => undefined, (e) => e);
    assert.ok(error instanceof StoreUnavailableError, String(error));
    assert.equal(error.code, "3D000");
    assert.match(error.message, /database "keycard_no_such_database" does not exist/);
  },
});
