import { LineCounter, parseDocument } from "yaml";
import { type ConfigErrorOptions, map, parseYaml } from "../config/mod.ts";
import type { AuthorizationRequest, Decision, PolicyEngine, PolicyInfo } from "../policy/mod.ts";
import {
  buildRequests,
  checkRequestSpec,
  type KnownPlugins,
  REQUEST_FIELDS,
  type RequestSpec,
} from "./_request_spec.ts";
import { PolicyTestError } from "./policy_tests.ts";

const REQUEST = map(REQUEST_FIELDS, "a request map");

/**
 * Parses a request file for {@linkcode explainRequest}: the fields of a
 * policy test case without `name` and `expect` (a Cedar request, or a host
 * call as a plugin makes it).
 *
 * @param text The YAML (or JSON) text.
 * @param file The file name, for errors.
 * @returns The request.
 * @throws {PolicyTestError} When the file is not YAML, has an unknown key or a wrong value, or is neither form.
 *
 * @example
 * ```ts
 * import { parseRequestFile } from "./explain.ts";
 * parseRequestFile("plugin: stamp\nclock.now:\n", "req.yaml").plugin; // "stamp"
 * ```
 */
export function parseRequestFile(text: string, file: string): RequestSpec {
  const spec = parseYaml(text, file, REQUEST, "a request file is a map", {
    error: (detail: string, where: ConfigErrorOptions) =>
      new PolicyTestError(`${where.path ? `"${where.path}" ` : ""}${detail}`, { ...where, kind: "request file" }),
  });
  const problem = checkRequestSpec(spec);
  if (problem) {
    const lineCounter = new LineCounter();
    const document = parseDocument(text, { lineCounter });
    const node = problem.key === undefined ? document.contents : document.get(problem.key, true);
    const offset = (node as { range?: [number] } | null)?.range?.[0];
    const at = offset === undefined ? undefined : lineCounter.linePos(offset);
    throw new PolicyTestError(problem.message, {
      file,
      kind: "request file",
      ...(at ? { line: at.line, column: at.col } : {}),
    });
  }
  return spec;
}

/** One decision of an explanation. */
export interface ExplainedDecision {
  /** `name` or `address` for an HTTP call. */
  phase?: "name" | "address";
  /** The Cedar request decided. */
  request: AuthorizationRequest;
  /** The decision. */
  decision: Omit<Decision, "deciding">;
  /** The deciding policies in full: source, line, text. */
  deciding: PolicyInfo[];
}

/** What {@linkcode explainRequest} returns. */
export interface Explanation {
  /** The decisions made, in order (the host stops at the first deny); empty when refused. */
  decisions: ExplainedDecision[];
  /** Why keycard refuses the call before any policy, when it does. */
  refused?: string;
  /** What was not decided (an HTTP name without `ip`). */
  note?: string;
}

/**
 * Decides a request as keycard would and explains each decision with its
 * deciding policies.
 *
 * @param spec A request from {@linkcode parseRequestFile}.
 * @param engine The policies.
 * @param plugins Known plugins' versions and hashes.
 * @returns The decisions, each with its deciding policies.
 *
 * @example
 * ```ts ignore
 * import { explainRequest, parseRequestFile } from "./explain.ts";
 * const { decisions } = explainRequest(parseRequestFile("plugin: stamp\nclock.now:\n", "r.yaml"), engine, new Map());
 * decisions[0]?.deciding[0]?.source; // "grants/stamp"
 * ```
 */
export function explainRequest(spec: RequestSpec, engine: PolicyEngine, plugins: KnownPlugins): Explanation {
  const built = buildRequests(spec, engine, plugins);
  if ("refused" in built) return { decisions: [], refused: built.refused };
  const decisions: ExplainedDecision[] = [];
  for (const { phase, request } of built.requests) {
    const { deciding, ...decision } = engine.explain(request);
    decisions.push({ ...(phase ? { phase } : {}), request, decision, deciding });
    if (decision.decision === "deny") break;
  }
  const allowed = decisions.at(-1)?.decision.decision === "allow";
  return { decisions, ...(built.note && allowed ? { note: built.note } : {}) };
}
