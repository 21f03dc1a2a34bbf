/**
 * What the `kv.*` host functions need of a plugin key-value store, whatever
 * keeps it: {@linkcode KvStore} (Deno KV, one machine) or `PostgresKvStore`
 * (PostgreSQL, shared by replicas). Every implementation applies
 * {@linkcode KvRules}, so a plugin sees the same limits, errors and results
 * from each.
 *
 * @example Use any store through the interface
 * ```ts
 * import type { PluginKv } from "./plugin_kv.ts";
 * import { KvStore } from "./kv_store.ts";
 * async function bump(kv: PluginKv): Promise<void> {
 *   await kv.set("counter", "state", "hits", new Uint8Array([1]));
 * }
 * using store = await KvStore.open(":memory:");
 * await bump(store);
 * ```
 */
export interface PluginKv {
  /**
   * Reads a value.
   * @returns The value, or undefined when there is none.
   * @throws {HostCallError} `invalid` for a malformed part; `io` when the store is closed or fails.
   */
  get(plugin: string, namespace: string, key: string): Promise<Uint8Array | undefined>;
  /**
   * Writes a value, replacing any previous one.
   * @throws {HostCallError} `limit` for a value over the store's limit; `invalid` for a malformed part; `io` when the
   * store is closed or fails.
   */
  set(plugin: string, namespace: string, key: string, value: Uint8Array): Promise<void>;
  /**
   * Deletes a value.
   * @returns True when the key had a value (for exactly one of racing deletes).
   * @throws {HostCallError} `invalid` for a malformed part; `io` when the store is closed or fails.
   */
  delete(plugin: string, namespace: string, key: string): Promise<boolean>;
  /** Closes the store; later calls fail with `io`, closing twice does nothing. */
  close(): void;
}
