/**
 * keycard: a policy-as-code gateway for Extism WebAssembly plugins.
 *
 * This module is the library surface. The runtime ({@linkcode PluginHost})
 * runs each plugin in its own permissionless isolate with deadlines, memory
 * caps and bounded concurrency; {@linkcode createHostFunctions} gives it
 * host functions that {@linkcode PolicyEngine} decides with Cedar (from
 * grants compiled by {@linkcode compileGrants} and operator policies) and
 * {@linkcode AuditLog} records.
 *
 * @example Run a plugin
 * ```ts ignore
 * import { PluginHost } from "./mod.ts";
 * await using host = new PluginHost();
 * const plugin = await host.load(await Deno.readFile("plugins/hello/build/plugin.wasm"), { name: "hello" });
 * const out = await host.invoke(plugin, "greet", "keycard");
 * console.log(new TextDecoder().decode(out)); // Hello, keycard!
 * ```
 *
 * @module
 */
export {
  DEFAULT_LIMITS,
  HostCallError,
  inspectModule,
  instrumentModule,
  PluginDeadlineError,
  PluginHost,
  PluginLimitError,
  PluginLoadError,
  PluginMemoryError,
  PluginNotFoundError,
  PluginReportedError,
  PluginRuntimeError,
  PluginTrapError,
  SaturatedError,
} from "./src/runtime/mod.ts";
export type {
  FunctionSignature,
  HostCallContext,
  HostCallRefusal,
  HostFunction,
  HostStats,
  InstrumentedModule,
  InstrumentOptions,
  InvokeOptions,
  LoadOptions,
  MemoryInfo,
  ModuleInfo,
  PluginErrorOptions,
  PluginHostOptions,
  PluginInfo,
  PluginLimits,
  PluginStats,
  WorkerStats,
} from "./src/runtime/mod.ts";
export {
  clientEntity,
  compileGrants,
  envVarEntity,
  grant,
  GrantBuilder,
  GrantError,
  hostEntity,
  keyEntity,
  pathEntity,
  pluginEntity,
  PolicyEngine,
  PolicyEngineUnavailableError,
  policySetHash,
  PolicyValidationError,
  runtimeEntity,
} from "./src/policy/mod.ts";
export type {
  AuthorizationRequest,
  DecidingPolicy,
  Decision,
  Entity,
  EntityUid,
  Grant,
  GrantKinds,
  PluginPrincipal,
  PolicyEngineHealth,
  PolicyEngineOptions,
  PolicyEngineStats,
  PolicyInfo,
  PolicyProblem,
  PolicySource,
  ShadowDisagreement,
  ShadowOutcome,
  ShadowStats,
} from "./src/policy/mod.ts";
export { CedarSyntaxError, compilePolicies } from "./src/policy/cedar/mod.ts";
export type {
  CedarAnswer,
  CedarAuthorizationRequest,
  CedarEntity,
  CedarEntityUid,
  CedarJson,
  CompiledPolicies,
  ParseOptions,
} from "./src/policy/cedar/mod.ts";
export { authorizedFetch, createHostFunctions, FsCapability, KvStore } from "./src/host/mod.ts";
export type {
  AuthorizedFetchOptions,
  CallerContext,
  CanonicalizePathOptions,
  FsEntry,
  HostFunctionsOptions,
  HttpRequest,
  HttpResponse,
  HttpTarget,
  PluginKv,
  PluginLogEntry,
} from "./src/host/mod.ts";
export { AuditLog, MAX_AUDIT_REQUEST_BYTES } from "./src/audit/mod.ts";
export type {
  AuditAggregateOptions,
  AuditCounter,
  AuditEntity,
  AuditEvent,
  AuditFileOptions,
  AuditListener,
  AuditLogOptions,
  AuditQuery,
  AuditRequest,
  AuditStats,
} from "./src/audit/mod.ts";
export { ManifestError, parseManifest } from "./src/registry/mod.ts";
export type { Manifest, ManifestErrorOptions, ManifestExport, ManifestSample } from "./src/registry/mod.ts";
