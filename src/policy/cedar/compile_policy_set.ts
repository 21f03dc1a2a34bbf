import type {
  ActionConstraint,
  CedarValueJson,
  EntityJson,
  EntityUidJson,
  PolicyJson,
  PrincipalConstraint,
  ResourceConstraint,
} from "@cedar-policy/cedar-wasm/web";
import { type AttributeReads, compileConditions } from "./_compile_expr.ts";
import { entityIn, type Env } from "./_eval_runtime.ts";
import { checkEntityType, contextFromJson, entityRefFromJson } from "./_json_values.ts";
import { type ActionKey, type PrincipalKey, ScopeIndex } from "./_scope_index.ts";
import { EntityStore } from "./entity_store.ts";
import { CedarEvalError, type CedarRecord, EntityRef } from "./value.ts";

/** One request to {@linkcode CompiledPolicySet.isAuthorized}, in cedar-wasm's shape. */
export interface CedarRequest {
  /** The principal: `{ type, id }`, `{ __entity: { type, id } }` or an {@linkcode EntityRef}. */
  readonly principal: EntityUidJson | EntityRef;
  /** The action, such as `{ type: "Action", id: "fs.read" }`. */
  readonly action: EntityUidJson | EntityRef;
  /** The resource. */
  readonly resource: EntityUidJson | EntityRef;
  /** The context: Cedar JSON (with `__entity` and `__extn` escapes) or a record. */
  readonly context: Readonly<Record<string, CedarValueJson>> | CedarRecord;
  /** The entities: Cedar entity JSON, or a store parsed once with {@linkcode EntityStore.fromJson}. */
  readonly entities: EntityStore | ReadonlyArray<EntityJson>;
}

/** The answer to a {@linkcode CedarRequest}, with cedar-wasm's meaning. */
export interface CedarResponse {
  /** `allow` when a permit holds and no forbid does. */
  readonly decision: "allow" | "deny";
  /** Ids of the satisfied forbids when one holds, else of the satisfied permits (none when denied by default); sorted. */
  readonly reason: string[];
  /** Ids of the policies whose evaluation raised an error (they were skipped); sorted. */
  readonly errors: string[];
  /** The message of each error, parallel to `errors`, worded as cedar-wasm words it. */
  readonly errorMessages: string[];
}

/** A policy set compiled for repeated decisions. */
export interface CompiledPolicySet {
  /** How many policies the set holds. */
  readonly size: number;
  /**
   * Decides a request as Cedar does: forbid overrides permit, default deny,
   * a policy whose evaluation errors is skipped and reported.
   * @param request The request.
   * @returns The decision, its reasons and the errors.
   * @throws {TypeError} When the request is malformed: a uid, the context or
   * an entity (where cedar-wasm answers `type: "failure"`).
   */
  isAuthorized(request: CedarRequest): CedarResponse;
}

type Check = (env: Env) => boolean;

interface CompiledPolicy {
  readonly id: string;
  readonly forbid: boolean;
  /** Only for `principal is T in E` (the index files it under E). */
  readonly principal: Check | undefined;
  readonly resource: Check | undefined;
  readonly condition: Check | undefined;
  /** The last request that visited it, so that one listed under two actions runs once. */
  visited: number;
}

function scopeEntity(json: unknown, policyId: string, where: string): EntityRef {
  try {
    return entityRefFromJson(json, `the ${where} scope`);
  } catch (error) {
    throw new TypeError(`Policy "${policyId}": ${(error as Error).message}`, { cause: error });
  }
}

function scopeType(type: unknown, policyId: string): string {
  if (typeof type !== "string") throw new TypeError(`Policy "${policyId}": "is" needs an entity type`);
  try {
    checkEntityType(type);
  } catch (error) {
    throw new TypeError(`Policy "${policyId}": ${(error as Error).message}`, { cause: error });
  }
  return type;
}

function refuseSlot(constraint: object, policyId: string, where: string): void {
  const inner = (constraint as { in?: object }).in;
  if ("slot" in constraint || (typeof inner === "object" && inner !== null && "slot" in inner)) {
    throw new TypeError(`Policy "${policyId}": templates are not supported (slot in the ${where} scope)`);
  }
}

function principalScope(scope: PrincipalConstraint, policyId: string): [PrincipalKey, Check | undefined] {
  refuseSlot(scope, policyId, "principal");
  switch (scope.op) {
    case "All":
      return [{ op: "All" }, undefined];
    case "==":
    case "in":
      return [
        { op: scope.op, key: scopeEntity((scope as { entity: unknown }).entity, policyId, "principal").key },
        undefined,
      ];
    case "is": {
      const type = scopeType(scope.entity_type, policyId);
      if (scope.in === undefined) return [{ op: "is", type }, undefined];
      const parent = scopeEntity((scope.in as { entity: unknown }).entity, policyId, "principal");
      return [{ op: "in", key: parent.key }, (env) => env.principal.type === type];
    }
  }
  throw new TypeError(`Policy "${policyId}": unknown principal scope ${JSON.stringify(scope)}`);
}

function actionScope(scope: ActionConstraint, policyId: string): ActionKey {
  refuseSlot(scope, policyId, "action");
  switch (scope.op) {
    case "All":
      return { op: "All" };
    case "==":
      return { op: "==", key: scopeEntity((scope as { entity: unknown }).entity, policyId, "action").key };
    case "in": {
      if ("entities" in scope) {
        if (!Array.isArray(scope.entities)) throw new TypeError(`Policy "${policyId}": "entities" must be an array`);
        return { op: "in", keys: scope.entities.map((entity) => scopeEntity(entity, policyId, "action").key) };
      }
      return { op: "in", keys: [scopeEntity(scope.entity, policyId, "action").key] };
    }
  }
  throw new TypeError(`Policy "${policyId}": unknown action scope ${JSON.stringify(scope)}`);
}

function resourceScope(scope: ResourceConstraint, policyId: string): Check | undefined {
  refuseSlot(scope, policyId, "resource");
  switch (scope.op) {
    case "All":
      return undefined;
    case "==": {
      const key = scopeEntity((scope as { entity: unknown }).entity, policyId, "resource").key;
      return (env) => env.resource.key === key;
    }
    case "in": {
      const parent = scopeEntity((scope as { entity: unknown }).entity, policyId, "resource");
      return (env) => entityIn(env.entities, env.resource, parent);
    }
    case "is": {
      const type = scopeType(scope.entity_type, policyId);
      if (scope.in === undefined) return (env) => env.resource.type === type;
      const parent = scopeEntity((scope.in as { entity: unknown }).entity, policyId, "resource");
      return (env) => env.resource.type === type && entityIn(env.entities, env.resource, parent);
    }
  }
  throw new TypeError(`Policy "${policyId}": unknown resource scope ${JSON.stringify(scope)}`);
}

function byId(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function messageOf(error: unknown): string {
  if (error instanceof CedarEvalError) return error.message;
  // A nesting too deep for the stack: Cedar reports its own limit.
  if (error instanceof RangeError && /call stack/i.test(error.message)) return "recursion limit reached";
  throw error;
}

/**
 * Stamps of decisions, one per decision in the process: compiled policies may
 * be shared by several sets (a reload links the unchanged ones again), so the
 * stamp that says "already evaluated in this decision" must never repeat
 * across sets. A double counts to 2^53 without wrapping.
 */
let visits = 0;
/** One scratch array for all sets: a decision runs to its end before the next starts. */
const scratch: CompiledPolicy[] = [];

class PolicySet implements CompiledPolicySet {
  readonly size: number;
  readonly #index: ScopeIndex<CompiledPolicy>;

  constructor(index: ScopeIndex<CompiledPolicy>, size: number) {
    this.#index = index;
    this.size = size;
  }

  isAuthorized(request: CedarRequest): CedarResponse {
    const principal = uid(request.principal, "the principal");
    const action = uid(request.action, "the action");
    const resource = uid(request.resource, "the resource", false);
    const entities = request.entities instanceof EntityStore
      ? request.entities
      : EntityStore.fromJson(request.entities);
    const context = contextFromJson(request.context);
    const env: Env = { principal, action, resource, context, entities };
    const candidates = scratch;
    candidates.length = 0;
    this.#index.collect(
      principal,
      entities.get(principal.key)?.ancestors,
      action,
      entities.get(action.key)?.ancestors,
      candidates,
    );
    const visit = ++visits;
    let permits: string[] | undefined;
    let forbids: string[] | undefined;
    let failures: { id: string; message: string }[] | undefined;
    for (let i = 0; i < candidates.length; i++) {
      const policy = candidates[i]!;
      if (policy.visited === visit) continue;
      policy.visited = visit;
      if (policy.principal !== undefined && !policy.principal(env)) continue;
      if (policy.resource !== undefined && !policy.resource(env)) continue;
      if (policy.condition !== undefined) {
        let holds: boolean;
        try {
          holds = policy.condition(env);
        } catch (error) {
          (failures ??= []).push({ id: policy.id, message: messageOf(error) });
          continue;
        }
        if (!holds) continue;
      }
      if (policy.forbid) (forbids ??= []).push(policy.id);
      else (permits ??= []).push(policy.id);
    }
    candidates.length = 0;
    const decision = forbids === undefined && permits !== undefined ? "allow" : "deny";
    const reason = forbids ?? permits ?? [];
    if (reason.length > 1) reason.sort(byId);
    if (failures === undefined) return { decision, reason, errors: [], errorMessages: [] };
    if (failures.length > 1) failures.sort((a, b) => byId(a.id, b.id));
    return {
      decision,
      reason,
      errors: failures.map((failure) => failure.id),
      errorMessages: failures.map((failure) => failure.message),
    };
  }
}

function uid(json: EntityUidJson | EntityRef, where: string, intern = true): EntityRef {
  return json instanceof EntityRef ? json : entityRefFromJson(json, where, intern);
}

/**
 * Compiles policies in Cedar's JSON format (EST) into closures, indexed by
 * principal and action scope, so that a decision evaluates only the policies
 * that can apply to its request. Semantics are Cedar's (cedar-wasm 4.13 is the
 * reference): see {@linkcode CompiledPolicySet.isAuthorized}.
 *
 * @param policies Each policy with its id; integer literals may be numbers or bigints.
 * @returns The compiled set.
 * @throws {TypeError} On a duplicate id, a template (a slot), a malformed
 * expression, an invalid entity type or an unknown extension function,
 * naming the policy.
 *
 * @example Decide a file read
 * ```ts
 * import { compilePolicySet } from "./compile_policy_set.ts";
 * import assert from "node:assert/strict";
 *
 * const set = compilePolicySet([{
 *   id: "grant.p1.1",
 *   json: {
 *     effect: "permit",
 *     principal: { op: "==", entity: { type: "Plugin", id: "p1" } },
 *     action: { op: "==", entity: { type: "Action", id: "fs.read" } },
 *     resource: { op: "in", entity: { type: "Dir", id: "/data/p1" } },
 *     conditions: [],
 *   },
 * }]);
 * const answer = set.isAuthorized({
 *   principal: { type: "Plugin", id: "p1" },
 *   action: { type: "Action", id: "fs.read" },
 *   resource: { type: "File", id: "/data/p1/a.txt" },
 *   context: {},
 *   entities: [{ uid: { type: "File", id: "/data/p1/a.txt" }, attrs: {}, parents: [{ type: "Dir", id: "/data/p1" }] }],
 * });
 * assert.deepEqual(answer, { decision: "allow", reason: ["grant.p1.1"], errors: [], errorMessages: [] });
 * ```
 */
export function compilePolicySet(policies: ReadonlyArray<{ id: string; json: PolicyJson }>): CompiledPolicySet {
  const compiler = new PolicyCompiler();
  return compiler.link(policies.map(({ id, json }) => compiler.compile(id, json)));
}

/** One policy compiled by {@linkcode PolicyCompiler.compile}, ready to be linked into sets. */
export interface CompiledPolicyEntry {
  /** The policy id. */
  readonly id: string;
  /** @internal */
  readonly principalKey: PrincipalKey;
  /** @internal */
  readonly actionKey: ActionKey;
  /** @internal */
  readonly policy: CompiledPolicy;
}

/**
 * Compiles policies one at a time and links sets from them, so that a reload
 * that changes one source of many compiles only that source's policies.
 * Policies compiled by one compiler share their attribute reads (each
 * `principal.x` read once per request, whichever policies read it).
 *
 * @example Link a set from policies compiled once
 * ```ts
 * import { PolicyCompiler } from "./compile_policy_set.ts";
 * const compiler = new PolicyCompiler();
 * const permit = compiler.compile("p", {
 *   effect: "permit",
 *   principal: { op: "All" },
 *   action: { op: "All" },
 *   resource: { op: "All" },
 *   conditions: [],
 * });
 * const set = compiler.link([permit]);
 * set.size; // 1
 * ```
 */
export class PolicyCompiler {
  readonly #reads: AttributeReads = new Map();

  /**
   * Compiles one policy.
   * @param id The policy id.
   * @param json The policy in Cedar's JSON policy format (`bigint` or `number` Longs).
   * @returns The compiled policy.
   * @throws {TypeError} On a malformed policy, a template, an invalid type name or an unknown extension function.
   */
  compile(id: string, json: PolicyJson): CompiledPolicyEntry {
    if (typeof id !== "string") throw new TypeError(`Expected a policy id string, got ${JSON.stringify(id)}`);
    if (json === null || typeof json !== "object") throw new TypeError(`Policy "${id}" is not an object`);
    if (json.effect !== "permit" && json.effect !== "forbid") {
      throw new TypeError(`Policy "${id}": effect must be "permit" or "forbid", got ${JSON.stringify(json.effect)}`);
    }
    if (!json.principal || !json.action || !json.resource || !Array.isArray(json.conditions)) {
      throw new TypeError(`Policy "${id}" needs "principal", "action", "resource" and "conditions"`);
    }
    const [principalKey, principalCheck] = principalScope(json.principal, id);
    const actionKey = actionScope(json.action, id);
    const resource = resourceScope(json.resource, id);
    let condition: Check | undefined;
    try {
      condition = compileConditions(json.conditions, this.#reads);
    } catch (error) {
      throw new TypeError(`Policy "${id}": ${(error as Error).message}`, { cause: error });
    }
    const policy = { id, forbid: json.effect === "forbid", principal: principalCheck, resource, condition, visited: 0 };
    return { id, principalKey, actionKey, policy };
  }

  /**
   * Links compiled policies into a set: only the scope index is built.
   * @param entries Policies from {@linkcode PolicyCompiler.compile} of this compiler.
   * @returns The set.
   * @throws {TypeError} When two entries share an id.
   */
  link(entries: readonly CompiledPolicyEntry[]): CompiledPolicySet {
    const index = new ScopeIndex<CompiledPolicy>();
    const ids = new Set<string>();
    for (const entry of entries) {
      if (ids.has(entry.id)) throw new TypeError(`Policy id "${entry.id}" is used twice`);
      ids.add(entry.id);
      index.add(entry.principalKey, entry.actionKey, entry.policy);
    }
    return new PolicySet(index, ids.size);
  }
}
