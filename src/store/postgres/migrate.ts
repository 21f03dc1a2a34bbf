import type { Sql, TransactionSql } from "postgres";
import { StoreSchemaError, StoreUnavailableError } from "../errors.ts";
import { type Migration, MIGRATIONS } from "./migrations.ts";
import { sha256Hex } from "../../registry/mod.ts";

/** Options of {@linkcode migrate}. */
export interface MigrateOptions {
  /** The migrations to apply, oldest first (tests pass their own). @default {MIGRATIONS} */
  migrations?: readonly Migration[];
  /** Milliseconds to wait for another replica's migration (the advisory lock) before failing. @default {120000} */
  lockTimeoutMs?: number;
  /** Milliseconds one migration's statements may run before the server cancels them. @default {600000} */
  statementTimeoutMs?: number;
}

/** What {@linkcode migrate} did. */
export interface MigrateResult {
  /** The database's schema version now: the newest migration applied. */
  version: number;
  /** The migrations this call applied (none when another replica, or an earlier start, had). */
  applied: Migration[];
}

/**
 * Key of the advisory lock all replicas take to migrate: "keycard\0" as a
 * big-endian int8, so that it is unlikely to meet another application's.
 */
const LOCK_KEY = "7738725002449675264";

/**
 * Brings the database's schema up to the newest migration: each missing
 * migration is applied in a transaction of its own, holding a transaction
 * advisory lock, and recorded in `keycard_migrations` (version, name, SHA-256
 * of its SQL). Replicas that start together queue on the lock, and each sees
 * what the previous one applied, so every migration runs exactly once.
 *
 * @param sql A pool on the database (see {@linkcode connect}).
 * @param options Migrations and timeouts.
 * @returns The version reached and the migrations this call applied.
 * @throws {RangeError} When the migrations are not numbered 1, 2, 3 ... in order.
 * @throws {StoreSchemaError} When the database is newer than the code, an applied migration differs from the code's,
 * or a migration fails (it is rolled back).
 * @throws {StoreUnavailableError} When another replica holds the lock past `lockTimeoutMs`.
 *
 * @example At start
 * ```ts ignore
 * import { connect } from "./connect.ts";
 * import { migrate } from "./migrate.ts";
 * const sql = await connect("postgres://keycard@127.0.0.1:5432/keycard");
 * const { version, applied } = await migrate(sql);
 * ```
 */
export async function migrate(sql: Sql, options: MigrateOptions = {}): Promise<MigrateResult> {
  const migrations = options.migrations ?? MIGRATIONS;
  checkOrder(migrations);
  const encoder = new TextEncoder();
  const digests = await Promise.all(migrations.map((migration) => sha256Hex(encoder.encode(migration.sql))));
  const latest = migrations.length;
  const applied: Migration[] = [];
  for (;;) {
    let next: Migration | undefined;
    let current: number;
    try {
      current = await sql.begin(async (tx) => {
        await tx`SELECT set_config('lock_timeout', ${String(options.lockTimeoutMs ?? 120_000)}, true),
          set_config('statement_timeout', ${String(options.statementTimeoutMs ?? 600_000)}, true)`;
        await tx.unsafe(`SELECT pg_advisory_xact_lock(${LOCK_KEY})`);
        const version = await appliedVersion(tx, migrations, digests);
        next = migrations[version];
        if (next === undefined) return version;
        await tx.unsafe(next.sql);
        await tx`INSERT INTO keycard_migrations (version, name, sha256)
          VALUES (${next.version}, ${next.name}, ${digests[version]!})`;
        return next.version;
      });
    } catch (error) {
      throw translate(error, next, latest, options.lockTimeoutMs ?? 120_000);
    }
    if (next === undefined) return { version: current, applied };
    applied.push(next);
  }
}

/** Reads (creating it the first time) `keycard_migrations` and checks it against the code; returns its version. */
async function appliedVersion(
  tx: TransactionSql,
  migrations: readonly Migration[],
  digests: string[],
): Promise<number> {
  // Checked rather than CREATE TABLE IF NOT EXISTS, whose notice would reach a client that prints notices.
  const [{ exists }] = await tx<[{ exists: boolean }]>`SELECT to_regclass('keycard_migrations') IS NOT NULL AS exists`;
  if (!exists) {
    await tx`CREATE TABLE keycard_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      sha256 text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`;
    return 0;
  }
  const rows = await tx<{ version: number; name: string; sha256: string }[]>`
    SELECT version, name, sha256 FROM keycard_migrations ORDER BY version`;
  const version = rows.at(-1)?.version ?? 0;
  if (version > migrations.length) {
    throw new StoreSchemaError(
      `Database schema version ${version} ("${rows.at(-1)!.name}") is newer than this keycard knows ` +
        `(${migrations.length}): run a keycard at least as new as the one that migrated it`,
      { databaseVersion: version, codeVersion: migrations.length },
    );
  }
  for (const [index, row] of rows.entries()) {
    if (row.version !== index + 1) {
      throw new StoreSchemaError(
        `Database schema has migration ${row.version} ("${row.name}") where ${index + 1} was expected: ` +
          `keycard_migrations has a gap`,
        { databaseVersion: version, codeVersion: migrations.length },
      );
    }
    if (row.sha256 !== digests[index]) {
      throw new StoreSchemaError(
        `Migration ${row.version} ("${row.name}") applied to this database differs from this keycard's ` +
          `("${migrations[index]!.name}"): its SQL changed after it shipped (sha256 ${row.sha256} vs ${
            digests[index]
          })`,
        { databaseVersion: version, codeVersion: migrations.length },
      );
    }
  }
  return version;
}

function translate(error: unknown, next: Migration | undefined, latest: number, lockTimeoutMs: number): unknown {
  if (error instanceof StoreSchemaError) return error;
  const code = (error as { code?: string }).code;
  if (code === "55P03") {
    return new StoreUnavailableError(
      `Timed out after ${lockTimeoutMs} ms waiting for another replica's migration (advisory lock ${LOCK_KEY})`,
      { code, cause: error },
    );
  }
  if (next !== undefined && (error as { severity?: string }).severity !== undefined) {
    return new StoreSchemaError(
      `Migration ${next.version} ("${next.name}") failed and was rolled back: ${(error as Error).message}`,
      { databaseVersion: next.version - 1, codeVersion: latest, cause: error },
    );
  }
  return error;
}

function checkOrder(migrations: readonly Migration[]): void {
  for (const [index, migration] of migrations.entries()) {
    if (migration.version !== index + 1) {
      throw new RangeError(
        `Migration "${migration.name}" has version ${migration.version} where ${index + 1} was expected: ` +
          `migrations are numbered 1, 2, 3 ... in order`,
      );
    }
  }
}
