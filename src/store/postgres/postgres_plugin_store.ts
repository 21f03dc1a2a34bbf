import type postgres from "postgres";
import type { PendingQuery, Row, Sql } from "postgres";
import {
  checkPluginName,
  checkPluginVersion,
  checkRecord,
  compareNames,
  type PluginStore,
  type PluginSummary,
  type PutOptions,
  RegistryError,
  sha256Hex,
  sortVersions,
  type StoredPlugin,
} from "../../registry/mod.ts";
import { checkTimeout, sendForStore } from "./_errors.ts";
import { CHANGES_CHANNEL } from "./change_feed.ts";

/** Options of {@linkcode PostgresPluginStore}. */
export interface PostgresPluginStoreOptions {
  /**
   * How long one operation may wait for the database, connecting included, before it fails with
   * {@linkcode StoreUnavailableError}. @default {5000}
   */
  timeoutMs?: number;
}

/** What {@linkcode PostgresPluginStore.heads} tells of one plugin: its latest version, without the bytes. */
export interface PluginHead {
  /** The highest stored version by semantic-version precedence. */
  version: string;
  /** SHA-256 of that version's wasm, 64 lower-case hex digits. */
  sha256: string;
  /** The change number of that version's last write (`keycard_change_seq`). */
  change: number;
}

/**
 * Installed plugins in PostgreSQL's `plugins` table, shared by every replica
 * that connects to the same database. Names, versions and hashes are checked
 * as {@linkcode FileStore} and {@linkcode MemoryStore} check them, and records
 * are copied in and out.
 *
 * Every write is one statement, so one transaction: `put` upserts the row,
 * numbers it from `keycard_change_seq` and sends `pg_notify` on
 * `keycard_changes` (`{"kind":"plugin","name","change","at"}`) together; a
 * replica killed mid-put leaves the old record or the whole new one, and no
 * notification of a write that did not commit. `remove` deletes and notifies
 * the same way, and sends nothing when nothing was removed.
 *
 * Reads and `put` are sent again when the connection they went out on turns
 * out dead (after a database restart): a put is an upsert of the same record,
 * so a second commit changes nothing but the change number. `remove` is not
 * (a second answer would hide what the first removed). A database that cannot
 * be reached or does not answer within `timeoutMs` fails the call with
 * {@linkcode StoreUnavailableError}; a write that timed out may still commit.
 * The store does not own the pool: the caller ends `sql`.
 *
 * @example Install and read a plugin
 * ```ts ignore
 * import { connect } from "./connect.ts";
 * import { PostgresPluginStore } from "./postgres_plugin_store.ts";
 * const sql = await connect("postgres://keycard@127.0.0.1:5432/keycard");
 * const store = new PostgresPluginStore(sql);
 * await store.put(record);
 * (await store.get("hello"))?.manifest.version; // "1.0.0"
 * await sql.end();
 * ```
 */
export class PostgresPluginStore implements PluginStore {
  readonly #sql: Sql;
  readonly #timeoutMs: number;

  /**
   * Makes a store on a connection pool whose database has keycard's schema
   * (see `migrate`).
   *
   * @param sql The pool, from the `postgres` client.
   * @param options The time bound.
   * @throws {RangeError} When `timeoutMs` is not a positive integer.
   *
   * @example Bound every operation to a second
   * ```ts ignore
   * import { connect } from "./connect.ts";
   * import { PostgresPluginStore } from "./postgres_plugin_store.ts";
   * const store = new PostgresPluginStore(await connect(url), { timeoutMs: 1000 });
   * ```
   */
  constructor(sql: Sql, options: PostgresPluginStoreOptions = {}) {
    this.#timeoutMs = checkTimeout(options.timeoutMs ?? 5000);
    this.#sql = sql;
  }

  /**
   * Stores one version, replacing a stored record of the same name and
   * version, and tells every replica listening on `keycard_changes`.
   *
   * @param record The record; `record.manifest.name` and `.version` are its key.
   * @returns Once committed.
   * @throws {TypeError} When the record is malformed (a field of the wrong type).
   * @throws {RangeError} When the name or version breaks the naming rule, or `sha256` is not the hash of `wasm`.
   * @throws {StoreUnavailableError} When the database is unreachable or does not answer within `timeoutMs`.
   * @throws {Error} When the database refuses the statement (the message names its SQLSTATE).
   *
   * @example Install a version
   * ```ts ignore
   * await store.put({ manifest, wasm, sha256, installedAt: new Date().toISOString() });
   * ```
   */
  async put(record: StoredPlugin, options: PutOptions = {}): Promise<void> {
    await checkRecord(record);
    const { name, version } = record.manifest;
    // As an object: the client serializes a jsonb parameter itself (a string would be stored as a JSON string).
    const manifest = this.#sql.json(structuredClone(record.manifest) as unknown as postgres.JSONValue);
    const installedAt = new Date(record.installedAt);
    const wasm = record.wasm.slice();
    const signature = record.signature ?? null;
    const report = record.report === undefined
      ? null
      : this.#sql.json(structuredClone(record.report) as unknown as postgres.JSONValue);
    const overwrite = options.overwrite ?? true;
    const stored = await this.#run(`install plugin ${id(name, version)}`, true, () =>
      this.#sql`
        WITH up AS (
          INSERT INTO plugins (name, version, sha256, wasm, manifest, created_at, signature, report, change)
          VALUES (${name}, ${version}, ${record.sha256}, ${wasm}, ${manifest}, ${installedAt}, ${signature},
            ${report}, nextval('keycard_change_seq'))
          ON CONFLICT (name, version) DO UPDATE SET sha256 = excluded.sha256, wasm = excluded.wasm,
            manifest = excluded.manifest, created_at = excluded.created_at, signature = excluded.signature,
            report = excluded.report, change = excluded.change
          -- Without overwrite, only the same content is written again (a re-send, an identical install): a version
          -- another replica stored with other content since the registry looked is left alone and refused below.
          WHERE ${overwrite} OR (plugins.sha256 = excluded.sha256 AND plugins.manifest = excluded.manifest)
          RETURNING change
        )
        SELECT pg_notify(${CHANGES_CHANNEL}, json_build_object('kind', 'plugin', 'name', ${name}::text,
          'change', change, 'at', floor(extract(epoch FROM clock_timestamp()) * 1000))::text)
        FROM up`);
    if (stored.length === 0) {
      throw new RegistryError(
        `Cannot install plugin ${id(name, version)}: another replica installed it with other content; set overwrite ` +
          "to replace it",
        { code: "version_exists", plugin: name, version },
      );
    }
  }

  /**
   * Reads one version, or the latest by semantic-version precedence, and
   * checks that its bytes still hash to its `sha256`.
   *
   * @param name The plugin's name.
   * @param version The version; when omitted, the highest stored version (prereleases rank below releases).
   * @returns A copy of the record, or undefined when there is none.
   * @throws {TypeError} When the name or version is not a string.
   * @throws {RangeError} When the name or version breaks the naming rule.
   * @throws {StoreUnavailableError} When the database is unreachable or does not answer within `timeoutMs`.
   * @throws {Error} When the row's bytes do not hash to its `sha256`, or the database refuses the statement.
   *
   * @example Read the latest version
   * ```ts ignore
   * const plugin = await store.get("hello");
   * console.log(plugin?.manifest.version, plugin?.sha256);
   * ```
   */
  async get(name: string, version?: string): Promise<StoredPlugin | undefined> {
    checkPluginName(name);
    if (version !== undefined) return await this.#read(name, checkPluginVersion(version, name));
    // The latest is chosen by semver here (SQL cannot order by it); a version removed in between is looked past.
    for (let attempt = 1; attempt <= 3; attempt++) {
      const rows = await this.#run(
        `read plugin ${id(name)}`,
        true,
        () => this.#sql`SELECT version FROM plugins WHERE name = ${name}`,
      );
      const latest = sortVersions(rows.map((row) => row.version as string)).at(-1);
      if (latest === undefined) return undefined;
      const record = await this.#read(name, latest);
      if (record !== undefined) return record;
    }
    return undefined;
  }

  /**
   * Lists every stored plugin.
   *
   * @returns One summary per name, sorted by name, each with its versions sorted lowest first and its latest.
   * @throws {StoreUnavailableError} When the database is unreachable or does not answer within `timeoutMs`.
   * @throws {Error} When the database refuses the statement.
   *
   * @example List the installed plugins
   * ```ts ignore
   * for (const { name, latest } of await store.list()) console.log(name, latest);
   * ```
   */
  async list(): Promise<PluginSummary[]> {
    const rows = await this.#run("list plugins", true, () => this.#sql`SELECT name, version FROM plugins`);
    const byName = new Map<string, string[]>();
    for (const row of rows) {
      if (!wellNamed(row.name, row.version)) continue;
      const versions = byName.get(row.name) ?? [];
      versions.push(row.version);
      byName.set(row.name, versions);
    }
    return [...byName.keys()].sort(compareNames).map((name) => {
      const versions = sortVersions(byName.get(name)!);
      return { name, versions, latest: versions.at(-1)! };
    });
  }

  /**
   * Removes one version, or every version of a plugin, and tells every
   * replica listening on `keycard_changes` when something was removed. Not
   * sent again after a dead connection: on {@linkcode StoreUnavailableError}
   * the removal may or may not have happened, and a later read tells.
   *
   * @param name The plugin's name.
   * @param version The version; when omitted, every version.
   * @returns The versions removed, lowest first; empty when there was nothing to remove.
   * @throws {TypeError} When the name or version is not a string.
   * @throws {RangeError} When the name or version breaks the naming rule.
   * @throws {StoreUnavailableError} When the database is unreachable or does not answer within `timeoutMs`.
   * @throws {Error} When the database refuses the statement.
   *
   * @example Remove one version
   * ```ts ignore
   * await store.remove("hello", "1.0.0"); // ["1.0.0"]
   * ```
   */
  async remove(name: string, version?: string): Promise<string[]> {
    checkPluginName(name);
    if (version !== undefined) checkPluginVersion(version, name);
    const sql = this.#sql;
    const rows = await this.#run(`remove plugin ${id(name, version)}`, false, () =>
      sql`
        WITH removed AS (
          DELETE FROM plugins WHERE name = ${name} ${version === undefined ? sql`` : sql`AND version = ${version}`}
          RETURNING version
        )
        SELECT coalesce(array_agg(version), '{}') AS versions,
          CASE WHEN count(*) > 0 THEN pg_notify(${CHANGES_CHANNEL}, json_build_object('kind', 'plugin',
            'name', ${name}::text, 'change', nextval('keycard_change_seq'),
            'at', floor(extract(epoch FROM clock_timestamp()) * 1000))::text) END AS notified
        FROM removed`);
    return sortVersions((rows[0]?.versions ?? []) as string[]);
  }

  /**
   * Each plugin's latest version, its hash and change number, without the
   * bytes: what a replica compares with what it runs, to catch up after
   * missed notifications.
   *
   * @returns Plugin name to its latest version by semantic-version precedence.
   * @throws {StoreUnavailableError} When the database is unreachable or does not answer within `timeoutMs`.
   * @throws {Error} When the database refuses the statement.
   *
   * @example Find plugins whose latest version differs from the running one
   * ```ts ignore
   * for (const [name, head] of await store.heads()) {
   *   if (running.get(name)?.sha256 !== head.sha256) await reload(name);
   * }
   * ```
   */
  async heads(): Promise<Map<string, PluginHead>> {
    const rows = await this.#run(
      "read plugin heads",
      true,
      () => this.#sql`SELECT name, version, sha256, change FROM plugins`,
    );
    const byName = new Map<string, Map<string, PluginHead>>();
    for (const row of rows) {
      if (!wellNamed(row.name, row.version)) continue;
      const versions = byName.get(row.name) ?? new Map<string, PluginHead>();
      versions.set(row.version, { version: row.version, sha256: row.sha256, change: Number(row.change) });
      byName.set(row.name, versions);
    }
    const heads = new Map<string, PluginHead>();
    for (const name of [...byName.keys()].sort(compareNames)) {
      const versions = byName.get(name)!;
      heads.set(name, versions.get(sortVersions(versions.keys()).at(-1)!)!);
    }
    return heads;
  }

  async #read(name: string, version: string): Promise<StoredPlugin | undefined> {
    const rows = await this.#run(
      `read plugin ${id(name, version)}`,
      true,
      () =>
        this.#sql`SELECT sha256, wasm, manifest, created_at, signature, report FROM plugins
          WHERE name = ${name} AND version = ${version}`,
    );
    const row = rows[0];
    if (row === undefined) return undefined;
    // The client hands back a Node Buffer, often a view of a shared pool: give callers plain bytes of their own.
    const wasm = new Uint8Array(row.wasm as Uint8Array);
    const actual = await sha256Hex(wasm);
    if (actual !== row.sha256) {
      throw new Error(
        `Cannot read plugin ${id(name, version)}: its wasm hashes to "${actual}" but its row says "${row.sha256}"`,
      );
    }
    return {
      manifest: row.manifest,
      wasm,
      sha256: row.sha256,
      installedAt: (row.created_at as Date).toISOString(),
      ...(row.signature === null ? {} : { signature: row.signature }),
      ...(row.report === null ? {} : { report: row.report }),
    };
  }

  /** Runs one statement within `timeoutMs`; `what` is the operation as messages name it ("install plugin "x@1.0.0""). */
  #run<T extends readonly Row[]>(what: string, resend: boolean, query: () => PendingQuery<T>): Promise<T> {
    return sendForStore(what, query, this.#timeoutMs, resend);
  }
}

/**
 * Whether a row's name and version keep the naming rule. A row written around keycard (by hand, by another tool)
 * that breaks it is left out of lists, so that one bad row cannot make every listing fail.
 */
function wellNamed(name: unknown, version: unknown): boolean {
  try {
    checkPluginName(name as string);
    checkPluginVersion(version as string, name as string);
    return true;
  } catch {
    return false;
  }
}

/** A plugin (and version) as messages quote it; names and versions are checked first, so they hold no quote. */
function id(name: string, version?: string): string {
  return version === undefined ? `"${name}"` : `"${name}@${version}"`;
}
