import type { PendingQuery, Row, Sql } from "postgres";
import { HostCallError } from "../../runtime/mod.ts";
import { type KvAction, KvRules, MAX_KV_VALUE_BYTES, quoteKvPart } from "../../host/kv_rules.ts";
import type { PluginKv } from "../../host/plugin_kv.ts";
import { checkTimeout, describe, sendBounded } from "./_errors.ts";

/** Options of {@linkcode PostgresKvStore}. */
export interface PostgresKvStoreOptions {
  /** Largest value accepted, in bytes; at most 65536, the Deno KV store's limit, so plugins see one limit. @default {65536} */
  maxValueBytes?: number;
  /**
   * How long one operation may wait for the database, connecting included, before it fails with `io`; a host call
   * must not hang on a database that is down or stalled. @default {5000}
   */
  timeoutMs?: number;
}

/**
 * Plugin key-value entries in PostgreSQL's `kv` table (plugin, namespace,
 * key, value), shared by every replica that connects to the same database:
 * a value one replica sets is the value the others read. Names, limits,
 * results and error codes are the same as {@linkcode KvStore}'s (both apply
 * `KvRules`), so a plugin cannot tell the stores apart.
 *
 * Queries are parameterized; each operation is one statement, so racing
 * writers of a key end with one of their values and racing deletes report
 * "existed" for exactly one of them. The store does not own the connection
 * pool: closing it refuses later calls, and the caller ends `sql`.
 *
 * @example Store and read a value
 * ```ts ignore
 * import { connect } from "./connect.ts";
 * import { PostgresKvStore } from "./postgres_kv_store.ts";
 * const sql = await connect("postgres://keycard@127.0.0.1:5432/keycard");
 * using store = new PostgresKvStore(sql);
 * await store.set("counter", "state", "hits", new Uint8Array([42]));
 * await store.get("counter", "state", "hits"); // Uint8Array [42]
 * await sql.end();
 * ```
 */
export class PostgresKvStore implements PluginKv {
  readonly #sql: Sql;
  readonly #rules: KvRules;
  readonly #timeoutMs: number;

  /**
   * Makes a store on a connection pool whose database has the `kv` table
   * (keycard's migrations create it).
   *
   * @param sql The pool, from the `postgres` client.
   * @param options The value size limit and the time bound.
   * @throws {RangeError} When `maxValueBytes` is not an integer from 1 to 65536 or `timeoutMs` not a positive integer.
   *
   * @example Bound every operation to a second
   * ```ts ignore
   * import { connect } from "./connect.ts";
   * import { PostgresKvStore } from "./postgres_kv_store.ts";
   * const store = new PostgresKvStore(await connect(url), { timeoutMs: 1000 });
   * ```
   */
  constructor(sql: Sql, options: PostgresKvStoreOptions = {}) {
    const { maxValueBytes = MAX_KV_VALUE_BYTES, timeoutMs = 5000 } = options;
    this.#timeoutMs = checkTimeout(timeoutMs);
    this.#rules = new KvRules(maxValueBytes);
    this.#sql = sql;
  }

  /**
   * Reads a value.
   *
   * @param plugin The plugin's name.
   * @param namespace The plugin's namespace.
   * @param key The key.
   * @returns The value, or undefined when there is none.
   * @throws {HostCallError} `invalid` for a malformed plugin name, namespace or
   * key; `io` when the store is closed, the database is unreachable or does
   * not answer within `timeoutMs`.
   *
   * @example Read a missing key
   * ```ts ignore
   * await store.get("counter", "state", "nothing"); // undefined
   * ```
   */
  async get(plugin: string, namespace: string, key: string): Promise<Uint8Array | undefined> {
    this.#rules.checkParts(plugin, namespace, key);
    const rows = await this.#run(
      "read",
      key,
      () => this.#sql`SELECT value FROM kv WHERE plugin = ${plugin} AND namespace = ${namespace} AND key = ${key}`,
      true,
    );
    const value = rows[0]?.value;
    if (value === undefined) return undefined;
    if (!(value instanceof Uint8Array)) {
      throw new HostCallError("io", `Cannot read key ${quoteKvPart(key)}: the stored value is not bytes`);
    }
    // The client hands back a Node Buffer, often a view of a shared pool: give plugins plain bytes of their own.
    return new Uint8Array(value);
  }

  /**
   * Writes a value, replacing any previous one.
   *
   * @param plugin The plugin's name.
   * @param namespace The plugin's namespace.
   * @param key The key.
   * @param value The bytes to store.
   * @throws {HostCallError} `limit` when the value is larger than
   * `maxValueBytes`; `invalid` for a malformed plugin name, namespace or key;
   * `io` when the store is closed, the database is unreachable or does not
   * answer within `timeoutMs`.
   *
   * @example Write a value
   * ```ts ignore
   * await store.set("counter", "state", "hits", new TextEncoder().encode("1"));
   * ```
   */
  async set(plugin: string, namespace: string, key: string, value: Uint8Array): Promise<void> {
    this.#rules.checkParts(plugin, namespace, key);
    this.#rules.checkValue(key, value);
    await this.#run(
      "write",
      key,
      () =>
        this.#sql`INSERT INTO kv (plugin, namespace, key, value) VALUES (${plugin}, ${namespace}, ${key}, ${value})
          ON CONFLICT (plugin, namespace, key) DO UPDATE SET value = excluded.value`,
      true,
    );
  }

  /**
   * Deletes a value.
   *
   * @param plugin The plugin's name.
   * @param namespace The plugin's namespace.
   * @param key The key.
   * @returns True when the key had a value.
   * @throws {HostCallError} `invalid` for a malformed plugin name, namespace or
   * key; `io` when the store is closed, the database is unreachable or does
   * not answer within `timeoutMs`.
   *
   * @example Delete a key twice
   * ```ts ignore
   * await store.delete("counter", "state", "hits"); // true
   * await store.delete("counter", "state", "hits"); // false
   * ```
   */
  async delete(plugin: string, namespace: string, key: string): Promise<boolean> {
    this.#rules.checkParts(plugin, namespace, key);
    // One statement: of two racing deletes, the second waits on the row lock and then finds nothing.
    const rows = await this.#run(
      "delete",
      key,
      () =>
        this.#sql`DELETE FROM kv WHERE plugin = ${plugin} AND namespace = ${namespace} AND key = ${key} RETURNING 1`,
      false,
    );
    return rows.length > 0;
  }

  /**
   * Closes the store: later calls fail with `io`; closing twice does nothing.
   * The connection pool stays open for its owner to end.
   *
   * @example Close a store
   * ```ts ignore
   * store.close();
   * await store.get("p", "n", "k"); // throws HostCallError io "the store is closed"
   * ```
   */
  close(): void {
    this.#rules.close();
  }

  /**
   * Closes the store at the end of a `using` block.
   *
   * @example Close with `using`
   * ```ts ignore
   * {
   *   using _store = new PostgresKvStore(sql);
   * }
   * ```
   */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * Runs one statement within `timeoutMs`. `again`: whether it may be sent again when the connection it went out on
   * turns out dead. After a restart every pooled connection is dead until the client hears so, and the next
   * statements sent on them fail at once: a get or an upsert can simply be sent again, up to once per pooled
   * connection; a delete cannot without losing whether it found the value.
   */
  #run(action: KvAction, key: string, query: () => PendingQuery<Row[]>, again: boolean): Promise<Row[]> {
    return this.#rules.run(
      action,
      key,
      () =>
        sendBounded(
          query,
          this.#timeoutMs,
          again,
          (reason, _code, cause) =>
            new HostCallError("io", `Cannot ${action} key ${quoteKvPart(key)}: ${reason}`, { cause }),
        ),
      describe,
    );
  }
}
