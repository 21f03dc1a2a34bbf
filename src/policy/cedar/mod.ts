/**
 * Cedar in TypeScript: a parser of Cedar policy text into Cedar's JSON policy
 * format, an evaluator that compiles policies once into closures with an
 * index on their scope, and the `decimal`, `ipaddr`, `datetime` and
 * `duration` extensions. Proven against cedar-wasm, which stays for strict
 * schema validation and as the oracle (`tests/drt/`).
 *
 * @module
 */
import {
  type CedarRequest,
  type CedarResponse,
  type CompiledPolicySet,
  compilePolicySet,
} from "./compile_policy_set.ts";
import { type ParseOptions, parsePolicies } from "./parse_policies.ts";
import type { PolicyJson as WasmPolicyJson } from "@cedar-policy/cedar-wasm/web";

export { type CedarRequest, type CedarResponse, type CompiledPolicySet, compilePolicySet };
export { type ParsedPolicy, type ParseOptions, parsePolicies, type PolicyJson } from "./parse_policies.ts";
export { CedarSyntaxError } from "./syntax_error.ts";
export { EntityStore } from "./entity_store.ts";
export { CedarEvalError } from "./value.ts";

/** A JSON value in Cedar's formats: `{ "__entity": { type, id } }` and `{ "__extn": { fn, arg } }` escapes included. */
export type CedarJson = boolean | number | string | CedarJson[] | { [key: string]: CedarJson };

/** An entity's uid in Cedar's JSON. */
export interface CedarEntityUid {
  /** The entity type, with its namespace. */
  type: string;
  /** The entity id. */
  id: string;
}

/** An entity in Cedar's JSON entity format. */
export interface CedarEntity {
  /** Which entity. */
  uid: CedarEntityUid;
  /** Its attributes. */
  attrs: Record<string, CedarJson>;
  /** The entities it is directly `in`. */
  parents: CedarEntityUid[];
  /** Its tags. */
  tags?: Record<string, CedarJson>;
}

/** A request to {@linkcode CompiledPolicies.isAuthorized}, in Cedar's JSON request and entity formats. */
export interface CedarAuthorizationRequest {
  /** Who acts. */
  principal: CedarEntityUid;
  /** The action, e.g. `{ type: "Action", id: "read" }`. */
  action: CedarEntityUid;
  /** What is acted on. */
  resource: CedarEntityUid;
  /** The context record. */
  context: Record<string, CedarJson>;
  /** The entities the policies may read (principal, resource, their ancestors, action groups). */
  entities: CedarEntity[];
}

/** The answer of {@linkcode CompiledPolicies.isAuthorized}. */
export interface CedarAnswer {
  /** `allow` when a permit is satisfied and no forbid is. */
  decision: "allow" | "deny";
  /** The deciding policy ids: satisfied forbids of a forbidden deny, else satisfied permits; sorted. */
  reason: string[];
  /** Ids of the policies whose evaluation errored (skipped, as Cedar does); sorted. */
  errors: string[];
  /** The message of each error, parallel to `errors`. */
  errorMessages: string[];
}

/** A policy set parsed and compiled from text by {@linkcode compilePolicies}. */
export interface CompiledPolicies {
  /** Cedar's id of each policy, in text order: `policy0`, `policy1`, ... */
  readonly ids: readonly string[];
  /**
   * Decides a request as Cedar does: forbid overrides permit, default deny, a
   * policy whose evaluation errors is skipped and reported.
   * @param request The request, with its entities.
   * @returns The decision with deciding and erroring policy ids.
   * @throws {TypeError} When the request or an entity is malformed (cedar-wasm answers `failure` for these).
   */
  isAuthorized(request: CedarAuthorizationRequest): CedarAnswer;
}

/**
 * Parses and compiles Cedar policy text for repeated decisions. Ids are
 * Cedar's own: `policy0`, `policy1`, ... in text order.
 *
 * @param text Cedar policies (templates are refused).
 * @param options The parser's bounds.
 * @returns The compiled set: `isAuthorized` takes Cedar's JSON request and entity formats.
 * @throws {CedarSyntaxError} When the text is not valid Cedar or passes a bound.
 * @throws {TypeError} When the text holds a template.
 *
 * @example Decide a request
 * ```ts
 * import { compilePolicies } from "./mod.ts";
 * import assert from "node:assert/strict";
 * const set = compilePolicies('permit (principal == User::"alice", action, resource) when { context.mfa };');
 * const answer = set.isAuthorized({
 *   principal: { type: "User", id: "alice" },
 *   action: { type: "Action", id: "read" },
 *   resource: { type: "Doc", id: "d1" },
 *   context: { mfa: true },
 *   entities: [],
 * });
 * assert.deepEqual(answer, { decision: "allow", reason: ["policy0"], errors: [], errorMessages: [] });
 * ```
 */
export function compilePolicies(text: string, options?: ParseOptions): CompiledPolicies {
  const policies = parsePolicies(text, options);
  const template = policies.find((policy) => policy.template);
  if (template) {
    throw new TypeError(
      `Policy "${template.id}" at line ${template.line} is a template: templates are not supported here`,
    );
  }
  // The parser's JSON differs from cedar-wasm's type only in bigint Longs, which the evaluator takes.
  const set = compilePolicySet(policies as unknown as { id: string; json: WasmPolicyJson }[]);
  const ids = policies.map((policy) => policy.id);
  return {
    ids,
    isAuthorized: (request: CedarAuthorizationRequest): CedarAnswer => set.isAuthorized(request as CedarRequest),
  };
}
