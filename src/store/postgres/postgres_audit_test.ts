import assert from "node:assert/strict";
import type { Sql } from "postgres";
import { eventually } from "../../../tests/_test_utils.ts";
import { AuditLog, type AuditQuery } from "../../audit/mod.ts";
import type { AuditEvent } from "../../audit/mod.ts";
import { createTestDatabase, silentDatabase, type TestDatabase } from "../../../tests/_postgres.ts";
import { testPostgres } from "../../../tests/_postgres_kv.ts";
import { startTcpProxy, type TcpProxy } from "../../../tests/_tcp_proxy.ts";
import { StoreUnavailableError } from "../errors.ts";
import { connect } from "./connect.ts";
import { migrate } from "./migrate.ts";
import { PostgresAuditWriter } from "./postgres_audit.ts";
import { pruneAudit, queryAudit, readAuditWindow } from "./postgres_audit_query.ts";

const noDatabase = testPostgres === undefined ? " (ignored: no PostgreSQL)" : "";
const ignore = testPostgres === undefined;
const BASE = Date.parse("2026-01-01T00:00:00.000Z");

/** Event number `i`: plugins, actions and decisions vary with it; its time is BASE + i seconds. */
function event(i: number, overrides: Partial<AuditEvent> = {}): AuditEvent {
  return {
    time: new Date(BASE + i * 1000).toISOString(),
    callId: `c-${i}`,
    plugin: ["enrich", "relay", "counter"][i % 3]!,
    version: "1.0.0",
    action: ["fs.read", "http.fetch"][i % 2]!,
    resource: `File::"/data/${i}"`,
    decision: i % 4 === 0 ? "deny" : "allow",
    policies: i % 4 === 0 ? [] : ["p0"],
    errors: [],
    caller: i % 5 === 0 ? null : `caller-${i}`,
    durationUs: i,
    ...(i % 4 === 0 ? { reason: "denied by default" } : {}),
    ...overrides,
  };
}

/** A migrated database of its own; `pool(url?)` opens a pool on it (through a proxy when given its URL). */
interface AuditDatabase {
  readonly db: TestDatabase;
  pool(url?: string): Promise<Sql>;
  /** The database's URL with another port on 127.0.0.1 (a proxy's). */
  via(port: number): string;
  close(): Promise<void>;
}

async function freshAuditDatabase(): Promise<AuditDatabase> {
  const db = await createTestDatabase(testPostgres!.url);
  const pools: Sql[] = [];
  const pool = async (url = db.url) => {
    const sql = await connect(url, { connectTimeoutSeconds: 2 });
    pools.push(sql);
    return sql;
  };
  await migrate(await pool());
  return {
    db,
    pool,
    via(port) {
      const url = new URL(db.url);
      url.hostname = "127.0.0.1";
      url.port = String(port);
      return url.href;
    },
    async close() {
      await Promise.all(pools.map((sql) => sql.end({ timeout: 0 })));
      await db[Symbol.asyncDispose]();
    },
  };
}

async function counts(sql: Sql): Promise<{ rows: number; uids: number; transactions: number }> {
  const [row] = await sql`SELECT count(*)::int AS rows, count(DISTINCT uid)::int AS uids,
    count(DISTINCT xmin::text)::int AS transactions FROM audit`;
  return { rows: row!.rows, uids: row!.uids, transactions: row!.transactions };
}

async function spoolLines(path: string): Promise<string[]> {
  try {
    return (await Deno.readTextFile(path)).split("\n").filter((line) => line !== "");
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
}

/** A test on a fresh audit database and a temp dir, both removed after; ignored by name without PostgreSQL. */
function auditTest(name: string, body: (db: AuditDatabase, dir: string) => Promise<void>): void {
  Deno.test({
    name: `${name}${noDatabase}`,
    ignore,
    async fn() {
      const db = await freshAuditDatabase();
      const dir = await Deno.makeTempDir();
      try {
        await body(db, dir);
      } finally {
        await db.close();
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

function targetOf(url: string): { hostname: string; port: number } {
  const parsed = new URL(url);
  return { hostname: parsed.hostname, port: Number(parsed.port || 5432) };
}

auditTest(
  `PostgresAuditWriter: 1,050 events in batches of 500 are 3 insert transactions and exactly 1,050 rows`,
  async (db, dir) => {
    const sql = await db.pool();
    const writer = await PostgresAuditWriter.open(sql, { replica: "r-1", spoolPath: `${dir}/spool.jsonl` });
    for (let i = 0; i < 1050; i++) writer.write(event(i));
    await writer.flush();
    assert.deepEqual(await counts(sql), { rows: 1050, uids: 1050, transactions: 3 });
    const stats = writer.stats();
    assert.equal(stats.written, 1050);
    assert.equal(stats.spooled, 0);
    assert.equal(stats.queued, 0);
    assert.equal(stats.lastError, undefined);
    // A partial batch goes out by itself after flushMs, without flush().
    for (let i = 0; i < 3; i++) writer.write(event(2000 + i));
    await eventually("the partial batch inserted after flushMs", async () => (await counts(sql)).rows === 1053);
    await writer.close();
    assert.deepEqual(await spoolLines(`${dir}/spool.jsonl`), []);
    // Written after close: counted as dropped, never thrown.
    writer.write(event(1));
    assert.equal(writer.stats().dropped, 1);
    assert.equal((await counts(sql)).rows, 1053);
  },
);

auditTest(
  `PostgresAuditWriter: three replicas writing at once, queryAudit returns every event with its replica`,
  async (db, dir) => {
    const replicas = ["a", "b", "c"];
    const writers = await Promise.all(
      replicas.map(async (replica) =>
        PostgresAuditWriter.open(await db.pool(), {
          replica,
          spoolPath: `${dir}/${replica}/spool.jsonl`,
          batchSize: 50,
        })
      ),
    );
    // Interleaved, across event-loop turns, so that the three pools insert concurrently.
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < 30; i++) {
        writers.forEach((writer, w) => writer.write(event(round * 30 + i, { callId: `${replicas[w]}-${round}-${i}` })));
      }
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    await Promise.all(writers.map((writer) => writer.flush()));
    const sql = await db.pool();
    assert.deepEqual(await counts(sql).then(({ rows, uids }) => ({ rows, uids })), { rows: 900, uids: 900 });
    const events = await queryAudit(sql, { limit: Infinity });
    assert.equal(events.length, 900);
    for (const replica of replicas) {
      const own = events.filter((e) => e.replica === replica);
      assert.equal(own.length, 300, replica);
      assert.ok(own.every((e) => e.callId.startsWith(`${replica}-`)));
    }
    await Promise.all(writers.map((writer) => writer.close()));
  },
);

auditTest(`queryAudit() finds what AuditLog.query() finds, in the same order, for the same events`, async (db, dir) => {
  const sql = await db.pool();
  const writer = await PostgresAuditWriter.open(sql, { replica: "r-1", spoolPath: `${dir}/spool.jsonl` });
  const log = new AuditLog({ aggregate: false });
  log.subscribe((e) => writer.write(e));
  for (let i = 0; i < 60; i++) {
    // Every seventh is a sum: first decision half a second before, last at its slot, as AuditLog emits them.
    const sum = i % 7 === 3
      ? { count: 3, time: new Date(BASE + i * 1000 - 500).toISOString(), lastTime: event(i).time }
      : {};
    log.record(event(i, sum));
  }
  await writer.flush();
  const at = (i: number) => event(i).time;
  const filters: AuditQuery[] = [
    {},
    { limit: Infinity },
    { limit: 0 },
    { limit: 7 },
    { plugin: "relay" },
    { action: "http.fetch", decision: "deny" },
    { decision: "allow", limit: 5 },
    { since: at(45) },
    // A sum whose first decision is before since and last at it matches, as in AuditLog.
    { since: new Date(Date.parse(at(52)) - 1) },
    { since: at(10), plugin: "enrich", action: "fs.read", limit: 4 },
    { plugin: "nobody" },
  ];
  for (const filter of filters) {
    const expected = log.query(filter);
    const found = await queryAudit(sql, filter);
    assert.deepEqual(
      found.map(({ replica, ...rest }) => (assert.equal(replica, "r-1"), rest)),
      expected,
      JSON.stringify(filter),
    );
  }
  // Bad input: the same errors as AuditLog.query, nothing read.
  await assert.rejects(queryAudit(sql, { limit: -1 }), RangeError);
  await assert.rejects(queryAudit(sql, { limit: 1.5 }), RangeError);
  await assert.rejects(queryAudit(sql, { since: "yesterday" }), /since "yesterday": it is not a valid date/);
  // A SQL-looking filter is a value, not SQL.
  assert.deepEqual(await queryAudit(sql, { plugin: "x' OR '1'='1" }), []);
  await log.close();
  await writer.close();
});

auditTest(
  `readAuditWindow() reads the last N events since a time, oldest first, as readAuditEvents does`,
  async (db, dir) => {
    const sql = await db.pool();
    const writer = await PostgresAuditWriter.open(sql, { replica: "r-1", spoolPath: `${dir}/spool.jsonl` });
    // Written out of time order (as replicas and the spool do): the window follows decision time.
    const order = [5, 1, 9, 3, 7, 0, 8, 2, 6, 4];
    for (const i of order) writer.write(event(i));
    await writer.flush();
    const ids = (events: AuditEvent[]) => events.map((e) => e.callId);
    assert.deepEqual(ids(await readAuditWindow(sql, {})), order.toSorted((a, b) => a - b).map((i) => `c-${i}`));
    assert.deepEqual(ids(await readAuditWindow(sql, { last: 3 })), ["c-7", "c-8", "c-9"]);
    assert.deepEqual(ids(await readAuditWindow(sql, { since: event(6).time })), ["c-6", "c-7", "c-8", "c-9"]);
    assert.deepEqual(ids(await readAuditWindow(sql, { since: event(2).time, last: 2 })), ["c-8", "c-9"]);
    assert.deepEqual(ids(await readAuditWindow(sql, { last: 100 })).length, 10);
    await assert.rejects(readAuditWindow(sql, { last: 0 }), RangeError);
    await assert.rejects(readAuditWindow(sql, { since: "soon" }), RangeError);
    await writer.close();
  },
);

auditTest(
  `PostgresAuditWriter: events written while the database is cut are spooled, then drained once: none lost, none doubled`,
  async (db, dir) => {
    let proxy: TcpProxy | undefined;
    try {
      const direct = await db.pool();
      proxy = await startTcpProxy(targetOf(db.db.url));
      const sql = await db.pool(db.via(proxy.port));
      const spoolPath = `${dir}/data/spool/audit-spool.jsonl`;
      // retryMs far away: the test drains by hand, so that each step is known.
      const writer = await PostgresAuditWriter.open(sql, { replica: "r-1", spoolPath, retryMs: 3_600_000 });
      for (let i = 0; i < 5; i++) writer.write(event(i));
      await writer.flush();
      assert.equal((await counts(direct)).rows, 5);

      proxy.cut();
      const n = 1200;
      for (let i = 5; i < 5 + n; i++) writer.write(event(i));
      await writer.flush();
      let stats = writer.stats();
      assert.equal(stats.spooled, n);
      assert.equal(stats.written, 5);
      assert.match(stats.lastError ?? "", /the database is unreachable \(ECONNREFUSED|CONNECTION_/);
      const lines = await spoolLines(spoolPath);
      assert.equal(lines.length, n);
      assert.equal((await Deno.stat(spoolPath)).mode! & 0o777, 0o600);
      assert.equal((await counts(direct)).rows, 5);
      // A drain while still cut changes nothing.
      await writer.drain();
      assert.equal(writer.stats().spooled, n);
      // While the spool is not empty, new events go behind it, even after the database is back.
      proxy.restore();
      writer.write(event(5 + n));
      await writer.flush();
      assert.equal(writer.stats().spooled, n + 1);
      assert.equal((await counts(direct)).rows, 5);

      await writer.drain();
      stats = writer.stats();
      assert.equal(stats.spooled, 0);
      assert.equal(stats.drained, n + 1);
      assert.equal(stats.written, n + 6);
      assert.deepEqual(await spoolLines(spoolPath), []);
      const after = await counts(direct);
      assert.equal(after.rows, n + 6);
      assert.equal(after.uids, n + 6);
      // And the direct path again.
      writer.write(event(9999));
      await writer.flush();
      assert.equal(writer.stats().spooled, 0);
      assert.equal((await counts(direct)).rows, n + 7);
      await writer.close();
    } finally {
      await proxy?.close();
    }
  },
);

auditTest(
  `PostgresAuditWriter: a spool partly inserted before a crash, with a torn last line, drains to exact counts`,
  async (db, dir) => {
    let proxy: TcpProxy | undefined;
    try {
      const direct = await db.pool();
      proxy = await startTcpProxy(targetOf(db.db.url));
      const viaProxy = await db.pool(db.via(proxy.port));
      proxy.cut();
      const spoolPath = `${dir}/audit-spool.jsonl`;
      const options = { replica: "r-1", spoolPath, retryMs: 3_600_000 };
      // A first run spools 300 events and ends while the database is down.
      const first = await PostgresAuditWriter.open(viaProxy, options);
      for (let i = 0; i < 300; i++) first.write(event(i));
      await first.close();
      // close() tried a drain, which moved the records to `.draining` and failed: they stay there, as 300 lines.
      assert.deepEqual(await spoolLines(spoolPath), []);
      const lines = await spoolLines(`${spoolPath}.draining`);
      // Say instead the run died before close(), mid-append: the records still in the spool, the last line torn.
      await Deno.rename(`${spoolPath}.draining`, spoolPath);
      assert.equal(lines.length, 300);
      // A drain had inserted the first 120 when the process died, before it could remove them from the spool.
      await direct`INSERT INTO audit (uid, replica, at, event)
      SELECT r->>'uid', r->>'replica', (r->>'at')::timestamptz, r->'event'
      FROM jsonb_array_elements(${`[${lines.slice(0, 120).join(",")}]`}::text::jsonb) AS r`;
      // And an append was cut short mid-line.
      await Deno.writeTextFile(spoolPath, lines[200]!.slice(0, 40), { append: true });

      // A second run starts while the database is still down: its drain fails, its events queue behind the spool.
      const second = await PostgresAuditWriter.open(viaProxy, options);
      assert.equal(second.stats().spooled, 301);
      await second.drain();
      for (let i = 1000; i < 1050; i++) second.write(event(i));
      await second.close();
      assert.equal(second.stats().spooled, 351);
      assert.equal((await spoolLines(`${spoolPath}.draining`)).length, 301);
      assert.equal((await spoolLines(spoolPath)).length, 50);
      assert.equal((await counts(direct)).rows, 120);

      // A third run with the database up drains both files: every event once, the torn line skipped and counted.
      const third = await PostgresAuditWriter.open(direct, options);
      await third.drain();
      const stats = third.stats();
      assert.equal(stats.spooled, 0);
      assert.equal(stats.skipped, 1);
      assert.equal(stats.drained, 350);
      assert.equal(stats.written, 230);
      assert.match(stats.lastError ?? "", /Skipped 1 unreadable lines/);
      assert.deepEqual(await counts(direct).then(({ rows, uids }) => ({ rows, uids })), { rows: 350, uids: 350 });
      assert.deepEqual(await spoolLines(spoolPath), []);
      assert.deepEqual(await spoolLines(`${spoolPath}.draining`), []);
      await third.close();
    } finally {
      await proxy?.close();
    }
  },
);

auditTest(
  `PostgresAuditWriter: an event PostgreSQL refuses is set aside, the rest of its batch is stored; NUL is stored as U+FFFD`,
  async (db, dir) => {
    const sql = await db.pool();
    // In a directory that does not exist yet: nothing was ever spooled.
    const spoolPath = `${dir}/data/audit-spool.jsonl`;
    const writer = await PostgresAuditWriter.open(sql, { replica: "r-1", spoolPath });
    for (let i = 0; i < 10; i++) {
      if (i === 6) {
        // A lone surrogate in a key (values are made well-formed): jsonb refuses it.
        const request = { context: { "\ud800": 1 } } as unknown as AuditEvent["request"];
        writer.write(event(i, { request }));
      } else writer.write(event(i, i === 2 ? { resource: 'File::"/a\u0000b\ud800"' } : {}));
    }
    await writer.flush();
    const stats = writer.stats();
    assert.equal(stats.written, 9);
    assert.equal(stats.rejected, 1);
    assert.equal(stats.spooled, 0);
    assert.match(stats.lastError ?? "", /refused an audit event \(SQLSTATE 22P02\)/);
    const rejected = await spoolLines(`${spoolPath}.rejected`);
    assert.equal(rejected.length, 1);
    assert.equal(JSON.parse(rejected[0]!).event.callId, "c-6");
    const [row] = await sql`SELECT event->>'resource' AS resource FROM audit WHERE event->>'callId' = 'c-2'`;
    assert.equal(row!.resource, 'File::"/a\uFFFDb\uFFFD"');
    await writer.close();
  },
);

auditTest(
  `pruneAudit() deletes events older than the retention, by decision time, and returns how many`,
  async (db, dir) => {
    const sql = await db.pool();
    const writer = await PostgresAuditWriter.open(sql, { replica: "r-1", spoolPath: `${dir}/spool.jsonl` });
    const day = 86_400_000;
    const ago = (days: number) => new Date(Date.now() - days * day).toISOString();
    for (let i = 0; i < 7; i++) writer.write(event(i, { time: ago(40 + i) }));
    // A sum that began before the cutoff and ended after it is kept (its last decision counts).
    writer.write(event(7, { time: ago(31), lastTime: ago(29), count: 2 }));
    for (let i = 8; i < 12; i++) writer.write(event(i, { time: ago(1) }));
    await writer.flush();
    await assert.rejects(pruneAudit(sql, 0), RangeError);
    await assert.rejects(pruneAudit(sql, -1), RangeError);
    await assert.rejects(pruneAudit(sql, NaN), RangeError);
    await assert.rejects(pruneAudit(sql, 30, { chunk: 0 }), RangeError);
    assert.equal((await counts(sql)).rows, 12);
    assert.equal(await pruneAudit(sql, 30, { chunk: 3 }), 7);
    assert.equal(await pruneAudit(sql, 30), 0);
    const left = await queryAudit(sql, { limit: Infinity });
    assert.deepEqual(left.map((e) => e.callId).toSorted(), ["c-10", "c-11", "c-7", "c-8", "c-9"]);
    assert.equal(await pruneAudit(sql, 0.5), 5);
    await writer.close();
  },
);

Deno.test("PostgresAuditWriter on a database that never answers: flush() spools within timeoutMs; memory stays bounded", async () => {
  await using silent = silentDatabase({ max: 2 });
  const { sql } = silent;
  const dir = await Deno.makeTempDir();
  try {
    const spoolPath = `${dir}/audit-spool.jsonl`;
    const writer = await PostgresAuditWriter.open(sql, {
      replica: "r-1",
      spoolPath,
      batchSize: 10,
      maxQueued: 20,
      timeoutMs: 300,
      retryMs: 3_600_000,
    });
    const started = performance.now();
    // One synchronous burst: 10 go out (and stall), the next 10 are spilled to the spool, 20 more wait (40 held),
    // and the last 60 find no room.
    let most = 0;
    for (let i = 0; i < 100; i++) {
      writer.write(event(i));
      most = Math.max(most, writer.stats().queued);
    }
    assert.equal(most, 40);
    assert.equal(writer.stats().dropped, 60);
    await writer.flush();
    const elapsed = performance.now() - started;
    const stats = writer.stats();
    assert.equal(stats.spooled, 40);
    assert.equal(stats.written, 0);
    assert.equal(stats.queued, 0);
    assert.equal((await spoolLines(spoolPath)).length, 40);
    assert.ok(elapsed < 3000, `flush took ${elapsed} ms`);
    assert.match(stats.lastError ?? "", /did not answer within 300 ms|dropped/);
    await writer.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("queryAudit(), readAuditWindow() and pruneAudit() throw StoreUnavailableError on a database that never answers", async () => {
  await using silent = silentDatabase({ max: 1 });
  const { sql } = silent;
  for (
    const [name, call] of [
      ["query", () => queryAudit(sql, {}, { timeoutMs: 200 })],
      ["read", () => readAuditWindow(sql, {}, { timeoutMs: 200 })],
      ["prune", () => pruneAudit(sql, 30, { timeoutMs: 200 })],
    ] as const
  ) {
    const started = performance.now();
    await assert.rejects(call(), (error: unknown) => {
      assert.ok(error instanceof StoreUnavailableError, `${name}: ${error}`);
      assert.match(
        error.message,
        /^Cannot (query|read|prune) the audit trail: the database did not answer within 200 ms$/,
      );
      return true;
    });
    assert.ok(performance.now() - started < 2000, name);
  }
});

Deno.test({
  name: `queryAudit() on a database that is gone: StoreUnavailableError at once, naming the code${noDatabase}`,
  ignore,
  async fn() {
    const db = await freshAuditDatabase();
    const proxy = await startTcpProxy(targetOf(db.db.url));
    try {
      const sql = await db.pool(db.via(proxy.port));
      proxy.cut();
      await assert.rejects(queryAudit(sql, {}), (error: unknown) => {
        assert.ok(error instanceof StoreUnavailableError, String(error));
        assert.match(error.message, /^Cannot query the audit trail: the database is unreachable \([A-Z_]+\)$/);
        return true;
      });
    } finally {
      await proxy.close();
      await db.close();
    }
  },
});

Deno.test("PostgresAuditWriter.open() refuses bad options with a clear error and creates nothing", async () => {
  const dir = await Deno.makeTempDir();
  const sql = undefined as unknown as Sql;
  const spoolPath = `${dir}/sub/audit-spool.jsonl`;
  try {
    await assert.rejects(PostgresAuditWriter.open(sql, { replica: "", spoolPath }), TypeError);
    await assert.rejects(PostgresAuditWriter.open(sql, { replica: "a\nb", spoolPath }), /without control characters/);
    await assert.rejects(PostgresAuditWriter.open(sql, { replica: "r", spoolPath: "" }), TypeError);
    for (
      const bad of [{ batchSize: 0 }, { batchSize: 1.5 }, { flushMs: -1 }, { timeoutMs: 0 }, { retryMs: 0 }, {
        batchSize: 100,
        maxQueued: 99,
      }]
    ) {
      await assert.rejects(PostgresAuditWriter.open(sql, { replica: "r", spoolPath, ...bad }), RangeError);
    }
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** `promise`, or a failure after `ms`: a test that would hang fails instead. */
async function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) =>
        timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

auditTest(
  `PostgresAuditWriter: write and flush one at a time, each flush resolves; the server ending every connection spools nothing`,
  async (db, dir) => {
    const sql = await db.pool();
    const admin = await db.pool();
    const writer = await PostgresAuditWriter.open(sql, { replica: "r-1", spoolPath: `${dir}/spool.jsonl` });
    // A write made as a flush resolves, while the pump is finishing, is sent all the same.
    for (let i = 0; i < 50; i++) {
      writer.write(event(i));
      await within(5000, writer.flush(), `flush ${i}`);
    }
    assert.equal((await counts(admin)).rows, 50);
    // A restart in effect: every pooled connection of the writer dies; the next batch goes out on new ones.
    await admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
    WHERE datname = ${db.db.name} AND pid <> pg_backend_pid()`;
    for (let i = 50; i < 60; i++) writer.write(event(i));
    await within(5000, writer.flush(), "flush after the connections ended");
    const stats = writer.stats();
    assert.equal(stats.spooled, 0, stats.lastError);
    assert.equal(stats.written, 60);
    assert.equal((await counts(await db.pool())).rows, 60);
    await writer.close();
  },
);
