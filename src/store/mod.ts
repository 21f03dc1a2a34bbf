/**
 * Where shared state lives. This first slice of the PostgreSQL store
 * (issue 14) offers the connection and the schema: {@linkcode connect} opens a
 * bounded pool and checks it answers, {@linkcode migrate} applies the
 * versioned {@linkcode MIGRATIONS} once however many replicas start together,
 * and refuses a database migrated by a newer keycard.
 *
 * @example At start, with `store: { kind: postgres, url }`
 * ```ts ignore
 * import { connect, migrate } from "./mod.ts";
 * const sql = await connect("postgres://keycard@127.0.0.1:5432/keycard");
 * await migrate(sql);
 * ```
 *
 * @module
 */
export { StoreSchemaError, StoreUnavailableError } from "./errors.ts";
export { connect, type ConnectOptions, POSTGRES_ENV_VARS } from "./postgres/connect.ts";
export { migrate, type MigrateOptions, type MigrateResult } from "./postgres/migrate.ts";
export { type Migration, MIGRATIONS } from "./postgres/migrations.ts";
