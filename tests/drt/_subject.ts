// The two implementations the DRT compares, behind one small interface each: keycard's TypeScript Cedar (the subject)
// and cedar-wasm 4.13.0 (the reference). Repoint `decideWithTypeScript` and `parseWithTypeScript` here when the
// implementation's entry points move (e.g. to `compilePolicies(text)` in src/policy/cedar/mod.ts).
import type * as CedarTypes from "@cedar-policy/cedar-wasm/web";
import { cedar } from "./_cedar.ts";
import type { EntityJson as WasmEntityJson, PolicyJson as WasmPolicyJson } from "@cedar-policy/cedar-wasm/web";
import { type CompiledPolicySet, compilePolicySet } from "../../src/policy/cedar/compile_policy_set.ts";
import { parsePolicies } from "../../src/policy/cedar/parse_policies.ts";
import { CedarSyntaxError } from "../../src/policy/cedar/syntax_error.ts";
import type { EntityJson, JsonValue, RequestJson } from "./_generate.ts";

/** What one side answered for a request: a decision, or a refusal of its input (policies, entities or context). */
export type Answer =
  | { kind: "decision"; decision: "allow" | "deny"; reason: string[]; errors: string[]; messages: string[] }
  | { kind: "refused"; stage: "policies" | "request"; message: string };

/** What one side made of a policy set's text: each policy's EST, or a refusal. */
export type ParseAnswer = { kind: "parsed"; ests: unknown[] } | { kind: "refused"; message: string };

/** A request together with its entities. */
export interface Decide {
  request: RequestJson;
  entities: readonly EntityJson[];
}

function messageOf(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/**
 * Parses a policy set with keycard's parser.
 * @param text Cedar policy text.
 * @returns Each policy's EST (Longs as bigint), or the refusal.
 * @throws {Error} When the parser fails in a way other than `CedarSyntaxError` (a crash: always a finding).
 */
export function parseWithTypeScript(text: string): ParseAnswer {
  try {
    // Static policies first, then templates, each in text order: the order cedar-wasm's split gives them in.
    const parsed = parsePolicies(text);
    return {
      kind: "parsed",
      ests: [...parsed.filter((p) => !p.template), ...parsed.filter((p) => p.template)].map((p) => p.json),
    };
  } catch (error) {
    if (error instanceof CedarSyntaxError) return { kind: "refused", message: error.message };
    throw error;
  }
}

/**
 * Parses a policy set with cedar-wasm: split into policies, each converted to its EST.
 * @param text Cedar policy text.
 * @returns Each policy's EST (Longs as JS numbers, so past 2^53 inexact), or the refusal.
 */
export function parseWithCedarWasm(text: string): ParseAnswer {
  const parts = cedar.policySetTextToParts(text);
  if (parts.type !== "success") return { kind: "refused", message: parts.errors.map((e) => e.message).join("; ") };
  const ests: unknown[] = [];
  const parts2 = [
    ...parts.policies.map((t) => cedar.policyToJson(t)),
    ...parts.policy_templates.map((t) => cedar.templateToJson(t)),
  ];
  for (const json of parts2) {
    if (json.type !== "success") return { kind: "refused", message: json.errors.map((e) => e.message).join("; ") };
    ests.push(json.json);
  }
  return { kind: "parsed", ests };
}

/** A policy set prepared once by each side, then asked many requests. */
export interface Prepared {
  /** Keycard's answer to one request. */
  typescript(input: Decide): Answer;
  /** cedar-wasm's answer to one request. */
  cedarWasm(input: Decide): Answer;
}

// cedar-wasm keeps pre-parsed sets by id; one id serves, re-prepared when another set took it since.
const WASM_SET_ID = "drt";
let wasmLoaded: object | undefined;

/**
 * Prepares a policy set on both sides: keycard parses and compiles it, cedar-wasm pre-parses it.
 * @param text Cedar policy text.
 * @returns The two deciders; a side that refused the text answers `refused` to every request.
 * @throws {Error} When keycard's parser or compiler crashes (anything but `CedarSyntaxError`): always a finding.
 */
export function prepare(text: string): Prepared {
  let compiled: CompiledPolicySet | undefined;
  let tsRefusal: string | undefined;
  try {
    compiled = compilePolicySet(
      parsePolicies(text).map((p) => ({ id: p.id, json: p.json as unknown as WasmPolicyJson })),
    );
  } catch (error) {
    if (!(error instanceof CedarSyntaxError)) throw error;
    tsRefusal = error.message;
  }
  const check = cedar.checkParsePolicySet({ staticPolicies: text });
  const wasmRefusal = check.type === "success" ? undefined : check.errors.map((e) => e.message).join("; ");
  const token = {};
  return {
    typescript(input) {
      if (compiled === undefined) return { kind: "refused", stage: "policies", message: tsRefusal ?? "" };
      return decideCompiled(compiled, input);
    },
    cedarWasm(input) {
      if (wasmRefusal !== undefined) return { kind: "refused", stage: "policies", message: wasmRefusal };
      if (wasmLoaded !== token) {
        const pre = cedar.preparsePolicySet(WASM_SET_ID, { staticPolicies: text });
        if (pre.type !== "success") {
          return { kind: "refused", stage: "policies", message: pre.errors.map((e) => e.message).join("; ") };
        }
        wasmLoaded = token;
      }
      try {
        return wasmAnswer(cedar.statefulIsAuthorized({
          preparsedPolicySetId: WASM_SET_ID,
          principal: input.request.principal,
          action: input.request.action,
          resource: input.request.resource,
          context: input.request.context as Record<string, never>,
          entities: input.entities as unknown as WasmEntityJson[],
        }));
      } catch (error) {
        return { kind: "refused", stage: "request", message: messageOf(error) };
      }
    },
  };
}

function decideCompiled(compiled: CompiledPolicySet, input: Decide): Answer {
  try {
    const r = compiled.isAuthorized({
      principal: input.request.principal,
      action: input.request.action,
      resource: input.request.resource,
      context: input.request.context as Record<string, never>,
      entities: input.entities as unknown as WasmEntityJson[],
    });
    return { kind: "decision", decision: r.decision, reason: r.reason, errors: r.errors, messages: r.errorMessages };
  } catch (error) {
    if (error instanceof TypeError) return { kind: "refused", stage: "request", message: messageOf(error) };
    throw error;
  }
}

function wasmAnswer(answer: CedarTypes.AuthorizationAnswer): Answer {
  if (answer.type !== "success") {
    return { kind: "refused", stage: "request", message: answer.errors.map((e) => e.message).join("; ") };
  }
  const d = answer.response.diagnostics;
  return {
    kind: "decision",
    decision: answer.response.decision,
    reason: [...d.reason].sort(),
    errors: d.errors.map((e) => e.policyId).sort(),
    messages: d.errors.map((e) => `${e.policyId}: ${e.error.message}`).sort(),
  };
}

/**
 * Decides one request with keycard's implementation, from the text (parse and compile each time).
 * @param policyText Cedar policy text.
 * @param input The request and its entities.
 * @returns The answer.
 */
export function decideWithTypeScript(policyText: string, input: Decide): Answer {
  return prepare(policyText).typescript(input);
}

/**
 * Decides one request with cedar-wasm, from the text.
 * @param policyText Cedar policy text.
 * @param input The request and its entities.
 * @returns The answer.
 */
export function decideWithCedarWasm(policyText: string, input: Decide): Answer {
  try {
    return wasmAnswer(cedar.isAuthorized({
      principal: input.request.principal,
      action: input.request.action,
      resource: input.request.resource,
      context: input.request.context as Record<string, never>,
      policies: { staticPolicies: policyText },
      entities: input.entities as unknown as WasmEntityJson[],
    }));
  } catch (error) {
    // cedar-wasm's JS interface throws (rather than answering failure) on values serde cannot take, e.g. a bigint.
    return { kind: "refused", stage: "request", message: messageOf(error) };
  }
}

/** The JSON value type of entity data, re-exported for the comparer. */
export type { JsonValue };
