/**
 * Policy as code: the Cedar schema's entities, grants compiled to Cedar, and
 * the engine that decides every host-function call and API action. It knows
 * nothing of HTTP or Extism.
 *
 * @module
 */
export { compileGrants } from "./compile_grants.ts";
export { type Grant, grant, GrantBuilder, type GrantKinds } from "./grant.ts";
export { GrantError, type PolicyProblem, PolicyValidationError } from "./errors.ts";
export {
  type AuthorizationRequest,
  type DecidingPolicy,
  type Decision,
  PolicyEngine,
  type PolicyEngineHealth,
  type PolicyEngineOptions,
  type PolicyEngineStats,
  PolicyEngineUnavailableError,
  type PolicyInfo,
  policySetHash,
  type PolicySource,
  type ShadowDisagreement,
} from "./policy_engine.ts";
export type { ShadowOutcome, ShadowStats } from "./_shadow.ts";
export {
  clientEntity,
  type Entity,
  type EntityUid,
  envVarEntity,
  hostEntity,
  hostId,
  isIpLiteral,
  keyEntity,
  pathEntity,
  pluginEntity,
  type PluginPrincipal,
  runtimeEntity,
} from "./resources.ts";
export { normalizeDataPath, parentDir } from "./data_path.ts";
