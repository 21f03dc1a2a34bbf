/**
 * Where shared state lives when several replicas serve together: a PostgreSQL
 * database. {@linkcode connect} opens a bounded pool and checks it answers,
 * {@linkcode migrate} applies the versioned {@linkcode MIGRATIONS} once however
 * many replicas start together (and refuses a database migrated by a newer
 * keycard); then the stores share, each on its own table:
 * {@linkcode PostgresPluginStore} (installed plugins), {@linkcode PostgresPolicyStore}
 * (operator policy files, seeded once from a policy directory),
 * {@linkcode PostgresKvStore} (plugin key-value entries) and
 * {@linkcode PostgresAuditWriter} with {@linkcode queryAudit} (the audit log of
 * every replica, spooled locally while the database is away).
 * {@linkcode ChangeFeed} tells each replica about every change any replica
 * commits, and when to catch up after a reconnect.
 *
 * @example At start, with `store: { kind: postgres, url }`
 * ```ts ignore
 * import { ChangeFeed, connect, migrate, PostgresPluginStore } from "./mod.ts";
 * const sql = await connect("postgres://keycard@127.0.0.1:5432/keycard");
 * await migrate(sql);
 * const plugins = new PostgresPluginStore(sql);
 * const feed = await ChangeFeed.listen(sql, { apply: async () => console.log(await plugins.heads()) });
 * ```
 *
 * @module
 */
export { StoreSchemaError, StoreUnavailableError } from "./errors.ts";
export { connect, type ConnectOptions, POSTGRES_ENV_VARS } from "./postgres/connect.ts";
export { migrate, type MigrateOptions, type MigrateResult } from "./postgres/migrate.ts";
export { type Migration, MIGRATIONS } from "./postgres/migrations.ts";
export { type Change, ChangeFeed, type ChangeFeedOptions, CHANGES_CHANNEL } from "./postgres/change_feed.ts";
export {
  type PluginHead,
  PostgresPluginStore,
  type PostgresPluginStoreOptions,
} from "./postgres/postgres_plugin_store.ts";
export {
  checkPolicyName,
  type PolicyChange,
  PostgresPolicyStore,
  type PostgresPolicyStoreOptions,
  type StoredPolicy,
} from "./postgres/postgres_policy_store.ts";
export { PostgresKvStore, type PostgresKvStoreOptions } from "./postgres/postgres_kv_store.ts";
export { checkSessionBounds, MAX_SESSIONS, randomSessionId, SESSION_TTL_MS } from "./session_rules.ts";
export {
  PostgresSessionStore,
  type PostgresSessionStoreOptions,
  type StoredSession,
} from "./postgres/postgres_session_store.ts";
export {
  PostgresAuditWriter,
  type PostgresAuditWriterOptions,
  type PostgresAuditWriterStats,
} from "./postgres/postgres_audit.ts";
export {
  type AuditReadOptions,
  pruneAudit,
  type PruneAuditOptions,
  queryAudit,
  readAuditWindow,
  type ReplicaAuditEvent,
} from "./postgres/postgres_audit_query.ts";
