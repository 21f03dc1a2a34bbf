/** One versioned step of the PostgreSQL schema. */
export interface Migration {
  /** Its place in the order: 1, 2, 3 ... with no gaps. */
  readonly version: number;
  /** A short name, recorded with the version in `keycard_migrations`. */
  readonly name: string;
  /** The statements, run in one transaction. Never edit one that has shipped: add a migration. */
  readonly sql: string;
}

/**
 * The schema of keycard's PostgreSQL store, oldest first. {@linkcode migrate}
 * applies the ones a database lacks, each in a transaction of its own.
 *
 * Version 1, the tables replicas share:
 * - `plugins`: installed plugins, one row per name and version, with the
 *   module's bytes, its SHA-256 (lowercase hex) and its manifest as JSON.
 * - `policies`: operator policy files, one row per name; `version` grows on
 *   every change so that a replica can tell what it missed.
 * - `kv`: plugin key-value entries, namespaced per plugin.
 * - `audit`: audit events of every replica, in insertion order (`id`), with the
 *   replica that recorded it and when.
 *
 * Version 2, what replicas need to follow each other and to write the audit
 * trail exactly once:
 * - `plugins.signature`: the signature given at install, kept with the bytes.
 * - `keycard_meta`: one-time facts about the database (e.g. that the operator
 *   policy files were seeded from a replica's policy directory).
 * - `keycard_change_seq`: one sequence that numbers every change to plugins
 *   and policies (`plugins.change`, `policies.version`), so that a replica can
 *   tell by comparing numbers what it has not applied yet.
 * - `audit.uid`: each event's id, unique, so that an event sent again (after a
 *   lost acknowledgement, or from the local spool) is stored once.
 *
 * Version 3: `plugins.report`, the conformance report the install passed (JSON;
 * null for a plugin seeded from keycard.yaml), so that every replica, and the
 * same one after a restart, shows it.
 *
 * Version 4: `console_sessions`, the operator console's signed-in sessions,
 * so that a console behind a load balancer works on every replica (only a
 * SHA-256 of each session id is stored: a reader of the table cannot ride a
 * session).
 *
 * @example The newest version the code knows
 * ```ts
 * import { MIGRATIONS } from "./migrations.ts";
 * MIGRATIONS.at(-1)!.version; // 4
 * ```
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "shared state: plugins, policies, kv, audit",
    sql: `
CREATE TABLE plugins (
  name text NOT NULL,
  version text NOT NULL,
  sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  wasm bytea NOT NULL,
  manifest jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (name, version)
);
CREATE TABLE policies (
  name text PRIMARY KEY,
  version bigint NOT NULL CHECK (version > 0),
  text text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE kv (
  plugin text NOT NULL,
  namespace text NOT NULL,
  key text NOT NULL,
  value bytea NOT NULL,
  PRIMARY KEY (plugin, namespace, key)
);
CREATE TABLE audit (
  id bigserial PRIMARY KEY,
  replica text NOT NULL,
  at timestamptz NOT NULL DEFAULT now(),
  event jsonb NOT NULL
);
-- Retention deletes by age.
CREATE INDEX audit_at ON audit (at);
`,
  },
  {
    version: 2,
    name: "replicas: change numbers, signatures, meta, audit event ids",
    sql: `
CREATE SEQUENCE keycard_change_seq;
ALTER TABLE plugins ADD COLUMN signature text;
ALTER TABLE plugins ADD COLUMN change bigint NOT NULL DEFAULT nextval('keycard_change_seq');
ALTER TABLE policies ALTER COLUMN version SET DEFAULT nextval('keycard_change_seq');
CREATE TABLE keycard_meta (
  key text PRIMARY KEY,
  value text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE audit ADD COLUMN uid text NOT NULL DEFAULT gen_random_uuid()::text;
CREATE UNIQUE INDEX audit_uid ON audit (uid);
CREATE INDEX audit_plugin ON audit ((event->>'plugin'), at, id);
`,
  },
  {
    version: 3,
    name: "plugins: the conformance report of the install",
    sql: `
ALTER TABLE plugins ADD COLUMN report jsonb;
`,
  },
  {
    version: 4,
    name: "console sessions shared by replicas",
    sql: `
CREATE TABLE console_sessions (
  id_hash text PRIMARY KEY,
  client_id text NOT NULL,
  roles jsonb NOT NULL,
  csrf text NOT NULL,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL
);
CREATE INDEX console_sessions_client ON console_sessions (client_id, created_at);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
`,
  },
];
