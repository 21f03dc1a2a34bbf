import type { PendingQuery, Row, Sql } from "postgres";
import { compareNames } from "../../registry/mod.ts";
import { checkTimeout, sendForStore } from "./_errors.ts";
import { CHANGES_CHANNEL } from "./change_feed.ts";

/** Options of {@linkcode PostgresPolicyStore}. */
export interface PostgresPolicyStoreOptions {
  /**
   * How long one operation may wait for the database, connecting included, before it fails with
   * {@linkcode StoreUnavailableError}. @default {5000}
   */
  timeoutMs?: number;
}

/** One operator policy file as the store holds it. */
export interface StoredPolicy {
  /** The file's name, `<name>.cedar`. */
  name: string;
  /** Its Cedar text. */
  text: string;
  /** The change number of its last write (`keycard_change_seq`): higher is newer. */
  version: number;
}

/** A change of several policy files, applied by {@linkcode PostgresPolicyStore.apply} in one transaction. */
export interface PolicyChange {
  /** Files written (created or replaced). */
  put: { name: string; text: string }[];
  /** Names of files removed; a name that is not there is skipped. */
  remove: string[];
}

/** The rule a policy file name follows, as messages state it. */
export const POLICY_NAME_RULE =
  'a name is 1-128 letters, digits, "_", "-" or "." that does not start with ".", followed by ".cedar"';
// The HTTP API's rule for the part before ".cedar" (src/http/_policies_api.ts): no separator, nothing hidden.
const NAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}\.cedar$/;
const SEEDED_KEY = "policies.seeded";

/**
 * The operator's policy files (`base.cedar` ...) in PostgreSQL's `policies`
 * table, shared by every replica that connects to the same database.
 *
 * On the first start against an empty database, one replica copies its
 * policy directory in ({@linkcode PostgresPolicyStore.seedOnce}); from then
 * on the files live in the database and are changed through the API. Every
 * write numbers the file from `keycard_change_seq` (its `version`) and sends
 * `pg_notify` on `keycard_changes` (`{"kind":"policy","name","change","at"}`,
 * name `"*"` when one transaction changed several files) in the same
 * statement, so the notification is sent exactly when the change commits.
 *
 * Reads and writes of whole files (`put`, `seedOnce`, an `apply` without
 * removals) are sent again when their connection turns out dead (after a
 * database restart); `remove` and an `apply` with removals are not (a second
 * answer would hide what the first removed). A database that cannot be
 * reached or does not answer within `timeoutMs` fails the call with
 * {@linkcode StoreUnavailableError}; a write that timed out may still commit.
 * The store does not own the pool: the caller ends `sql`.
 *
 * @example Seed at start, then change a file
 * ```ts ignore
 * import { connect } from "./connect.ts";
 * import { PostgresPolicyStore } from "./postgres_policy_store.ts";
 * const sql = await connect("postgres://keycard@127.0.0.1:5432/keycard");
 * const policies = new PostgresPolicyStore(sql);
 * await policies.seedOnce([{ name: "base.cedar", text: await Deno.readTextFile("policies/base.cedar") }]);
 * await policies.put("extra.cedar", "permit (principal, action, resource);"); // its new version
 * await sql.end();
 * ```
 */
export class PostgresPolicyStore {
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
   * const policies = new PostgresPolicyStore(sql, { timeoutMs: 1000 });
   * ```
   */
  constructor(sql: Sql, options: PostgresPolicyStoreOptions = {}) {
    this.#timeoutMs = checkTimeout(options.timeoutMs ?? 5000);
    this.#sql = sql;
  }

  /**
   * Reads every policy file.
   *
   * @returns The files, sorted by name.
   * @throws {StoreUnavailableError} When the database is unreachable or does not answer within `timeoutMs`.
   * @throws {Error} When the database refuses the statement (the message names its SQLSTATE).
   *
   * @example Load the operator policies
   * ```ts ignore
   * for (const { name, text } of await policies.list()) engine.load(name, text);
   * ```
   */
  async list(): Promise<StoredPolicy[]> {
    const rows = await this.#run("list policies", true, () => this.#sql`SELECT name, text, version FROM policies`);
    return rows.map((row) => ({ name: row.name as string, text: row.text as string, version: Number(row.version) }))
      .sort((a, b) => compareNames(a.name, b.name));
  }

  /**
   * Each policy file's version, without the text: what a replica compares
   * with what it runs, to catch up after missed notifications.
   *
   * @returns File name to version, in name order.
   * @throws {StoreUnavailableError} When the database is unreachable or does not answer within `timeoutMs`.
   * @throws {Error} When the database refuses the statement.
   *
   * @example Has anything changed?
   * ```ts ignore
   * const changed = [...(await policies.versions())].some(([name, v]) => running.get(name) !== v);
   * ```
   */
  async versions(): Promise<Map<string, number>> {
    const rows = await this.#run("read policy versions", true, () => this.#sql`SELECT name, version FROM policies`);
    const names = rows.map((row) => row.name as string).sort(compareNames);
    const byName = new Map(rows.map((row) => [row.name as string, Number(row.version)]));
    return new Map(names.map((name) => [name, byName.get(name)!]));
  }

  /**
   * Creates or replaces a policy file and announces it.
   *
   * @param name The file's name, `<name>.cedar`.
   * @param text Its Cedar text (not checked here: the caller validates it).
   * @returns The file's new version.
   * @throws {TypeError} When the name or text is not a string.
   * @throws {RangeError} When the name breaks {@linkcode POLICY_NAME_RULE} or the text holds a NUL character.
   * @throws {StoreUnavailableError} When the database is unreachable or does not answer within `timeoutMs`.
   * @throws {Error} When the database refuses the statement.
   *
   * @example Write a file
   * ```ts ignore
   * const version = await policies.put("extra.cedar", "permit (principal, action, resource);");
   * ```
   */
  async put(name: string, text: string): Promise<number> {
    checkPolicyName(name);
    checkText(name, text);
    const rows = await this.#run(`write policy "${name}"`, true, () =>
      this.#sql`
        WITH up AS (
          INSERT INTO policies (name, text, version, updated_at)
          VALUES (${name}, ${text}, nextval('keycard_change_seq'), now())
          ON CONFLICT (name) DO UPDATE SET text = excluded.text, version = excluded.version,
            updated_at = excluded.updated_at
          RETURNING version
        )
        SELECT version, pg_notify(${CHANGES_CHANNEL}, json_build_object('kind', 'policy', 'name', ${name}::text,
          'change', version, 'at', floor(extract(epoch FROM clock_timestamp()) * 1000))::text)
        FROM up`);
    return Number(rows[0]!.version);
  }

  /**
   * Removes a policy file and announces it when it was there. Not sent
   * again after a dead connection: on {@linkcode StoreUnavailableError} the
   * removal may or may not have happened, and a later read tells.
   *
   * @param name The file's name, `<name>.cedar`.
   * @returns True when the file was there.
   * @throws {TypeError} When the name is not a string.
   * @throws {RangeError} When the name breaks {@linkcode POLICY_NAME_RULE}.
   * @throws {StoreUnavailableError} When the database is unreachable or does not answer within `timeoutMs`.
   * @throws {Error} When the database refuses the statement.
   *
   * @example Remove a file
   * ```ts ignore
   * await policies.remove("extra.cedar"); // true
   * await policies.remove("extra.cedar"); // false
   * ```
   */
  async remove(name: string): Promise<boolean> {
    checkPolicyName(name);
    const rows = await this.#run(`remove policy "${name}"`, false, () =>
      this.#sql`
        WITH removed AS (DELETE FROM policies WHERE name = ${name} RETURNING name)
        SELECT count(*)::int AS removed,
          CASE WHEN count(*) > 0 THEN pg_notify(${CHANGES_CHANNEL}, json_build_object('kind', 'policy',
            'name', ${name}::text, 'change', nextval('keycard_change_seq'),
            'at', floor(extract(epoch FROM clock_timestamp()) * 1000))::text) END AS notified
        FROM removed`);
    return rows[0]!.removed > 0;
  }

  /**
   * Writes and removes several files in one transaction, announced once:
   * replicas never see a half-applied change (a new file that needs one
   * being removed, say).
   *
   * @param change The files to write and the names to remove; a name may appear once across both.
   * @returns The highest new version among the written files; for a change that only removed files, the change
   * number of its announcement; 0 when nothing changed (nothing to write, nothing of `remove` there).
   * @throws {TypeError} When `change` is not `{ put: {name, text}[], remove: string[] }`.
   * @throws {RangeError} When a name breaks {@linkcode POLICY_NAME_RULE} or appears twice, or a text holds a NUL.
   * @throws {StoreUnavailableError} When the database is unreachable or does not answer within `timeoutMs`.
   * @throws {Error} When the database refuses the statement.
   *
   * @example Replace one file by another
   * ```ts ignore
   * await policies.apply({ put: [{ name: "v2.cedar", text }], remove: ["v1.cedar"] });
   * ```
   */
  async apply(change: PolicyChange): Promise<number> {
    const { put, remove } = checkChange(change);
    if (put.length === 0 && remove.length === 0) return 0;
    const names = put.map((file) => file.name);
    const texts = put.map((file) => file.text);
    const all = [...names, ...remove];
    const announced = all.length === 1 ? all[0]! : "*";
    const sql = this.#sql;
    const rows = await this.#run(`change policies ${describeNames(all)}`, remove.length === 0, () =>
      sql`
        WITH up AS (
          INSERT INTO policies (name, text, version, updated_at)
          SELECT n, t, nextval('keycard_change_seq'), now() FROM unnest(${sql.array(names)}::text[],
            ${sql.array(texts)}::text[]) AS f(n, t)
          ON CONFLICT (name) DO UPDATE SET text = excluded.text, version = excluded.version,
            updated_at = excluded.updated_at
          RETURNING version
        ), removed AS (
          DELETE FROM policies WHERE name = ANY(${sql.array(remove)}::text[]) RETURNING name
        ), result AS MATERIALIZED (
          SELECT CASE WHEN n = 0 THEN 0 ELSE coalesce(top, nextval('keycard_change_seq')) END AS version
          FROM (SELECT (SELECT max(version) FROM up) AS top,
            (SELECT count(*) FROM up) + (SELECT count(*) FROM removed) AS n) AS counts
        )
        SELECT version, CASE WHEN version > 0 THEN pg_notify(${CHANGES_CHANNEL}, json_build_object('kind', 'policy',
          'name', ${announced}::text, 'change', version,
          'at', floor(extract(epoch FROM clock_timestamp()) * 1000))::text) END AS notified
        FROM result`);
    return Number(rows[0]!.version);
  }

  /**
   * Copies a replica's policy directory in, once per database: the first
   * call against a database that was never seeded writes the files (one
   * transaction, one announcement) and records that it did
   * (`keycard_meta` key `policies.seeded`); every later call, from any
   * replica, changes nothing, even when the operator has since removed
   * files. Of replicas that start together, exactly one seeds.
   *
   * @param files The directory's `.cedar` files; may be empty (the database then counts as seeded, with no files).
   * @returns True when this call seeded the database.
   * @throws {TypeError} When `files` is not a list of `{ name, text }`.
   * @throws {RangeError} When a name breaks {@linkcode POLICY_NAME_RULE} or appears twice, or a text holds a NUL.
   * @throws {StoreUnavailableError} When the database is unreachable or does not answer within `timeoutMs`.
   * @throws {Error} When the database refuses the statement.
   *
   * @example At start
   * ```ts ignore
   * if (await policies.seedOnce(filesOfPolicyDir)) console.log("policies copied into the database");
   * const running = await policies.list();
   * ```
   */
  async seedOnce(files: { name: string; text: string }[]): Promise<boolean> {
    const { put } = checkChange({ put: files, remove: [] }, "files");
    const names = put.map((file) => file.name);
    const texts = put.map((file) => file.text);
    const announced = names.length === 1 ? names[0]! : "*";
    const sql = this.#sql;
    // The meta row decides who seeds: a concurrent insert of the same key waits for ours and then does nothing.
    const rows = await this.#run("seed policies", true, () =>
      sql`
        WITH seeded AS (
          INSERT INTO keycard_meta (key, value) VALUES (${SEEDED_KEY}, ${String(put.length)})
          ON CONFLICT (key) DO NOTHING RETURNING key
        ), files AS (
          INSERT INTO policies (name, text, version, updated_at)
          SELECT n, t, nextval('keycard_change_seq'), now() FROM unnest(${sql.array(names)}::text[],
            ${sql.array(texts)}::text[]) AS f(n, t)
          WHERE EXISTS (SELECT 1 FROM seeded)
          ON CONFLICT (name) DO NOTHING
          RETURNING version
        )
        SELECT s.n AS seeded, CASE WHEN f.top IS NOT NULL THEN pg_notify(${CHANGES_CHANNEL}, json_build_object(
          'kind', 'policy', 'name', ${announced}::text, 'change', f.top,
          'at', floor(extract(epoch FROM clock_timestamp()) * 1000))::text) END AS notified
        FROM (SELECT count(*)::int AS n FROM seeded) AS s, (SELECT max(version) AS top FROM files) AS f`);
    return rows[0]!.seeded > 0;
  }

  #run<T extends readonly Row[]>(what: string, resend: boolean, query: () => PendingQuery<T>): Promise<T> {
    return sendForStore(what, query, this.#timeoutMs, resend);
  }
}

/**
 * Checks a policy file name: `<name>.cedar` where `<name>` is 1-128 letters,
 * digits, `_`, `-` or `.` and does not start with `.`. No path separator can
 * pass, so a name is never a path.
 *
 * @param name The name.
 * @returns The name, unchanged.
 * @throws {TypeError} When it is not a string.
 * @throws {RangeError} When it breaks {@linkcode POLICY_NAME_RULE}.
 *
 * @example
 * ```ts
 * import { checkPolicyName } from "./postgres_policy_store.ts";
 * checkPolicyName("base.cedar"); // "base.cedar"
 * ```
 */
export function checkPolicyName(name: unknown): string {
  if (typeof name !== "string") throw new TypeError(`Policy name ${shown(name)} is not a string`);
  if (!NAME.test(name)) throw new RangeError(`Policy name ${shown(name)} is invalid: ${POLICY_NAME_RULE}`);
  return name;
}

function checkText(name: string, text: unknown): void {
  if (typeof text !== "string") throw new TypeError(`The text of policy "${name}" is not a string`);
  // PostgreSQL text cannot hold NUL; refuse it here rather than fail in the database.
  if (text.includes("\0")) throw new RangeError(`The text of policy "${name}" holds a NUL character`);
}

function checkChange(change: unknown, field = "change"): PolicyChange {
  const { put, remove } = (typeof change === "object" && change !== null ? change : {}) as Record<string, unknown>;
  if (!Array.isArray(put) || !Array.isArray(remove)) {
    throw new TypeError(`A policy ${field} must be { put: { name, text }[], remove: string[] }`);
  }
  const seen = new Set<string>();
  const once = (name: string) => {
    if (seen.has(name)) throw new RangeError(`Policy "${name}" appears twice in one ${field}`);
    seen.add(name);
  };
  const files = put.map((file: unknown) => {
    if (typeof file !== "object" || file === null) throw new TypeError(`A policy file must be { name, text }`);
    const { name, text } = file as Record<string, unknown>;
    checkPolicyName(name);
    checkText(name as string, text);
    once(name as string);
    return { name: name as string, text: text as string };
  });
  const names = remove.map((name: unknown) => {
    checkPolicyName(name);
    once(name as string);
    return name as string;
  });
  return { put: files, remove: names };
}

/** A name as messages quote it: JSON-escaped, cut at 140 characters. */
function shown(value: unknown): string {
  const text = typeof value === "string" ? value : String(value);
  return JSON.stringify(text.length > 140 ? `${text.slice(0, 140)}...` : text);
}

function describeNames(names: string[]): string {
  return names.length <= 3 ? names.map((name) => `"${name}"`).join(", ") : `"${names[0]}" and ${names.length - 1} more`;
}
