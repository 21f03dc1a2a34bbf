/**
 * Installed plugins: the plugin manifest (`plugin.yaml`) parser, the
 * {@linkcode Registry} that checks a plugin's hash and signature before
 * installing it, and the {@linkcode PluginStore}s that keep the bytes: on
 * disk ({@linkcode FileStore}) or in memory ({@linkcode MemoryStore}).
 *
 * @example Install a plugin from its manifest
 * ```ts ignore
 * import { FileStore, parseManifest, Registry } from "./mod.ts";
 * const registry = new Registry(new FileStore(".keycard/registry"));
 * const manifest = parseManifest(await Deno.readTextFile("plugins/hello/plugin.yaml"), "plugin.yaml");
 * await registry.install(await Deno.readFile("plugins/hello/build/plugin.wasm"), manifest);
 * ```
 *
 * @module
 */
export {
  type Manifest,
  ManifestError,
  type ManifestErrorOptions,
  type ManifestExport,
  type ManifestSample,
  parseManifest,
} from "./parse_manifest.ts";
export type { PluginStore, PluginSummary, PutOptions, StoredPlugin } from "./plugin_store.ts";
export { FileStore, type StoreProblem } from "./file_store.ts";
export { MemoryStore } from "./memory_store.ts";
export { type InstallOptions, Registry, type RegistryOptions } from "./registry.ts";
export { PluginIdError, RegistryError, type RegistryErrorCode } from "./errors.ts";
export { checkPluginName, checkPluginVersion, PLUGIN_NAME_RULE, PLUGIN_VERSION_RULE } from "./plugin_id.ts";
// The checks every store applies, for the stores kept outside this folder (src/store).
export { checkRecord, compareNames, sha256Hex, sortVersions } from "./_checks.ts";
// The manifest's field types, re-exported so that this module's documentation is complete.
export type { Grant, GrantKinds } from "../policy/mod.ts";
export type { PluginLimits } from "../runtime/mod.ts";
