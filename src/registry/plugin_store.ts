import type { Manifest } from "./parse_manifest.ts";

/** One installed version of a plugin, as a {@linkcode PluginStore} keeps it. */
export interface StoredPlugin {
  /** The manifest; its `name` and `version` say where the record is stored. */
  manifest: Manifest;
  /** The `.wasm` module's bytes. */
  wasm: Uint8Array;
  /** SHA-256 of `wasm`, 64 lower-case hex digits; stores check it on every write and read. */
  sha256: string;
  /** When the version was installed, as an ISO 8601 date (`Date.prototype.toISOString`). */
  installedAt: string;
  /** The base64 Ed25519 signature of `wasm` given at install, when there was one. */
  signature?: string;
  /**
   * The conformance report the install passed (a JSON object, as `runConformance` returns it), kept with the
   * version so that it can be shown later, by any replica; absent for a plugin stored without one (seeded from
   * keycard.yaml, or installed before reports were kept).
   */
  report?: Record<string, unknown>;
}

/** Options of {@linkcode PluginStore.put}. */
export interface PutOptions {
  /**
   * Whether the record may replace a stored one with other content. Without it, a store shared by several processes
   * refuses (`RegistryError` `version_exists`) a version another process stored with other bytes or another manifest
   * since the caller looked; a store of one process may rely on its caller's check. @default {true}
   */
  overwrite?: boolean;
}

/** A plugin's name with every version a {@linkcode PluginStore} holds. */
export interface PluginSummary {
  /** The plugin's name. */
  name: string;
  /** Every stored version, lowest first by semantic-version precedence. */
  versions: string[];
  /** The highest version by semantic-version precedence (a prerelease ranks below its release). */
  latest: string;
}

/**
 * Where installed plugins live: a small interface that a file-system store
 * ({@linkcode FileStore}), an in-memory one ({@linkcode MemoryStore}) and a
 * database shared by several replicas can each implement. Names and versions
 * are checked the same way by every store: a name is 1-128 letters, digits,
 * `_`, `.` or `-`, not starting with `.`; a version is a canonical semantic
 * version. {@linkcode Registry} adds the install rules on top.
 *
 * @example Use any store the same way
 * ```ts
 * import { MemoryStore, type PluginStore } from "./mod.ts";
 * const store: PluginStore = new MemoryStore();
 * await store.list(); // []
 * await store.get("hello"); // undefined
 * ```
 */
export interface PluginStore {
  /**
   * Stores one version, replacing a stored record of the same name and
   * version. Atomic: readers see the old record or the new one, never a mix.
   *
   * @param record The record; `record.manifest.name` and `.version` are its key.
   * @returns Once the record is durable.
   * @throws {TypeError} When the record is malformed (a field of the wrong type).
   * @throws {RangeError} When the name or version breaks the naming rule, or `sha256` is not the hash of `wasm`.
   */
  put(record: StoredPlugin, options?: PutOptions): Promise<void>;
  /**
   * Reads one version, or the latest by semantic-version precedence.
   *
   * @param name The plugin's name.
   * @param version The version; when omitted, the highest stored version (prereleases rank below releases).
   * @returns The record, or undefined when there is none.
   * @throws {TypeError} When the name or version is not a string.
   * @throws {RangeError} When the name or version breaks the naming rule.
   */
  get(name: string, version?: string): Promise<StoredPlugin | undefined>;
  /**
   * Lists every stored plugin.
   *
   * @returns One summary per name, sorted by name, each with its versions sorted lowest first and its latest.
   */
  list(): Promise<PluginSummary[]>;
  /**
   * Removes one version, or every version of a plugin.
   *
   * @param name The plugin's name.
   * @param version The version; when omitted, every version.
   * @returns The versions removed, lowest first; empty when there was nothing to remove.
   * @throws {TypeError} When the name or version is not a string.
   * @throws {RangeError} When the name or version breaks the naming rule.
   */
  remove(name: string, version?: string): Promise<string[]>;
}
