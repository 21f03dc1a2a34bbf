import { HostCallError } from "../runtime/mod.ts";

/** Options of {@linkcode KvStore.open}. */
export interface KvStoreOptions {
  /** Largest value accepted, in bytes; at most Deno KV's own limit of 64 KiB. @default {65536} */
  maxValueBytes?: number;
}

/** Deno KV's own limit on a value's size. */
const DENO_KV_MAX_VALUE_BYTES = 65536;
/** Longest plugin name, namespace or key, in UTF-8 bytes (Deno KV keys total at most 2048). */
const MAX_PART_BYTES = 512;
/** Longest part of a name quoted in a message. */
const MAX_QUOTED = 80;

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
export class KvStore {
  readonly #kv: Deno.Kv;
  readonly #maxValueBytes: number;
  #closed = false;

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
    const { maxValueBytes = DENO_KV_MAX_VALUE_BYTES } = options;
    if (!Number.isSafeInteger(maxValueBytes) || maxValueBytes < 1 || maxValueBytes > DENO_KV_MAX_VALUE_BYTES) {
      throw new RangeError(
        `Value limit ${maxValueBytes} is invalid: maxValueBytes must be an integer from 1 to ${DENO_KV_MAX_VALUE_BYTES}`,
      );
    }
    return new KvStore(await Deno.openKv(path), maxValueBytes);
  }

  private constructor(kv: Deno.Kv, maxValueBytes: number) {
    this.#kv = kv;
    this.#maxValueBytes = maxValueBytes;
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
      throw new HostCallError("io", `Cannot read key ${_quote(key)}: the stored value is not bytes`);
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
    if (value.byteLength > this.#maxValueBytes) {
      throw new HostCallError(
        "limit",
        `Cannot set key ${
          _quote(key)
        } to ${value.byteLength} bytes: values are limited to ${this.#maxValueBytes} bytes`,
      );
    }
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
    if (this.#closed) return;
    this.#closed = true;
    this.#kv.close();
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
    _checkPart("Plugin name", plugin);
    _checkPart("Namespace", namespace);
    _checkPart("Key", key);
    return ["plugins", plugin, namespace, key];
  }

  async #run<T>(action: string, key: string, body: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new HostCallError("io", `Cannot ${action} key ${_quote(key)}: the store is closed`);
    try {
      return await body();
    } catch (error) {
      if (error instanceof HostCallError) throw error;
      // Deno KV's messages may name the database path, so only the error's name is passed on.
      const name = error instanceof Error ? error.name : "unknown error";
      throw new HostCallError("io", `Cannot ${action} key ${_quote(key)}: the store failed (${name})`, {
        cause: error,
      });
    }
  }
}

function _quote(value: string): string {
  return JSON.stringify(value.length > MAX_QUOTED ? `${value.slice(0, MAX_QUOTED)}…` : value);
}

function _checkPart(what: string, value: string): void {
  const bytes = value.length > MAX_PART_BYTES ? value.length : new TextEncoder().encode(value).byteLength;
  if (bytes === 0 || bytes > MAX_PART_BYTES) {
    throw new HostCallError(
      "invalid",
      `${what} ${_quote(value)} is ${bytes}${
        bytes > MAX_PART_BYTES ? " or more" : ""
      } bytes: it must be 1 to ${MAX_PART_BYTES} bytes`,
    );
  }
  // A lone surrogate would be encoded as U+FFFD and share its entry with another name.
  if (!value.isWellFormed()) {
    throw new HostCallError("invalid", `${what} ${_quote(value)} contains a lone surrogate: it must be valid Unicode`);
  }
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code <= 0x1f || code === 0x7f) {
      const hex = code.toString(16).toUpperCase().padStart(4, "0");
      throw new HostCallError(
        "invalid",
        `${what} ${
          _quote(value)
        } contains the control character U+${hex} at index ${i}: control characters are not allowed`,
      );
    }
  }
}
