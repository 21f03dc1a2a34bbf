/**
 * Databases for the plugin KV tests on PostgreSQL: each call makes a database
 * of its own on the tests' server (so a test sees an empty `kv` table however
 * often the suite ran before), migrated as keycard migrates, and drops it after.
 */
import type { Sql } from "postgres";
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
