// Test support: the same request decided by cedar-wasm (the reference) and by
// compilePolicySet, for the evaluator's tests and benchmark.
import { freshCedar } from "../_cedar_instance.ts";

// An instance of its own: tests that share the module graph may kill a shared one on purpose.
const cedar = await freshCedar();
import type { EntityJson, PolicyJson } from "@cedar-policy/cedar-wasm/web";
import { type CompiledPolicySet, compilePolicySet } from "./compile_policy_set.ts";

/** A uid as both sides take it. */
export interface Uid {
  type: string;
  id: string;
}

/** A request as both sides take it. */
export interface OracleRequest {
  principal: Uid;
  action: Uid;
  resource: Uid;
  context: unknown;
  entities: unknown;
}

/** What either side answered: a decision, or a refusal of the input. */
export type Outcome =
  | { kind: "answer"; decision: string; reason: string[]; errors: string[]; errorMessages: string[] }
  | { kind: "failure"; message: string };

/** Policies split from Cedar text, each with an id (`p0`, `p1`, ...) and its EST. */
export interface ParsedPolicies {
  texts: Record<string, string>;
  policies: { id: string; json: PolicyJson }[];
}

/**
 * Splits Cedar policy text into policies and converts each to its EST with cedar-wasm.
 * @throws {Error} When cedar-wasm cannot parse the text.
 */
export function parsePolicies(text: string): ParsedPolicies {
  const parts = cedar.policySetTextToParts(text);
  if (parts.type !== "success") throw new Error(`cedar-wasm cannot split ${text}: ${JSON.stringify(parts.errors)}`);
  const texts: Record<string, string> = {};
  const policies: { id: string; json: PolicyJson }[] = [];
  parts.policies.forEach((policy, i) => {
    const json = cedar.policyToJson(policy);
    if (json.type !== "success") throw new Error(`cedar-wasm cannot convert ${policy}: ${JSON.stringify(json.errors)}`);
    texts[`p${i}`] = policy;
    policies.push({ id: `p${i}`, json: exactIntegers(json.json, policy) });
  });
  return { texts, policies };
}

/**
 * cedar-wasm's EST holds integer literals as JS numbers, which round those
 * beyond 2^53: put back the exact bigint from the text, as keycard's own
 * parser writes them.
 */
function exactIntegers(json: PolicyJson, text: string): PolicyJson {
  // Literals that round alike are taken in text order, which is the EST's order.
  const exact = new Map<number, bigint[]>();
  for (const literal of text.match(/-?\d{16,}/g) ?? []) {
    const list = exact.get(Number(literal)) ?? [];
    list.push(BigInt(literal));
    exact.set(Number(literal), list);
  }
  if (exact.size === 0) return json;
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk);
    if (node === null || typeof node !== "object") return node;
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(node)) {
      out[key] = key === "Value" && typeof value === "number" && !Number.isSafeInteger(value)
        ? exact.get(value)?.shift() ?? value
        : walk(value);
    }
    return out;
  };
  return walk(json) as PolicyJson;
}

/**
 * Has cedar-wasm parse policies once, for {@linkcode cedarWasmOutcome} to
 * decide many requests against (parsing is most of an `isAuthorized` call).
 * @returns The id to pass as `preparsed`.
 */
export function preparse(id: string, texts: Record<string, string>): { preparsed: string } {
  const answer = cedar.preparsePolicySet(id, { staticPolicies: texts });
  if (answer.type !== "success") throw new Error(`cedar-wasm cannot preparse: ${JSON.stringify(answer)}`);
  return { preparsed: id };
}

/** cedar-wasm's answer, reason and errors sorted. */
export function cedarWasmOutcome(
  policies: Record<string, string> | { preparsed: string },
  request: OracleRequest,
): Outcome {
  const call = {
    principal: request.principal,
    action: request.action,
    resource: request.resource,
    context: request.context as Record<string, never>,
    entities: request.entities as EntityJson[],
  };
  const answer = typeof policies.preparsed === "string"
    ? cedar.statefulIsAuthorized({ ...call, preparsedPolicySetId: policies.preparsed })
    : cedar.isAuthorized({ ...call, policies: { staticPolicies: policies as Record<string, string> } });
  if (answer.type !== "success") return { kind: "failure", message: answer.errors.map((e) => e.message).join("; ") };
  const errors = [...answer.response.diagnostics.errors].sort((a, b) =>
    a.policyId < b.policyId ? -1 : a.policyId > b.policyId ? 1 : 0
  );
  return {
    kind: "answer",
    decision: answer.response.decision,
    reason: [...answer.response.diagnostics.reason].sort(),
    errors: errors.map((e) => e.policyId),
    errorMessages: errors.map((e) => e.error.message),
  };
}

/** compilePolicySet's answer, a TypeError as a failure. */
export function evaluatorOutcome(set: CompiledPolicySet, request: OracleRequest): Outcome {
  try {
    const answer = set.isAuthorized(request as Parameters<CompiledPolicySet["isAuthorized"]>[0]);
    return { kind: "answer", ...answer };
  } catch (error) {
    if (error instanceof TypeError) return { kind: "failure", message: error.message };
    throw error;
  }
}

/** Both answers to one request over Cedar text. */
export function bothOutcomes(text: string, request: OracleRequest): { ours: Outcome; theirs: Outcome } {
  const { texts, policies } = parsePolicies(text);
  return { ours: evaluatorOutcome(compilePolicySet(policies), request), theirs: cedarWasmOutcome(texts, request) };
}

/** An outcome without failure messages (the two sides word refusals differently). */
export function comparable(outcome: Outcome, withMessages = true): unknown {
  if (outcome.kind === "failure") return { kind: "failure" };
  return withMessages ? outcome : { ...outcome, errorMessages: outcome.errorMessages.map(() => "") };
}
