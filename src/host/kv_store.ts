import { HostCallError } from "../runtime/mod.ts";
import { type KvAction, KvRules, MAX_KV_VALUE_BYTES, quoteKvPart } from "./kv_rules.ts";
import type { PluginKv } from "./plugin_kv.ts";

/** Options of {@linkcode KvStore.open}. */
export interface KvStoreOptions {
  /** Largest value accepted, in bytes; at most Deno KV's own limit of 64 KiB. @default {65536} */
  maxValueBytes?: number;
}

/**
 * A durable key-value store for plugins, kept in Deno KV (SQLite) so that it
 * survives restarts. Every entry lives under its plugin's name, then a
 * namespace, then a key (`["plugins", plugin, namespace, key]`), so plugins
 * never see one another's values. Values are bytes.
 *
 * Needs Deno's `kv` unstable feature (`--unstable-kv` or `"unstable": ["kv"]`).
 *
 * @example Store and read a value
 * ```ts
 * import { KvStore } from "./kv_store.ts";
 * using store = await KvStore.open(":memory:");
 * await store.set("counter", "state", "hits", new Uint8Array([42]));
 * await store.get("counter", "state", "hits"); // Uint8Array [42]
 * await store.get("other", "state", "hits"); // undefined
 * ```
 */
export class KvStore implements PluginKv {
  readonly #kv: Deno.Kv;
  readonly #rules: KvRules;

  /**
   * Opens (or creates) the store at a path.
   *
   * @param path The database file, or `":memory:"` for a store that lives as long as the process.
   * @param options The value size limit.
   * @returns The open store.
   * @throws {RangeError} When `maxValueBytes` is not an integer from 1 to 65536.
   * @throws {Error} When Deno KV cannot open the path.
   *
   * @example Open a store on disk
   * ```ts ignore
   * import { KvStore } from "./kv_store.ts";
   * const store = await KvStore.open(".keycard/kv.sqlite3", { maxValueBytes: 4096 });
   * store.close();
   * ```
   */
  static async open(path: string, options: KvStoreOptions = {}): Promise<KvStore> {
    const rules = new KvRules(options.maxValueBytes ?? MAX_KV_VALUE_BYTES);
    return new KvStore(await Deno.openKv(path), rules);
  }

  private constructor(kv: Deno.Kv, rules: KvRules) {
    this.#kv = kv;
    this.#rules = rules;
  }

  /**
   * Reads a value.
   *
   * @param plugin The plugin's name.
   * @param namespace The plugin's namespace.
   * @param key The key.
   * @returns The value, or undefined when there is none.
   * @throws {HostCallError} `invalid` for a malformed plugin name, namespace or
   * key; `io` when the store is closed or fails.
   *
   * @example Read a missing key
   * ```ts
   * import { KvStore } from "./kv_store.ts";
   * using store = await KvStore.open(":memory:");
   * await store.get("counter", "state", "nothing"); // undefined
   * ```
   */
  async get(plugin: string, namespace: string, key: string): Promise<Uint8Array | undefined> {
    const kvKey = this.#key(plugin, namespace, key);
    const entry = await this.#run("read", key, () => this.#kv.get(kvKey));
    if (entry.value === null) return undefined;
    if (!(entry.value instanceof Uint8Array)) {
      throw new HostCallError("io", `Cannot read key ${quoteKvPart(key)}: the stored value is not bytes`);
    }
    return entry.value;
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
   * `io` when the store is closed or fails.
   *
   * @example Write a value
   * ```ts
   * import { KvStore } from "./kv_store.ts";
   * using store = await KvStore.open(":memory:");
   * await store.set("counter", "state", "hits", new TextEncoder().encode("1"));
   * ```
   */
  async set(plugin: string, namespace: string, key: string, value: Uint8Array): Promise<void> {
    const kvKey = this.#key(plugin, namespace, key);
    this.#rules.checkValue(key, value);
    await this.#run("write", key, () => this.#kv.set(kvKey, value));
  }

  /**
   * Deletes a value.
   *
   * @param plugin The plugin's name.
   * @param namespace The plugin's namespace.
   * @param key The key.
   * @returns True when the key had a value.
   * @throws {HostCallError} `invalid` for a malformed plugin name, namespace or
   * key; `io` when the store is closed or fails.
   *
   * @example Delete a key twice
   * ```ts
   * import { KvStore } from "./kv_store.ts";
   * using store = await KvStore.open(":memory:");
   * await store.set("counter", "state", "hits", new Uint8Array([1]));
   * await store.delete("counter", "state", "hits"); // true
   * await store.delete("counter", "state", "hits"); // false
   * ```
   */
  async delete(plugin: string, namespace: string, key: string): Promise<boolean> {
    const kvKey = this.#key(plugin, namespace, key);
    return await this.#run("delete", key, async () => {
      // Check and delete atomically so that "existed" is true for exactly one of two racing deletes.
      while (true) {
        const entry = await this.#kv.get(kvKey);
        if (entry.versionstamp === null) return false;
        const result = await this.#kv.atomic().check(entry).delete(kvKey).commit();
        if (result.ok) return true;
      }
    });
  }

  /**
   * Closes the store; closing twice does nothing.
   *
   * @example Close a store
   * ```ts
   * import { KvStore } from "./kv_store.ts";
   * const store = await KvStore.open(":memory:");
   * store.close();
   * ```
   */
  close(): void {
    if (this.#rules.close()) this.#kv.close();
  }

  /**
   * Closes the store at the end of a `using` block.
   *
   * @example Close with `using`
   * ```ts
   * import { KvStore } from "./kv_store.ts";
   * {
   *   using _store = await KvStore.open(":memory:");
   * }
   * ```
   */
  [Symbol.dispose](): void {
    this.close();
  }

  #key(plugin: string, namespace: string, key: string): Deno.KvKey {
    this.#rules.checkParts(plugin, namespace, key);
    return ["plugins", plugin, namespace, key];
  }

  #run<T>(action: KvAction, key: string, body: () => Promise<T>): Promise<T> {
    // Deno KV's messages may name the database path, so only the error's name is passed on.
    return this.#rules.run(action, key, body, (error) => error instanceof Error ? error.name : "unknown error");
  }
}
