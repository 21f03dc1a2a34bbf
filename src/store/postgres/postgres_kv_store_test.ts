import assert from "node:assert/strict";
import postgres from "postgres";
import { refusedDatabase, silentDatabase } from "../../../tests/_postgres.ts";
import { HostCallError } from "../../runtime/mod.ts";
import { freshKvDatabase, testPostgres } from "../../../tests/_postgres_kv.ts";
import { PostgresKvStore } from "./postgres_kv_store.ts";

const encoder = new TextEncoder();
const noDatabase = testPostgres === undefined ? " (ignored: no PostgreSQL)" : "";

async function assertIo(promise: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof HostCallError, `expected a HostCallError, got ${error}`);
    assert.equal(error.code, "io", error.message);
    assert.match(error.message, message);
    return true;
  });
}

Deno.test({
  name: `PostgresKvStore on two replicas: each reads the other's sets and deletes at once${noDatabase}`,
  ignore: testPostgres === undefined,
  async fn() {
    const db = await freshKvDatabase();
    try {
      using a = new PostgresKvStore(await db.connect());
      using b = new PostgresKvStore(await db.connect());
      await a.set("counter", "state", "hits", encoder.encode("1"));
      assert.deepEqual(await b.get("counter", "state", "hits"), encoder.encode("1"));
      await b.set("counter", "state", "hits", encoder.encode("2"));
      assert.deepEqual(await a.get("counter", "state", "hits"), encoder.encode("2"));
      assert.equal(await a.delete("counter", "state", "hits"), true);
      assert.equal(await b.get("counter", "state", "hits"), undefined);
      assert.equal(await b.delete("counter", "state", "hits"), false);
      // Closing one replica's store leaves the other working.
      a.close();
      await b.set("counter", "state", "after", encoder.encode("3"));
      assert.deepEqual(await b.get("counter", "state", "after"), encoder.encode("3"));
    } finally {
      await db.close();
    }
  },
});

Deno.test({
  name:
    `PostgresKvStore: 50 concurrent sets of one key from two replicas end with one of the values, none fails${noDatabase}`,
  ignore: testPostgres === undefined,
  async fn() {
    const db = await freshKvDatabase();
    try {
      const replicas = [new PostgresKvStore(await db.connect()), new PostgresKvStore(await db.connect())];
      const values = Array.from({ length: 50 }, (_, i) => encoder.encode(`value ${i}`));
      const results = await Promise.allSettled(
        values.map((value, i) => replicas[i % 2]!.set("race", "ns", "key", value)),
      );
      assert.deepEqual(results.filter((result) => result.status === "rejected"), []);
      const final = await replicas[0]!.get("race", "ns", "key");
      assert.ok(
        values.some((value) =>
          final !== undefined && value.length === final.length && value.every((b, i) => b === final[i])
        ),
      );
      assert.deepEqual(await replicas[1]!.get("race", "ns", "key"), final);
      // Racing deletes on two replicas: exactly one finds the value.
      const deletes = await Promise.all(
        Array.from({ length: 10 }, (_, i) => replicas[i % 2]!.delete("race", "ns", "key")),
      );
      assert.equal(deletes.filter(Boolean).length, 1);
      const sql = await db.connect();
      const count = await sql`SELECT count(*)::int AS n FROM kv`;
      assert.equal(count[0]?.n, 0);
    } finally {
      await db.close();
    }
  },
});

Deno.test({
  name: `PostgresKvStore: get() and set() carry on when the server ends their connections (a restart)${noDatabase}`,
  ignore: testPostgres === undefined,
  async fn() {
    const db = await freshKvDatabase();
    try {
      using store = new PostgresKvStore(await db.connect());
      const admin = await db.connect();
      const restart = async (): Promise<void> => {
        const ended = await admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid()`;
        assert.ok(ended.length >= 1);
      };
      await store.set("p", "n", "k", encoder.encode("0"));
      for (let round = 1; round <= 5; round++) {
        await restart();
        assert.deepEqual(await store.get("p", "n", "k"), encoder.encode(String(round - 1)), `round ${round}`);
        await restart();
        await store.set("p", "n", "k", encoder.encode(String(round)));
      }
      assert.deepEqual(await store.get("p", "n", "k"), encoder.encode("5"));
      // A delete is not sent twice (a second answer could hide that the first found the value): it succeeds or
      // fails with io, and either way a later get tells the truth.
      await restart();
      const deleted = await store.delete("p", "n", "k").catch((error) => error);
      if (deleted instanceof Error) {
        assert.ok(deleted instanceof HostCallError && deleted.code === "io", String(deleted));
      } else assert.equal(deleted, true);
      if (deleted === true) assert.equal(await store.get("p", "n", "k"), undefined);
    } finally {
      await db.close();
    }
  },
});

Deno.test({
  name: `PostgresKvStore: a failed statement is io naming its SQLSTATE, not the server's message${noDatabase}`,
  ignore: testPostgres === undefined,
  async fn() {
    const db = await freshKvDatabase();
    try {
      const sql = await db.connect();
      using store = new PostgresKvStore(sql);
      await sql`DROP TABLE kv`;
      await assertIo(
        store.set("p", "n", "k", new Uint8Array([1])),
        /^Cannot write key "k": the store failed \(SQLSTATE 42P01\)$/,
      );
      await assertIo(store.get("p", "n", "k"), /^Cannot read key "k": the store failed \(SQLSTATE 42P01\)$/);
      await assertIo(store.delete("p", "n", "k"), /^Cannot delete key "k": the store failed \(SQLSTATE 42P01\)$/);
    } finally {
      await db.close();
    }
  },
});

Deno.test("PostgresKvStore fails with io at once when nothing listens at the database's address", async () => {
  // A port that was free a moment ago: connecting is refused.
  await using refused = refusedDatabase();
  const { sql } = refused;
  using store = new PostgresKvStore(sql, { timeoutMs: 10_000 });
  const started = performance.now();
  await assertIo(
    store.set("p", "n", "k", new Uint8Array([1])),
    /^Cannot write key "k": the database is unreachable \(ECONNREFUSED\)$/,
  );
  await assertIo(store.get("p", "n", "k"), /^Cannot read key "k": the database is unreachable/);
  await assertIo(store.delete("p", "n", "k"), /^Cannot delete key "k": the database is unreachable/);
  assert.ok(performance.now() - started < 5000, "refused connections must not wait for the timeout");
});

Deno.test("PostgresKvStore fails with io within timeoutMs when the database accepts but never answers", async () => {
  // A server that takes the connection and says nothing, as a stalled or half-dead database does.
  await using silent = silentDatabase();
  const { sql } = silent;
  using store = new PostgresKvStore(sql, { timeoutMs: 300 });
  const started = performance.now();
  await assertIo(
    store.set("p", "n", "k", new Uint8Array([1])),
    /^Cannot write key "k": the database did not answer within 300 ms$/,
  );
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= 290 && elapsed < 2000, `took ${elapsed} ms`);
  await assertIo(store.get("p", "n", "k"), /did not answer within 300 ms/);
});

Deno.test("new PostgresKvStore() refuses a timeout that is not a positive integer and a value limit over 65536", () => {
  const sql = postgres("postgres://keycard@127.0.0.1:1/keycard", { onnotice: () => {} });
  assert.throws(() => new PostgresKvStore(sql, { timeoutMs: 0 }), RangeError);
  assert.throws(() => new PostgresKvStore(sql, { timeoutMs: 1.5 }), RangeError);
  assert.throws(() => new PostgresKvStore(sql, { maxValueBytes: 65537 }), /maxValueBytes must be an integer from 1/);
});
