import assert from "node:assert/strict";
import postgres from "postgres";
import { refusedDatabase, silentDatabase } from "../../../tests/_postgres.ts";
import { freshKvDatabase, hearChanges, testPostgres } from "../../../tests/_postgres_kv.ts";
import { sha256Hex } from "../../registry/mod.ts";
import { recordOf } from "../../registry/_test_utils.ts";
import { StoreUnavailableError } from "../errors.ts";
import { PostgresPluginStore } from "./postgres_plugin_store.ts";

const noDatabase = testPostgres === undefined ? " (ignored: no PostgreSQL)" : "";

async function assertUnavailable(promise: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof StoreUnavailableError, `expected a StoreUnavailableError, got ${error}`);
    assert.match(error.message, message);
    return true;
  });
}

Deno.test({
  name:
    `PostgresPluginStore on two replicas: a put on one is read on the other and announced with its change${noDatabase}`,
  ignore: testPostgres === undefined,
  async fn() {
    const db = await freshKvDatabase();
    try {
      const a = new PostgresPluginStore(await db.connect());
      const b = new PostgresPluginStore(await db.connect());
      const listener = await hearChanges(await db.connect());
      const before = Date.now();
      const first = await recordOf("hello", "1.0.0");
      await a.put(first);
      assert.deepEqual(await b.get("hello"), first);
      const heard = await listener.next();
      assert.deepEqual(Object.keys(heard).sort(), ["at", "change", "kind", "name"]);
      assert.equal(heard.kind, "plugin");
      assert.equal(heard.name, "hello");
      assert.ok(Number.isSafeInteger(heard.change) && (heard.change as number) > 0);
      assert.ok(typeof heard.at === "number" && heard.at >= before - 1000 && heard.at <= Date.now() + 1000);
      assert.deepEqual(
        await b.heads(),
        new Map([["hello", { version: "1.0.0", sha256: first.sha256, change: heard.change }]]),
      );

      // The latest by semver, whatever the order of install; its change number is the newer one.
      await b.put(await recordOf("hello", "1.10.0"));
      const second = await listener.next();
      await b.put(await recordOf("hello", "1.9.0"));
      const third = await listener.next();
      assert.ok(
        (third.change as number) > (second.change as number) && (second.change as number) > (heard.change as number),
      );
      const heads = await a.heads();
      assert.equal(heads.get("hello")?.version, "1.10.0");
      assert.equal(heads.get("hello")?.change, second.change);

      // A remove that removes nothing is not announced: the next notification is the next put's.
      assert.deepEqual(await a.remove("hello", "3.0.0"), []);
      assert.deepEqual(await a.remove("nothing"), []);
      assert.deepEqual(await a.remove("hello", "1.10.0"), ["1.10.0"]);
      const removed = await listener.next();
      assert.equal(removed.name, "hello");
      assert.ok((removed.change as number) > (third.change as number));
      assert.equal((await b.heads()).get("hello")?.version, "1.9.0");
      await a.put(await recordOf("other", "1.0.0"));
      assert.equal((await listener.next()).name, "other");
      assert.deepEqual(await b.remove("hello"), ["1.0.0", "1.9.0"]);
      assert.equal((await listener.next()).name, "hello");
      assert.deepEqual([...(await a.heads()).keys()], ["other"]);
      await listener.stop();
    } finally {
      await db.close();
    }
  },
});

Deno.test({
  name:
    `PostgresPluginStore: a put whose connection is terminated mid-transaction leaves nothing or the whole record${noDatabase}`,
  ignore: testPostgres === undefined,
  async fn() {
    const db = await freshKvDatabase();
    try {
      const sql = await db.connect();
      const store = new PostgresPluginStore(sql, { timeoutMs: 20_000 });
      const admin = await db.connect();
      const listener = await hearChanges(await db.connect());
      const record = await recordOf("big", "1.0.0", { tag: "x".repeat(100) });
      record.wasm = new Uint8Array([...record.wasm, ...new Uint8Array(1 << 20).fill(7)]);
      record.sha256 = await sha256Hex(record.wasm);
      // Another transaction holds the row's key: the put inserts, then waits on it, inside its statement.
      const blocker = await admin.reserve();
      await blocker`BEGIN`;
      await blocker`INSERT INTO plugins (name, version, sha256, wasm, manifest) VALUES ('big', '1.0.0', ${
        "0".repeat(64)
      }, '', '{}')`;
      const put = store.put(record).then(() => "committed", (error) => error);
      let pid: number | undefined;
      for (let polls = 0; pid === undefined; polls++) {
        assert.ok(polls < 2000, "the put never waited on the lock");
        const rows = await admin`SELECT pid FROM pg_stat_activity WHERE datname = current_database()
          AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO plugins%'`;
        pid = rows[0]?.pid;
      }
      await admin`SELECT pg_terminate_backend(${pid})`;
      await blocker`ROLLBACK`;
      blocker.release();
      const outcome = await put;
      // Terminated before COMMIT once: the put was re-sent on a live connection (the whole record) or failed (nothing).
      const stored = await store.get("big", "1.0.0");
      if (outcome === "committed") assert.deepEqual(stored, record);
      else {
        assert.ok(outcome instanceof StoreUnavailableError, String(outcome));
        assert.equal(stored, undefined);
      }
      const rows = await admin`SELECT count(*)::int AS n FROM plugins`;
      assert.equal(rows[0]!.n, stored === undefined ? 0 : 1);
      if (stored !== undefined) assert.equal((await listener.next()).name, "big");

      // Terminated on every attempt: the put gives up as unavailable, and nothing of it is stored or announced.
      const blocked = await admin.reserve();
      await blocked`BEGIN`;
      await blocked`INSERT INTO plugins (name, version, sha256, wasm, manifest)
        VALUES ('big', '2.0.0', ${"0".repeat(64)}, '', '{}')`;
      const second = await recordOf("big", "2.0.0");
      let settled = false;
      const failing = store.put(second).then(() => "committed", (error) => error).finally(() => settled = true);
      for (let polls = 0; !settled; polls++) {
        assert.ok(polls < 20_000, "the put neither waited on the lock nor gave up");
        const waiting = await admin`SELECT pid FROM pg_stat_activity WHERE datname = current_database()
          AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO plugins%'`;
        for (const { pid } of waiting) await admin`SELECT pg_terminate_backend(${pid})`;
      }
      await blocked`ROLLBACK`;
      blocked.release();
      const gaveUp = await failing;
      assert.ok(gaveUp instanceof StoreUnavailableError, String(gaveUp));
      assert.match(
        gaveUp.message,
        /^Cannot install plugin "big@2\.0\.0": the database is unreachable \((57P01|CONNECTION_CLOSED)\)$/,
      );
      assert.equal(await store.get("big", "2.0.0"), undefined);
      assert.equal((await store.get("big"))?.manifest.version, stored === undefined ? undefined : "1.0.0");
      // Announced only when committed: the next notification is the marker's.
      await store.put(await recordOf("marker", "1.0.0"));
      assert.equal((await listener.next()).name, "marker");
      await listener.stop();
    } finally {
      await db.close();
    }
  },
});

Deno.test({
  name: `PostgresPluginStore: reads and puts carry on when the server ends their connections (a restart)${noDatabase}`,
  ignore: testPostgres === undefined,
  async fn() {
    const db = await freshKvDatabase();
    try {
      const store = new PostgresPluginStore(await db.connect());
      const admin = await db.connect();
      const restart = async (): Promise<void> => {
        const ended = await admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid()`;
        assert.ok(ended.length >= 1);
      };
      for (let round = 1; round <= 3; round++) {
        const record = await recordOf("p", `${round}.0.0`);
        await restart();
        await store.put(record);
        await restart();
        assert.deepEqual(await store.get("p"), record);
        await restart();
        assert.equal((await store.list())[0]?.latest, `${round}.0.0`);
        await restart();
        assert.equal((await store.heads()).get("p")?.version, `${round}.0.0`);
      }
      // A remove is not sent twice: it succeeds or fails as unavailable, and a later read tells the truth.
      await restart();
      const removed = await store.remove("p", "3.0.0").catch((error) => error);
      if (removed instanceof Error) assert.ok(removed instanceof StoreUnavailableError, String(removed));
      else assert.deepEqual(removed, ["3.0.0"]);
      if (!(removed instanceof Error)) assert.equal((await store.get("p"))?.manifest.version, "2.0.0");
    } finally {
      await db.close();
    }
  },
});

Deno.test({
  name:
    `PostgresPluginStore: a row whose bytes changed is refused on read, a failed statement names its SQLSTATE${noDatabase}`,
  ignore: testPostgres === undefined,
  async fn() {
    const db = await freshKvDatabase();
    try {
      const sql = await db.connect();
      const store = new PostgresPluginStore(sql);
      await store.put(await recordOf("p", "1.0.0"));
      await sql`UPDATE plugins SET wasm = '\\x00' WHERE name = 'p'`;
      await assert.rejects(
        store.get("p"),
        /^Error: Cannot read plugin "p@1\.0\.0": its wasm hashes to "[0-9a-f]{64}" but/,
      );
      await sql`DROP TABLE plugins`;
      await assert.rejects(
        store.put(await recordOf("p", "2.0.0")),
        /^Error: Cannot install plugin "p@2\.0\.0": the database refused the statement \(SQLSTATE 42P01\)$/,
      );
      await assert.rejects(
        store.list(),
        /^Error: Cannot list plugins: the database refused the statement \(SQLSTATE 42P01\)$/,
      );
    } finally {
      await db.close();
    }
  },
});

Deno.test("PostgresPluginStore fails as unavailable at once when nothing listens at the database's address", async () => {
  // A port that was free a moment ago: connecting is refused.
  await using refused = refusedDatabase();
  const { sql } = refused;
  const store = new PostgresPluginStore(sql, { timeoutMs: 10_000 });
  const started = performance.now();
  await assertUnavailable(
    store.put(await recordOf("x", "1.0.0")),
    /^Cannot install plugin "x@1\.0\.0": the database is unreachable \(ECONNREFUSED\)$/,
  );
  await assertUnavailable(store.get("x"), /^Cannot read plugin "x": the database is unreachable \(ECONNREFUSED\)$/);
  await assertUnavailable(
    store.remove("x", "1.0.0"),
    /^Cannot remove plugin "x@1\.0\.0": the database is unreachable/,
  );
  await assertUnavailable(store.heads(), /^Cannot read plugin heads: the database is unreachable/);
  assert.ok(performance.now() - started < 5000, "refused connections must not wait for the timeout");
});

Deno.test("PostgresPluginStore fails as unavailable within timeoutMs when the database accepts but never answers", async () => {
  // A server that takes the connection and says nothing, as a stalled or half-dead database does.
  await using silent = silentDatabase();
  const { sql } = silent;
  const store = new PostgresPluginStore(sql, { timeoutMs: 300 });
  const started = performance.now();
  await assertUnavailable(store.list(), /^Cannot list plugins: the database did not answer within 300 ms$/);
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= 290 && elapsed < 2000, `took ${elapsed} ms`);
});

Deno.test("new PostgresPluginStore() refuses a timeout that is not a positive integer", () => {
  const sql = postgres("postgres://keycard@127.0.0.1:1/keycard", { onnotice: () => {} });
  for (const timeoutMs of [0, -1, 1.5, Number.NaN]) {
    assert.throws(() => new PostgresPluginStore(sql, { timeoutMs }), RangeError);
  }
});
