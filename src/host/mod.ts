/**
 * keycard's host functions: every privileged act of a plugin (files, HTTP,
 * key-value, configuration variables, logs, clock, randomness), each decided
 * by Cedar and audited before it acts through a narrow capability. Imports
 * no registry, token or admin code.
 *
 * @module
 */
export {
  type CallerContext,
  createHostFunctions,
  type HostFunctionsOptions,
  httpResource,
  kvTarget,
  type PluginLogEntry,
} from "./create_host_functions.ts";
export {
  authorizedFetch,
  type AuthorizedFetchOptions,
  type HttpRequest,
  type HttpResponse,
  type HttpTarget,
  httpTarget,
} from "./authorized_fetch.ts";
export { canonicalizePath, type CanonicalizePathOptions } from "./canonicalize_path.ts";
export { FsCapability, type FsEntry } from "./fs_capability.ts";
export { KvStore, type KvStoreOptions } from "./kv_store.ts";
export type { PluginKv } from "./plugin_kv.ts";
