import { checkName, checkRecord, checkVersion, compareNames, copyRecord, sortVersions } from "./_checks.ts";
import type { PluginStore, PluginSummary, StoredPlugin } from "./plugin_store.ts";

/**
 * A {@linkcode PluginStore} in memory, for tests and for embedding keycard
 * where plugins come from code rather than disk. It checks names, versions
 * and hashes like {@linkcode FileStore}, and copies records in and out so
 * that no caller can change what it holds. Lives as long as the object.
 *
 * @example Store and read a plugin
 * ```ts
 * import { MemoryStore } from "./memory_store.ts";
 * const store = new MemoryStore();
 * const wasm = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]);
 * const sha256 = "93a44bbb96c751218e4c00d479e4c14358122a389acca16205b1e4d0dc5f9476";
 * const manifest = { name: "hello", version: "1.0.0", exports: [], capabilities: [], grants: [], limits: {}, config: {} };
 * await store.put({ manifest, wasm, sha256, installedAt: new Date().toISOString() });
 * (await store.get("hello"))?.manifest.version; // "1.0.0"
 * ```
 */
export class MemoryStore implements PluginStore {
  readonly #plugins = new Map<string, Map<string, StoredPlugin>>();

  /**
   * Stores one version, replacing a stored record of the same name and version.
   *
   * @param record The record; `record.manifest.name` and `.version` are its key.
   * @returns Once stored.
   * @throws {TypeError} When the record is malformed (a field of the wrong type).
   * @throws {RangeError} When the name or version breaks the naming rule, or `sha256` is not the hash of `wasm`.
   *
   * @example Replace a version
   * ```ts
   * import { MemoryStore } from "./memory_store.ts";
   * const store = new MemoryStore();
   * const manifest = { name: "a", version: "1.0.0", exports: [], capabilities: [], grants: [], limits: {}, config: {} };
   * const sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"; // of no bytes
   * await store.put({ manifest, wasm: new Uint8Array(), sha256, installedAt: "2025-01-01T00:00:00.000Z" });
   * await store.put({ manifest, wasm: new Uint8Array(), sha256, installedAt: "2025-02-01T00:00:00.000Z" });
   * (await store.get("a", "1.0.0"))?.installedAt; // "2025-02-01T00:00:00.000Z"
   * ```
   */
  async put(record: StoredPlugin): Promise<void> {
    await checkRecord(record);
    const { name, version } = record.manifest;
    let versions = this.#plugins.get(name);
    if (!versions) this.#plugins.set(name, versions = new Map());
    versions.set(version, copyRecord(record));
  }

  /**
   * Reads one version, or the latest by semantic-version precedence.
   *
   * @param name The plugin's name.
   * @param version The version; when omitted, the highest stored version (prereleases rank below releases).
   * @returns A copy of the record, or undefined when there is none.
   * @throws {TypeError} When the name or version is not a string.
   * @throws {RangeError} When the name or version breaks the naming rule.
   *
   * @example Read a missing plugin
   * ```ts
   * import { MemoryStore } from "./memory_store.ts";
   * await new MemoryStore().get("nothing", "1.0.0"); // undefined
   * ```
   */
  get(name: string, version?: string): Promise<StoredPlugin | undefined> {
    return Promise.try(() => {
      checkName(name);
      if (version !== undefined) checkVersion(version, name);
      const versions = this.#plugins.get(name);
      const key = version ?? sortVersions(versions?.keys() ?? []).at(-1);
      const record = key === undefined ? undefined : versions?.get(key);
      return record && copyRecord(record);
    });
  }

  /**
   * Lists every stored plugin.
   *
   * @returns One summary per name, sorted by name, each with its versions sorted lowest first and its latest.
   *
   * @example List an empty store
   * ```ts
   * import { MemoryStore } from "./memory_store.ts";
   * await new MemoryStore().list(); // []
   * ```
   */
  list(): Promise<PluginSummary[]> {
    const names = [...this.#plugins.keys()].sort(compareNames);
    return Promise.resolve(names.map((name) => {
      const versions = sortVersions(this.#plugins.get(name)?.keys() ?? []);
      return { name, versions, latest: versions.at(-1)! };
    }));
  }

  /**
   * Removes one version, or every version of a plugin.
   *
   * @param name The plugin's name.
   * @param version The version; when omitted, every version.
   * @returns The versions removed, lowest first; empty when there was nothing to remove.
   * @throws {TypeError} When the name or version is not a string.
   * @throws {RangeError} When the name or version breaks the naming rule.
   *
   * @example Remove a plugin that is not there
   * ```ts
   * import { MemoryStore } from "./memory_store.ts";
   * await new MemoryStore().remove("nothing"); // []
   * ```
   */
  remove(name: string, version?: string): Promise<string[]> {
    return Promise.try(() => {
      checkName(name);
      if (version !== undefined) checkVersion(version, name);
      const versions = this.#plugins.get(name);
      if (!versions) return [];
      const removed = version === undefined ? sortVersions(versions.keys()) : versions.has(version) ? [version] : [];
      for (const v of removed) versions.delete(v);
      if (versions.size === 0) this.#plugins.delete(name);
      return removed;
    });
  }
}
