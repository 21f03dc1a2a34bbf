// The ESM build imports its wasm as a module: no read permission on the npm cache needed.
import * as cedar from "@cedar-policy/cedar-wasm";
import { type PolicyProblem, PolicyValidationError } from "./errors.ts";
import type { Entity } from "./resources.ts";

/** A named piece of Cedar text: an operator's `.cedar` file or a plugin's compiled grants. */
export interface PolicySource {
  /** `base.cedar`, `ops/http.cedar`, `grants/<plugin>`, ... Unique within a set. */
  name: string;
  /** The Cedar policies, as written. */
  text: string;
}

/** One policy of the effective set. */
export interface PolicyInfo {
  /** The `@id` annotation, or `<source>#<n>` when it has none. */
  id: string;
  /** Whether the policy permits or forbids. */
  effect: "permit" | "forbid";
  /** Name of the {@linkcode PolicySource} it came from. */
  source: string;
  /** 1-based line of the policy in its source. */
  line: number;
  /** The policy's own Cedar text, as written in its source. */
  text: string;
}

/** A request to decide: principal and resource are full entities. */
export interface AuthorizationRequest {
  /** Who acts: a `Plugin` or `Client` entity. */
  principal: Entity;
  /** The action id, e.g. `fs.read`. */
  action: string;
  /** What is acted on, with its ancestors as parents (e.g. a `File` in its `Dir`s). */
  resource: Entity;
  /** Cedar's `context` record, such as `caller` or an HTTP `method`; must match the schema. */
  context: Record<string, unknown>;
}

/** The answer, with the policies that decided it. */
export interface Decision {
  /** The outcome: `allow` only when some permit matched and no forbid did. */
  decision: "allow" | "deny";
  /** Ids of the deciding policies: the permits of an allow, the forbids of a forbidden deny. */
  policies: string[];
  /** Evaluation errors (a policy that errored is skipped, as Cedar does). */
  errors: string[];
  /** `permitted by <ids>`, `forbidden by <ids>` or `denied by default`. */
  reason: string;
  /** The policy set version that decided. */
  version: number;
  /** Whether the decision came from the cache. */
  cached: boolean;
}

/** Options of {@linkcode PolicyEngine.create}. */
export interface PolicyEngineOptions {
  /** The Cedar schema text (`keycard.cedarschema`); every policy is validated against it, strictly. */
  schema: string;
  /** The policy sources. @default {[]} */
  sources?: PolicySource[];
  /** Decisions kept per policy-set version; the oldest go first. @default {50000} */
  cacheSize?: number;
}

interface ParsedSource {
  name: string;
  text: string;
  /** Offset of each policy in the source text, for error positions. */
  offsets: number[];
  policies: PolicyInfo[];
  /** Per policy id: the principal it is scoped to (`Plugin::x`), or `*`. */
  scopes: Map<string, string>;
  /** `<scope> <host id>` of every Host a permit names, scope as in `scopes`. */
  namedHosts: string[];
}

class State {
  readonly version: number;
  readonly sources: readonly PolicySource[];
  readonly policies: ReadonlyMap<string, PolicyInfo>;
  readonly global: Record<string, string> = {};
  readonly slices = new Map<string, Record<string, string>>();
  /** Slices prepared in cedar-wasm, with whether they read principal attributes. */
  readonly prepared = new Map<string, { principalAttrs: boolean }>();
  readonly cache = new Map<string, Decision>();
  readonly namedHosts: ReadonlySet<string>;

  constructor(version: number, sources: readonly PolicySource[], parsed: ParsedSource[]) {
    this.version = version;
    this.sources = sources;
    const policies = new Map<string, PolicyInfo>();
    const named = new Set<string>();
    for (const source of parsed) {
      for (const policy of source.policies) {
        policies.set(policy.id, policy);
        const scope = source.scopes.get(policy.id)!;
        if (scope === "*") {
          this.global[policy.id] = policy.text;
        } else {
          let slice = this.slices.get(scope);
          if (!slice) this.slices.set(scope, slice = {});
          slice[policy.id] = policy.text;
        }
      }
      for (const host of source.namedHosts) named.add(host);
    }
    this.policies = policies;
    this.namedHosts = named;
  }

  /**
   * Keeps the slices of `previous` that are unchanged (same unscoped policies,
   * same own policies): their preparsed sets in cedar-wasm still hold exactly
   * this content, so a reload that touches one plugin's grants does not make
   * every other plugin preparse again.
   */
  inherit(previous: State): void {
    if (signature(previous.global) !== signature(this.global)) return;
    for (const [key, slice] of previous.prepared) {
      const before = key === "*" ? {} : previous.slices.get(key) ?? {};
      const after = key === "*" ? {} : this.slices.get(key);
      if (after !== undefined && signature(before) === signature(after)) this.prepared.set(key, slice);
    }
  }
}

function signature(policies: Record<string, string>): string {
  return Object.entries(policies).map(([id, text]) => `${id}\u0000${text}`).sort().join("\u0001");
}

let engines = 0;

/**
 * Decides requests with Cedar. Policies are validated strictly against the
 * schema before use; an invalid set is refused whole and the running one stays
 * in force. Decisions go through per-principal policy slices (only the
 * policies scoped to that principal plus the unscoped ones, preparsed once)
 * and a decision cache keyed by everything that can change the answer; both
 * belong to one policy-set version and are swapped atomically on reload.
 *
 * @example Decide a request
 * ```ts ignore
 * import { PolicyEngine } from "./policy_engine.ts";
 * import { pathEntity, pluginEntity } from "./resources.ts";
 * const engine = await PolicyEngine.create({
 *   schema: await Deno.readTextFile("policies/keycard.cedarschema"),
 *   sources: [{ name: "ops.cedar", text: 'permit (principal == Plugin::"x", action == Action::"fs.read", resource in Dir::"/certs");' }],
 * });
 * engine.authorize({
 *   principal: pluginEntity({ name: "x", version: "1.0.0", sha256: "" }),
 *   action: "fs.read",
 *   resource: pathEntity("/certs/ca.pem", "File"),
 *   context: { caller: "" },
 * }).decision; // "allow"
 * ```
 */
export class PolicyEngine {
  readonly #schema: string;
  readonly #cacheSize: number;
  readonly #prefix = `keycard-${++engines}`;
  readonly #parsed = new Map<string, ParsedSource>();
  #state: State;

  private constructor(schema: string, cacheSize: number) {
    this.#schema = schema;
    this.#cacheSize = cacheSize;
    this.#state = new State(0, [], []);
  }

  /**
   * Creates an engine and loads its first policy set.
   * @param options Schema, sources and cache size.
   * @returns The engine.
   * @throws {PolicyValidationError} When the schema or a policy is invalid.
   */
  static create(options: PolicyEngineOptions): Promise<PolicyEngine> {
    const schemaCheck = cedar.checkParseSchema(options.schema);
    if (schemaCheck.type !== "success") {
      throw new PolicyValidationError(
        schemaCheck.errors.map((e) => ({ source: "schema", ...locate(options.schema, e), message: e.message })),
      );
    }
    const engine = new PolicyEngine(options.schema, options.cacheSize ?? 50_000);
    engine.load(options.sources ?? []);
    return Promise.resolve(engine);
  }

  /** The version of the set in force; it grows by one on every successful load. */
  get version(): number {
    return this.#state.version;
  }

  /** The sources of the set in force. */
  sources(): readonly PolicySource[] {
    return this.#state.sources;
  }

  /** Every policy of the set in force. */
  policies(): PolicyInfo[] {
    return [...this.#state.policies.values()];
  }

  /**
   * Validates a complete new set of sources and swaps it in at once. Calls
   * decided before the swap used the old set, after it the new one; never a mix.
   *
   * @param sources Every source of the new set.
   * @returns The new version.
   * @throws {PolicyValidationError} With source, line and column; the running set stays in force.
   */
  load(sources: readonly PolicySource[]): number {
    const { parsed, fresh, names } = this.#prepare(sources);
    for (const source of fresh) this.#parsed.set(source.name, source);
    // Forget parses of sources that left the set.
    for (const key of this.#parsed.keys()) if (!names.has(key)) this.#parsed.delete(key);
    const state = new State(this.#state.version + 1, [...sources], parsed);
    state.inherit(this.#state);
    this.#state = state;
    return this.#state.version;
  }

  /**
   * Validates a complete set of sources as {@linkcode PolicyEngine.load}
   * would, without swapping it in, and decides `probes` on it: nothing
   * changes either way.
   *
   * @param sources Every source of a candidate set.
   * @param probes Requests to decide on the candidate set (e.g. "can an admin still write policies?").
   * @returns The probes' decisions, in order.
   * @throws {PolicyValidationError} With source, line and column.
   */
  check(sources: readonly PolicySource[], probes: readonly AuthorizationRequest[] = []): Decision[] {
    const { parsed } = this.#prepare(sources);
    // A trial state with its own preparsed sets: the set in force is untouched.
    const trial = new State(this.#state.version + 1, [...sources], parsed);
    return probes.map((probe) => this.#evaluate(trial, probe, `${this.#prefix}-trial`));
  }

  #prepare(sources: readonly PolicySource[]): { parsed: ParsedSource[]; fresh: ParsedSource[]; names: Set<string> } {
    const problems: PolicyProblem[] = [];
    const parsed: ParsedSource[] = [];
    const fresh: ParsedSource[] = [];
    const names = new Set<string>();
    for (const source of sources) {
      if (names.has(source.name)) {
        problems.push({ source: source.name, message: `Duplicate source name "${source.name}"` });
        continue;
      }
      names.add(source.name);
      const known = this.#parsed.get(source.name);
      if (known && known.text === source.text) {
        parsed.push(known);
        continue;
      }
      const result = this.#parse(source);
      if ("problems" in result) problems.push(...result.problems);
      else {
        parsed.push(result);
        fresh.push(result);
      }
    }
    const seen = new Map<string, string>();
    for (const source of parsed) {
      for (const policy of source.policies) {
        const other = seen.get(policy.id);
        if (other !== undefined) {
          problems.push({
            source: policy.source,
            line: policy.line,
            column: 1,
            policyId: policy.id,
            message: `Policy id "${policy.id}" is already used in "${other}"`,
          });
        }
        seen.set(policy.id, policy.source);
      }
    }
    // One strict validation of every new or changed source: the schema is
    // parsed once per call, which dominates for many small sources.
    if (problems.length === 0 && fresh.length > 0) problems.push(...this.#validate(fresh));
    if (problems.length > 0) throw new PolicyValidationError(problems);
    return { parsed, fresh, names };
  }

  /**
   * Whether `Host::"<id>"` is named by a permit of the set in force that is
   * scoped to `Plugin::"<plugin>"` or unscoped (see base.cedar): one plugin's
   * grant for an address never lifts the private-address forbid for another.
   */
  namedHost(id: string, plugin: string): boolean {
    return this.#state.namedHosts.has(`* ${id}`) || this.#state.namedHosts.has(`Plugin::${plugin} ${id}`);
  }

  /**
   * Decides a request on the set in force.
   * @param request Principal and resource entities, action, context.
   * @returns The decision with its deciding policies.
   */
  authorize(request: AuthorizationRequest): Decision {
    return this.#evaluate(this.#state, request, this.#prefix);
  }

  #evaluate(state: State, request: AuthorizationRequest, prefix: string): Decision {
    const key = JSON.stringify([request.principal, request.action, request.resource, request.context]);
    const hit = state.cache.get(key);
    if (hit) return { ...hit, cached: true };
    const scope = `${request.principal.uid.type}::${request.principal.uid.id}`;
    const sliceKey = state.slices.has(scope) ? scope : "*";
    const setId = `${prefix}:${sliceKey}`;
    let slice = state.prepared.get(sliceKey);
    if (!slice) {
      const policies = sliceKey === "*" ? state.global : { ...state.global, ...state.slices.get(sliceKey) };
      const prepared = cedar.preparsePolicySet(setId, { staticPolicies: policies });
      if (prepared.type !== "success") {
        return this.#decide(state, "deny", [], prepared.errors.map((e) => e.message), false);
      }
      // Each entity costs cedar-wasm 15-50 µs: pass the principal only to
      // slices whose policies read its attributes.
      slice = { principalAttrs: Object.values(policies).some((text) => text.includes("principal.")) };
      state.prepared.set(sliceKey, slice);
    }
    const answer = cedar.statefulIsAuthorized({
      preparsedPolicySetId: setId,
      principal: request.principal.uid,
      action: { type: "Action", id: request.action },
      resource: request.resource.uid,
      context: request.context,
      entities: slice.principalAttrs ? [request.principal, request.resource] : [request.resource],
    } as unknown as cedar.StatefulAuthorizationCall);
    const decision = this.#fromAnswer(state, answer);
    if (state.cache.size >= this.#cacheSize) state.cache.delete(state.cache.keys().next().value!);
    state.cache.set(key, decision);
    return decision;
  }

  /**
   * Decides a request with Cedar's plain `isAuthorized` over the whole set:
   * no slices, no cache. The reference the fast path is tested against.
   */
  authorizeUncached(request: AuthorizationRequest): Decision {
    const state = this.#state;
    const staticPolicies: Record<string, string> = {};
    for (const policy of state.policies.values()) staticPolicies[policy.id] = policy.text;
    const answer = cedar.isAuthorized({
      principal: request.principal.uid,
      action: { type: "Action", id: request.action },
      resource: request.resource.uid,
      context: request.context,
      policies: { staticPolicies },
      entities: [request.principal, request.resource],
    } as unknown as cedar.AuthorizationCall);
    return this.#fromAnswer(state, answer);
  }

  /** A decision from cedar-wasm's answer; a failed evaluation denies, with its errors. */
  #fromAnswer(state: State, answer: cedar.AuthorizationAnswer): Decision {
    if (answer.type !== "success") return this.#decide(state, "deny", [], answer.errors.map((e) => e.message), false);
    const { decision, diagnostics } = answer.response;
    const errors = diagnostics.errors.map((e) => `${e.policyId}: ${e.error.message}`);
    return this.#decide(state, decision, diagnostics.reason, errors, false);
  }

  /**
   * Decides a request and returns the deciding policies in full.
   * @returns The decision plus each deciding policy's source, line and text.
   */
  explain(request: AuthorizationRequest): Decision & { deciding: PolicyInfo[] } {
    const decision = this.authorize(request);
    const state = this.#state;
    return { ...decision, deciding: decision.policies.flatMap((id) => state.policies.get(id) ?? []) };
  }

  #decide(
    state: State,
    decision: "allow" | "deny",
    policies: string[],
    errors: string[],
    cached: boolean,
  ): Decision {
    const sorted = [...policies].sort();
    const reason = decision === "allow"
      ? `permitted by ${sorted.join(", ")}`
      : sorted.length > 0
      ? `forbidden by ${sorted.join(", ")}`
      : "denied by default";
    return { decision, policies: sorted, errors, reason, version: state.version, cached };
  }

  #validate(sources: ParsedSource[]): PolicyProblem[] {
    const staticPolicies: Record<string, string> = {};
    const where = new Map<string, { source: ParsedSource; index: number }>();
    for (const source of sources) {
      source.policies.forEach((policy, index) => {
        staticPolicies[policy.id] = policy.text;
        where.set(policy.id, { source, index });
      });
    }
    const validation = cedar.validate({
      schema: this.#schema,
      policies: { staticPolicies },
      validationSettings: { mode: "strict" },
    } as unknown as cedar.ValidationCall);
    if (validation.type !== "success") {
      return validation.errors.map((e) => ({ source: "(policy set)", message: e.message }));
    }
    return validation.validationErrors.map((v) => {
      const at = where.get(v.policyId);
      if (!at) return { source: "(policy set)", policyId: v.policyId, message: v.error.message };
      return {
        source: at.source.name,
        ...locate(at.source.text, v.error, at.source.offsets[at.index] ?? 0),
        policyId: v.policyId,
        message: v.error.message,
      };
    });
  }

  #parse(source: PolicySource): ParsedSource | { problems: PolicyProblem[] } {
    const fail = (errors: cedar.DetailedError[], base = 0, policyId?: string) => ({
      problems: errors.map((e) => ({
        source: source.name,
        ...locate(source.text, e, base),
        ...(policyId === undefined ? {} : { policyId }),
        message: e.message,
      })),
    });
    const parts = cedar.policySetTextToParts(source.text);
    if (parts.type !== "success") return fail(parts.errors);
    const policies: PolicyInfo[] = [];
    const scopes = new Map<string, string>();
    const namedHosts: string[] = [];
    const offsets: number[] = [];
    let cursor = 0;
    for (const [index, text] of parts.policies.entries()) {
      const offset = Math.max(0, source.text.indexOf(text, cursor));
      cursor = offset + text.length;
      const json = cedar.policyToJson(text);
      if (json.type !== "success") return fail(json.errors, offset);
      const est = json.json as unknown as {
        effect: "permit" | "forbid";
        principal: { op: string; entity?: { type: string; id: string } };
        annotations?: Record<string, string>;
      };
      const id = est.annotations?.id ?? `${source.name}#${index + 1}`;
      policies.push({ id, effect: est.effect, source: source.name, line: lineOf(source.text, offset), text });
      offsets.push(offset);
      const principal = est.principal;
      scopes.set(
        id,
        principal.op === "==" && principal.entity ? `${principal.entity.type}::${principal.entity.id}` : "*",
      );
      if (est.effect === "permit") {
        const hosts: string[] = [];
        collectHosts(est, hosts);
        for (const host of hosts) namedHosts.push(`${scopes.get(id)} ${host}`);
      }
    }
    return { name: source.name, text: source.text, policies, scopes, namedHosts, offsets };
  }
}

function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

function locate(text: string, error: cedar.DetailedError, base = 0): { line?: number; column?: number } {
  const start = error.sourceLocations?.[0]?.start;
  if (start === undefined) return {};
  const offset = base + start;
  const line = lineOf(text, offset);
  const lineStart = text.lastIndexOf("\n", offset - 1) + 1;
  return { line, column: offset - lineStart + 1 };
}

function collectHosts(value: unknown, out: string[]): void {
  if (Array.isArray(value)) {
    for (const item of value) collectHosts(item, out);
  } else if (typeof value === "object" && value !== null) {
    const record = value as Record<string, unknown>;
    for (const key of ["__entity", "entity"]) {
      const entity = record[key] as { type?: unknown; id?: unknown } | undefined;
      if (entity && entity.type === "Host" && typeof entity.id === "string") out.push(entity.id);
    }
    for (const item of Object.values(record)) collectHosts(item, out);
  }
}
