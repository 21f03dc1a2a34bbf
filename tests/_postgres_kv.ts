/**
 * Databases for the plugin KV tests on PostgreSQL: each call makes a database
 * of its own on the tests' server (so a test sees an empty `kv` table however
 * often the suite ran before), migrated as keycard migrates, and drops it after.
 */
import type { Sql } from "postgres";
import { CHANGES_CHANNEL } from "../src/store/postgres/change_feed.ts";
import { connect } from "../src/store/postgres/connect.ts";
import { migrate } from "../src/store/postgres/migrate.ts";
import { createTestDatabase, startTestPostgres } from "./_postgres.ts";

/** The tests' server, or undefined on a machine without PostgreSQL (those tests are then ignored by name). */
export const testPostgres = await startTestPostgres();

/** A fresh database: `connect()` opens another pool on it (another replica); `close()` ends them and drops it. */
export interface KvDatabase {
  /** A new pool on it, as one replica holds. */
  connect(): Promise<Sql>;
  /** Ends every pool opened by `connect()` and drops the database. */
  close(): Promise<void>;
}

/**
 * Creates and migrates a database on {@linkcode testPostgres}.
 * @returns The database.
 */
export async function freshKvDatabase(): Promise<KvDatabase> {
  if (testPostgres === undefined) throw new Error("No PostgreSQL for this test: it should have been ignored");
  const database = await createTestDatabase(testPostgres.url);
  const pools: Sql[] = [];
  const open = async (): Promise<Sql> => {
    const sql = await connect(database.url);
    pools.push(sql);
    return sql;
  };
  try {
    await migrate(await open());
  } catch (error) {
    await close();
    throw error;
  }
  async function close(): Promise<void> {
    // Every test awaits its calls before this; a pool whose connection the server ended would wait out a timeout.
    await Promise.all(pools.map((sql) => sql.end({ timeout: 0 })));
    await database[Symbol.asyncDispose]();
  }
  return { connect: open, close };
}

/**
 * Registers a test that runs on a fresh migrated database (dropped after), ignored by name on a machine without
 * PostgreSQL.
 *
 * @param name The test's name.
 * @param body The test, given the database.
 */
export function testOnDatabase(name: string, body: (db: KvDatabase) => Promise<void>): void {
  Deno.test({
    name: `${name}${testPostgres === undefined ? " (ignored: no PostgreSQL)" : ""}`,
    ignore: testPostgres === undefined,
    async fn() {
      const db = await freshKvDatabase();
      try {
        await body(db);
      } finally {
        await db.close();
      }
    },
  });
}

/** What {@linkcode hearChanges} returns. */
export interface ChangeListener {
  /** The next payload (parsed), waiting at most 10 s for it. */
  next(): Promise<Record<string, unknown>>;
  /** Stops listening. */
  stop(): Promise<void>;
}

/**
 * Listens on the channel replicas announce changes on, keeping every payload in order.
 *
 * @param sql A pool on the database.
 * @returns The listener.
 */
export async function hearChanges(sql: Sql): Promise<ChangeListener> {
  const heard: string[] = [];
  let wake: (() => void) | undefined;
  const { unlisten } = await sql.listen(CHANGES_CHANNEL, (payload) => {
    heard.push(payload);
    wake?.();
  });
  return {
    async next() {
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        while (heard.length === 0) {
          await new Promise<void>((resolve, reject) => {
            wake = resolve;
            timer = setTimeout(() => reject(new Error("No notification within 10 s")), 10_000);
          });
          clearTimeout(timer);
        }
      } finally {
        clearTimeout(timer);
        wake = undefined;
      }
      return JSON.parse(heard.shift()!);
    },
    stop: unlisten,
  };
}
