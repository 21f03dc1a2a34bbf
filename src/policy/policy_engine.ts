import type * as cedar from "@cedar-policy/cedar-wasm/web";
import {
  type BoundViolation,
  checkRequestValues,
  POLICY_LIMITS,
  position,
  scanCedarText,
  utf8Length,
} from "./_bounds.ts";
import { type Cedar, CedarRuntime, describe } from "./_cedar_instance.ts";
import { type ShadowOutcome, type ShadowStats, ShadowVerifier } from "./_shadow.ts";
import { textHash, ValidationCache } from "./_validation_cache.ts";
import { type CachedEntry, DecisionCache } from "./_decision_cache.ts";
import { BuiltEntity, type EntitySlot } from "./_entity_slot.ts";
import { GrantTypes } from "./_grant_types.ts";
import { CedarSyntaxError, type CompiledPolicySet, EntityStore, parsePolicies } from "./cedar/mod.ts";
import { type CompiledPolicyEntry, PolicyCompiler } from "./cedar/compile_policy_set.ts";
import type { PolicyJson as ParsedPolicyJson } from "./cedar/mod.ts";
import { type PolicyProblem, PolicyValidationError } from "./errors.ts";
import type { Entity } from "./resources.ts";

/** A named piece of Cedar text: an operator's `.cedar` file or a plugin's compiled grants. */
export interface PolicySource {
  /** `base.cedar`, `ops/http.cedar`, `grants/<plugin>`, ... Unique within a set. */
  name: string;
  /** The Cedar policies, as written. */
  text: string;
  /**
   * Text keycard compiled itself (a plugin's grants, by `compileGrants`) under
   * the schema it was built for: valid by construction (every grant form is
   * validated against `policies/keycard.cedarschema` in the tests), so strict
   * validation is skipped. Leave it unset for anything a person wrote, or
   * under a schema of one's own.
   * @default {false}
   */
  trusted?: boolean;
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

/** A policy that decided, and where it is written. */
export interface DecidingPolicy {
  /** The policy's id (its `@id`, or `<source>#<n>`). */
  id: string;
  /** Name of the {@linkcode PolicySource} it came from (`base.cedar`, `grants/<plugin>`, ...). */
  source: string;
  /** 1-based line of the policy in its source. */
  line: number;
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
  /** The policy set version that decided (a counter of this engine's loads). */
  version: number;
  /**
   * The policy set that decided, by content: `sha256:<hex>` of its sources
   * (see {@linkcode policySetHash}). Equal in every process and after every
   * restart for the same sources, and different as soon as one text or name is.
   */
  policySet: string;
  /** Each deciding policy (as in `policies`, same order) with its source and line. */
  deciding: DecidingPolicy[];
  /** Whether the decision came from the cache. */
  cached: boolean;
  /**
   * Set when the engine could not decide (cedar-wasm failed, or is being
   * replaced): the decision is a deny, and this says why.
   */
  unavailable?: string;
}

/** Whether the engine can decide, from {@linkcode PolicyEngine.health}. */
export interface PolicyEngineHealth {
  /** Whether decisions are being made; while false, every uncached decision denies. */
  ready: boolean;
  /** Why not, when not ready. */
  reason?: string;
  /** cedar-wasm instances replaced in this process after a failure. */
  restarts: number;
  /**
   * Whether uncached decisions are being made: true while not ready when the
   * TypeScript evaluator decides the set in force (cedar-wasm only validates
   * loads and checks samples).
   */
  deciding: boolean;
}

/**
 * The engine cannot decide or validate right now: cedar-wasm failed and a
 * fresh instance is not in place yet. Nothing changed; try again shortly.
 *
 * @example
 * ```ts
 * import { PolicyEngineUnavailableError } from "./policy_engine.ts";
 * new PolicyEngineUnavailableError("RangeError: Maximum call stack size exceeded").name; // "PolicyEngineUnavailableError"
 * ```
 */
export class PolicyEngineUnavailableError extends Error {
  /** Why the engine cannot decide. */
  readonly reason: string;
  /**
   * Builds the error.
   * @param reason Why the engine cannot decide.
   * @param options The cause.
   */
  constructor(reason: string, options?: ErrorOptions) {
    super(`The policy engine cannot decide: ${reason}`, options);
    this.name = "PolicyEngineUnavailableError";
    this.reason = reason;
  }
}

/** Options of {@linkcode PolicyEngine.create}. */
export interface PolicyEngineOptions {
  /** The Cedar schema text (`keycard.cedarschema`); every policy is validated against it, strictly. */
  schema: string;
  /** The policy sources. @default {[]} */
  sources?: PolicySource[];
  /** Decisions kept per policy-set version; the oldest go first. @default {50000} */
  cacheSize?: number;
  /**
   * Who decides: keycard's TypeScript evaluator (`typescript`: policies
   * compiled once, cedar-wasm only validates and checks a sample), or
   * cedar-wasm itself for every uncached decision (`cedar-wasm`).
   * @default {"typescript"}
   */
  evaluator?: "typescript" | "cedar-wasm";
  /**
   * Share of the evaluator's uncached decisions also decided by cedar-wasm,
   * off the hot path, and compared (0 to 1).
   * @default {0}
   */
  shadowSample?: number;
  /** Called when cedar-wasm disagrees with the evaluator on a sampled decision (the cached entry becomes a deny). */
  onShadowDisagreement?: (event: ShadowDisagreement) => void;
  /**
   * A directory where the engine remembers which policy texts passed strict
   * validation against this schema (one file per schema hash), so that a
   * restart with unchanged policies skips validation.
   * @default {undefined} (every text is validated)
   */
  validationCache?: string;
}

/** A sampled decision on which cedar-wasm and the TypeScript evaluator differ. */
export interface ShadowDisagreement {
  /** The request. */
  request: AuthorizationRequest;
  /** The evaluator's decision. */
  ours: ShadowOutcome;
  /** cedar-wasm's. */
  theirs: ShadowOutcome;
  /** The policy-set version both decided on. */
  version: number;
}

/** Counters of {@linkcode PolicyEngine.stats}. */
export interface PolicyEngineStats {
  /** Who decides the set in force: `typescript`, or `cedar-wasm` (configured, or a fallback). */
  evaluator: "typescript" | "cedar-wasm";
  /** Why the set in force falls back to cedar-wasm when the TypeScript evaluator was asked for. */
  fallback?: string;
  /** Policy sets (loads) that fell back to cedar-wasm in this engine's life. */
  fallbackSets: number;
  /** Shadow verification: checked, disagreements, skipped. */
  shadow: Readonly<ShadowStats>;
}

interface ParsedSource {
  name: string;
  text: string;
  /** UTF-8 size, for the bounds of a whole set. */
  bytes: number;
  /** Offset of each policy in the source text, for error positions. */
  offsets: number[];
  policies: PolicyInfo[];
  /** Per policy id: the principal it is scoped to (`Plugin::x`), or `*`. */
  scopes: Map<string, string>;
  /** `<scope> <host id>` of every Host a permit names, scope as in `scopes`. */
  namedHosts: string[];
  /** Each policy in Cedar's JSON policy format, parallel to `policies`. */
  json: ParsedPolicyJson[];
  /** Set when the TypeScript parser refused what cedar-wasm accepts: the set falls back to cedar-wasm. */
  fallback?: string;
  /** Hex SHA-256 of `text`, for the set's content hash; computed once per text. */
  hash?: string;
  /** Its policies compiled by the evaluator, on first use; kept while the source is unchanged. */
  compiled?: CompiledPolicyEntry[];
}

class State {
  readonly version: number;
  /** `sha256:<hex>` of the sources: see {@linkcode policySetHash}. */
  readonly hash: string;
  readonly sources: readonly PolicySource[];
  readonly policies: ReadonlyMap<string, PolicyInfo>;
  readonly global: Record<string, string> = {};
  readonly slices = new Map<string, Record<string, string>>();
  /** Slices prepared in cedar-wasm, with whether they read principal attributes. */
  readonly prepared = new Map<string, { principalAttrs: boolean }>();
  readonly cache: DecisionCache<Readonly<Decision>>;
  readonly namedHosts: ReadonlySet<string>;
  /** The cedar-wasm generation `prepared` belongs to: a fresh instance holds none of them. */
  generation: number;
  /** The set compiled by the TypeScript evaluator; undefined when cedar-wasm decides. */
  readonly compiled: CompiledPolicySet | undefined;
  /** Why cedar-wasm decides although the evaluator was asked for. */
  readonly fallback: string | undefined;

  constructor(
    version: number,
    sources: readonly PolicySource[],
    parsed: ParsedSource[],
    generation: number,
    evaluator: "typescript" | "cedar-wasm",
    compiler: PolicyCompiler,
    cacheSize: number,
  ) {
    this.version = version;
    this.hash = setHash(parsed);
    this.cache = new DecisionCache(cacheSize);
    this.generation = generation;
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
    let compiled: CompiledPolicySet | undefined;
    let fallback = evaluator === "typescript" ? parsed.find((source) => source.fallback)?.fallback : undefined;
    if (evaluator === "typescript" && fallback === undefined) {
      try {
        // Only sources new to this engine are compiled; the set is linked from every source's policies.
        compiled = compiler.link(
          parsed.flatMap((source) =>
            source.compiled ??= source.policies.map((policy, i) =>
              compiler.compile(policy.id, source.json[i] as unknown as cedar.PolicyJson)
            )
          ),
        );
      } catch (error) {
        fallback = `the evaluator refused the set: ${describe(error)}`;
      }
    }
    this.compiled = compiled;
    this.fallback = fallback;
  }

  /**
   * Keeps the slices of `previous` that are unchanged (same unscoped policies,
   * same own policies): their preparsed sets in cedar-wasm still hold exactly
   * this content, so a reload that touches one plugin's grants does not make
   * every other plugin preparse again.
   */
  inherit(previous: State): void {
    if (previous.generation !== this.generation) return;
    if (signature(previous.global) !== signature(this.global)) return;
    for (const [key, slice] of previous.prepared) {
      const before = key === "*" ? {} : previous.slices.get(key) ?? {};
      const after = key === "*" ? {} : this.slices.get(key);
      if (after !== undefined && signature(before) === signature(after)) this.prepared.set(key, slice);
    }
  }
}

/**
 * The content hash of a set of policy sources: `sha256:` and the hex SHA-256
 * of one line per source, sorted by name (UTF-16 code units): the name as a
 * JSON string, a space, the hex SHA-256 of its text, a newline. Whether a
 * source is `trusted` does not count: it changes no decision.
 *
 * @param sources The set's sources.
 * @returns `sha256:<64 hex digits>`.
 *
 * @example Same sources, same hash, in any order
 * ```ts
 * import { policySetHash } from "./policy_engine.ts";
 * const a = { name: "a.cedar", text: "permit (principal, action, resource);" };
 * const b = { name: "b.cedar", text: "" };
 * policySetHash([a, b]) === policySetHash([b, a]); // true
 * ```
 */
export function policySetHash(sources: readonly Pick<PolicySource, "name" | "text">[]): string {
  return setHash(sources.map((source) => ({ name: source.name, text: source.text })));
}

function setHash(sources: { name: string; text: string; hash?: string }[]): string {
  const lines = sources.map((source) => `${JSON.stringify(source.name)} ${source.hash ??= textHash(source.text)}\n`);
  return `sha256:${textHash(lines.sort(byCodeUnits).join(""))}`;
}

function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function signature(policies: Record<string, string>): string {
  return Object.entries(policies).map(([id, text]) => `${id}\u0000${text}`).sort().join("\u0001");
}

let engines = 0;

/**
 * The TypeScript parser's nesting bound: past the sum of the scan's bounds
 * (`_bounds.ts`), so that only the scan decides what is too deep.
 */
const PARSER_DEPTH = 512;
/** A policy the liveness probe parses: a corrupt instance traps on it or answers wrongly. */
const PROBE = "permit (principal, action, resource);";

/**
 * Decides requests with Cedar. Policies are validated strictly against the
 * schema before use; an invalid set is refused whole and the running one stays
 * in force. Text is bounded before cedar-wasm sees it (size, policies, and the
 * nesting of every construct), and so are requests. A failure inside
 * cedar-wasm never poisons the engine: the instance is replaced and the set in
 * force prepared in the fresh one; meanwhile uncached decisions deny, saying
 * so in {@linkcode Decision.unavailable}, and {@linkcode PolicyEngine.health}
 * reports not ready. Decisions go through per-principal policy slices (only the
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
  /** The schema in Cedar's JSON form, as validation takes it. */
  #schemaJson: unknown;
  /** The schema indexed for the type rules trusted sources are checked by. */
  #grantTypes: GrantTypes | undefined;
  readonly #cacheSize: number;
  readonly #prefix = `keycard-${++engines}`;
  readonly #parsed = new Map<string, ParsedSource>();
  readonly #runtime: CedarRuntime;
  readonly #evaluator: "typescript" | "cedar-wasm";
  readonly #shadow: ShadowVerifier;
  readonly #onShadow: ((event: ShadowDisagreement) => void) | undefined;
  readonly #compiler = new PolicyCompiler();
  #validated: ValidationCache | undefined;
  #fallbackSets = 0;
  #state: State;
  /** The set in force being prepared in a fresh cedar-wasm instance. */
  #recovery: Promise<void> | undefined;

  private constructor(options: PolicyEngineOptions, runtime: CedarRuntime) {
    this.#cacheSize = options.cacheSize ?? 50_000;
    this.#runtime = runtime;
    this.#evaluator = options.evaluator ?? "typescript";
    if (this.#evaluator !== "typescript" && this.#evaluator !== "cedar-wasm") {
      throw new RangeError(`evaluator must be "typescript" or "cedar-wasm", got ${JSON.stringify(this.#evaluator)}`);
    }
    this.#shadow = new ShadowVerifier(options.shadowSample ?? 0);
    this.#onShadow = options.onShadowDisagreement;
    this.#state = new State(0, [], [], runtime.generation, this.#evaluator, this.#compiler, this.#cacheSize);
  }

  /**
   * Creates an engine and loads its first policy set.
   * @param options Schema, sources and cache size.
   * @returns The engine.
   * @throws {PolicyValidationError} When the schema or a policy is invalid.
   */
  static async create(options: PolicyEngineOptions): Promise<PolicyEngine> {
    const runtime = await CedarRuntime.shared();
    await runtime.recover();
    const bounds = scanCedarText(options.schema);
    if (bounds.violation) {
      const { line, column, message } = bounds.violation;
      throw new PolicyValidationError([{ source: "schema", line, column, message }]);
    }
    const engine = new PolicyEngine(options, runtime);
    engine.#validated = await ValidationCache.open(options.validationCache, options.schema, POLICY_LIMITS);
    // Validation gets the schema in Cedar's JSON form, converted once: cedar-wasm parses JSON in half the
    // time of schema text, and every validation parses the schema again (6 of 11 ms for one changed source).
    const schemaJson = engine.#cedar("schema", (cedar) => cedar.schemaToJson(options.schema));
    if (schemaJson.type !== "success") {
      throw new PolicyValidationError(
        schemaJson.errors.map((e) => ({ source: "schema", ...locate(options.schema, e), message: e.message })),
      );
    }
    engine.#schemaJson = schemaJson.json;
    engine.load(options.sources ?? []);
    return engine;
  }

  /**
   * Whether the engine can decide now. Probes cedar-wasm (a corrupt instance
   * traps or answers wrongly) and, when it is dead, starts its replacement.
   *
   * @returns Ready, or not with the reason.
   */
  health(): PolicyEngineHealth {
    const runtime = this.#runtime;
    if (runtime.dead === undefined && this.#recovery === undefined) {
      try {
        const probe = runtime.call((cedar) => cedar.policySetTextToParts(PROBE));
        if (probe.type !== "success" || probe.policies.length !== 1) {
          runtime.kill(`cedar-wasm answered a probe wrongly: ${JSON.stringify(probe).slice(0, 200)}`);
        }
      } catch {
        // call() marked the instance dead.
      }
    }
    if (runtime.dead === undefined && this.#recovery === undefined) {
      this.#current(this.#state);
      return { ready: true, restarts: runtime.restarts, deciding: true };
    }
    this.#recover();
    const deciding = this.#state.compiled !== undefined;
    return { ready: false, reason: this.#reason(), restarts: runtime.restarts, deciding };
  }

  /**
   * Resolves once the engine can decide again (at once when it can).
   *
   * @returns When ready.
   * @throws {PolicyEngineUnavailableError} When a fresh cedar-wasm instance could not be made.
   */
  async whenReady(): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      if (this.health().ready) return;
      await (this.#recovery ?? this.#runtime.recover());
    }
    const health = this.health();
    if (!health.ready) throw new PolicyEngineUnavailableError(health.reason ?? "unknown");
  }

  #reason(): string {
    const dead = this.#runtime.dead;
    return dead === undefined
      ? "the policy set is being prepared in a fresh cedar-wasm instance"
      : `cedar-wasm failed (${dead}); a fresh instance is being made`;
  }

  /** Replaces a dead instance, then prepares the set in force (the last good one) in the fresh one. */
  #recover(): void {
    this.#recovery ??= this.#runtime.recover().then(() => {
      if (this.#runtime.dead !== undefined) return;
      const state = this.#state;
      const keys = ["*", ...state.prepared.keys()];
      this.#current(state);
      for (const key of new Set(keys)) this.#prepareSlice(state, key, this.#prefix);
    }).catch(() => {
      // The instance died again: the next caller starts another replacement.
    }).finally(() => this.#recovery = undefined);
  }

  /** Forgets preparsed sets of an older cedar-wasm generation. */
  #current(state: State): void {
    if (state.generation === this.#runtime.generation) return;
    state.prepared.clear();
    state.generation = this.#runtime.generation;
  }

  /**
   * Runs a cedar-wasm call for `source` while loading. A throw (the instance
   * died on this text) refuses the text; the instance is replaced.
   */
  #cedar<T>(source: string, fn: (cedar: Cedar) => T): T {
    if (this.#runtime.dead !== undefined) {
      this.#recover();
      throw new PolicyEngineUnavailableError(this.#reason());
    }
    try {
      return this.#runtime.call(fn);
    } catch (error) {
      this.#recover();
      throw new PolicyValidationError([{
        source,
        message: `cedar-wasm failed on this text (${describe(error)}); nothing changed`,
      }], { cause: error });
    }
  }

  /** The version of the set in force; it grows by one on every successful load. */
  get version(): number {
    return this.#state.version;
  }

  /** The content hash of the set in force, `sha256:<hex>` (see {@linkcode policySetHash}). */
  get policySet(): string {
    return this.#state.hash;
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
   * @throws {PolicyEngineUnavailableError} While cedar-wasm is being replaced; the running set stays in force.
   */
  load(sources: readonly PolicySource[]): number {
    const { parsed, fresh, names } = this.#prepare(sources);
    for (const source of fresh) this.#parsed.set(source.name, source);
    // Forget parses of sources that left the set.
    for (const key of this.#parsed.keys()) if (!names.has(key)) this.#parsed.delete(key);
    const state = this.#nextState(sources, parsed);
    state.inherit(this.#state);
    if (state.fallback !== undefined) this.#fallbackSets++;
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
   * @throws {PolicyEngineUnavailableError} While cedar-wasm is being replaced.
   */
  check(sources: readonly PolicySource[], probes: readonly AuthorizationRequest[] = []): Decision[] {
    const { parsed } = this.#prepare(sources);
    // A trial state with its own preparsed sets: the set in force is untouched.
    const trial = this.#nextState(sources, parsed);
    return probes.map((probe) => this.#evaluate(trial, probe, `${this.#prefix}-trial`));
  }

  /** The state a load (or a check's trial) of `sources` would put in force. */
  #nextState(sources: readonly PolicySource[], parsed: ParsedSource[]): State {
    return new State(
      this.#state.version + 1,
      [...sources],
      parsed,
      this.#runtime.generation,
      this.#evaluator,
      this.#compiler,
      this.#cacheSize,
    );
  }

  #prepare(sources: readonly PolicySource[]): { parsed: ParsedSource[]; fresh: ParsedSource[]; names: Set<string> } {
    const problems: PolicyProblem[] = [];
    const parsed: ParsedSource[] = [];
    const fresh: ParsedSource[] = [];
    const names = new Set<string>();
    // Every bound, on every source, before any Cedar code sees any of them. A text that passed before
    // (remembered in the data dir with its policy count) is not scanned again.
    let bytes = 0;
    let count = 0;
    const scans = new Map<string, { bytes: number; policies: number; ends?: number[] }>();
    const hashes = new Map<string, string>();
    for (const source of sources) {
      const known = this.#parsed.get(source.name);
      let scan: { bytes: number; policies: number; ends?: number[]; violation?: BoundViolation };
      if (known && known.text === source.text) {
        scan = { bytes: known.bytes, policies: known.policies.length };
      } else {
        const hash = textHash(source.text);
        hashes.set(source.name, hash);
        const policies = this.#validated?.policies(hash);
        scan = policies === undefined ? scanCedarText(source.text) : { bytes: utf8Length(source.text), policies };
      }
      if (scan.violation) {
        const { line, column, message } = scan.violation;
        problems.push({ source: source.name, line, column, message });
        continue;
      }
      if (bytes + scan.bytes > POLICY_LIMITS.maxSetBytes) {
        problems.push({
          source: source.name,
          ...position(source.text, Math.max(0, POLICY_LIMITS.maxSetBytes - bytes)),
          message: `The policy set grows past ${POLICY_LIMITS.maxSetBytes} bytes here (maxSetBytes)`,
        });
      } else if (count + scan.policies > POLICY_LIMITS.maxPolicies) {
        const ends = scan.ends ?? scanCedarText(source.text).ends;
        problems.push({
          source: source.name,
          ...position(source.text, ends[POLICY_LIMITS.maxPolicies - count] ?? 0),
          message: `The policy set grows past ${POLICY_LIMITS.maxPolicies} policies here (maxPolicies)`,
        });
      }
      scans.set(source.name, scan);
      bytes += scan.bytes;
      count += scan.policies;
    }
    if (problems.length > 0) throw new PolicyValidationError(problems);
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
      const result = this.#parse(source, scans.get(source.name)!);
      if ("problems" in result) problems.push(...result.problems);
      else {
        const hash = hashes.get(source.name);
        if (hash !== undefined) result.hash = hash;
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
    // Texts that passed before against this schema are not validated again (a restart, a reload of other files).
    const trusted = new Set(sources.filter((source) => source.trusted).map((source) => source.name));
    const unvalidated = fresh.filter((source) =>
      !trusted.has(source.name) && !this.#validated?.has(hashes.get(source.name)!)
    );
    // Trusted sources skip cedar-wasm; the evaluator's own type rules check them, in microseconds.
    for (const source of fresh) {
      if (!trusted.has(source.name)) continue;
      const types = this.#grantTypes ??= new GrantTypes(this.#schemaJson);
      source.json.forEach((json, i) => {
        const policy = source.policies[i]!;
        for (const message of types.check(json)) {
          problems.push({ source: source.name, line: policy.line, column: 1, policyId: policy.id, message });
        }
      });
    }
    if (problems.length === 0 && unvalidated.length > 0) problems.push(...this.#validate(unvalidated));
    if (problems.length > 0) throw new PolicyValidationError(problems);
    // Trusted texts (keycard's grants, valid by construction) are remembered too: their scan is skipped next time.
    this.#validated?.add(fresh.map((source) => [hashes.get(source.name)!, source.policies.length] as const));
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
    const principal = principalKey(request.principal);
    if (typeof principal !== "string") return this.#decide(state, "deny", [], [principal.refused], false);
    // A resource built by keycard was checked against the bounds once, and keeps its own decisions.
    const built = checkedResource(request.resource);
    // A cached decision was made on this very version: it stays right while cedar-wasm is replaced.
    // A hit equals a request that passed the bounds, so it needs no bounds walk of its own.
    const hit = state.cache.lookup(principal, request.action, request.resource, request.context, built);
    if (hit) return hit;
    const refused = checkRequestValues(built ? [request.context] : [request.resource, request.context]);
    if (refused !== undefined) return this.#decide(state, "deny", [], [refused], false);
    if (state.compiled !== undefined) {
      const decision = this.#decideCompiled(state, state.compiled, request);
      const handle = this.#remember(state, principal, request, decision, built);
      if (handle !== undefined && prefix === this.#prefix && this.#shadow.sample()) {
        this.#shadowCheck(state, request, handle, decision);
      }
      return decision;
    }
    const decision = this.#cedarDecide(state, request, prefix);
    if (decision.unavailable === undefined) this.#remember(state, principal, request, decision, built);
    return decision;
  }

  /** Decides with cedar-wasm on the state's per-principal slices; fails closed while it cannot. */
  #cedarDecide(state: State, request: AuthorizationRequest, prefix: string): Decision {
    if (this.#runtime.dead !== undefined || this.#recovery !== undefined) {
      this.#recover();
      return this.#unavailable(state, this.#reason());
    }
    try {
      this.#current(state);
      const scope = `${request.principal.uid.type}::${request.principal.uid.id}`;
      const sliceKey = state.slices.has(scope) ? scope : "*";
      const slice = this.#prepareSlice(state, sliceKey, prefix);
      if ("errors" in slice) return this.#decide(state, "deny", [], slice.errors, false);
      const answer = this.#runtime.call((cedar) =>
        cedar.statefulIsAuthorized({
          preparsedPolicySetId: `${prefix}:${sliceKey}`,
          principal: request.principal.uid,
          action: { type: "Action", id: request.action },
          resource: request.resource.uid,
          context: request.context,
          entities: slice.principalAttrs ? [request.principal, request.resource] : [request.resource],
        } as unknown as cedar.StatefulAuthorizationCall)
      );
      // A set prepared in this instance that it no longer knows: its state is gone.
      if (answer.type !== "success" && answer.errors.some((e) => e.message.includes(`${prefix}:${sliceKey}`))) {
        this.#runtime.kill(`cedar-wasm lost a prepared policy set: ${answer.errors[0]?.message}`);
        this.#recover();
        return this.#unavailable(state, this.#reason());
      }
      return this.#fromAnswer(state, answer);
    } catch (error) {
      this.#recover();
      return this.#unavailable(state, `cedar-wasm failed (${describe(error)}); a fresh instance is being made`);
    }
  }

  /** Caches the decision's twin that says it came from the cache (frozen: every hit returns that one object). */
  #remember(
    state: State,
    principal: string,
    request: AuthorizationRequest,
    decision: Decision,
    built: EntitySlot | undefined,
  ): CachedEntry<Readonly<Decision>> | undefined {
    const twin = Object.freeze({ ...decision, cached: true });
    return state.cache.store(principal, request.action, request.resource, request.context, twin, built);
  }

  /** Decides with the TypeScript evaluator: no cedar-wasm on this path. */
  #decideCompiled(state: State, compiled: CompiledPolicySet, request: AuthorizationRequest): Decision {
    try {
      const answer = compiled.isAuthorized({
        principal: request.principal.uid,
        action: { type: "Action", id: request.action },
        resource: request.resource.uid,
        context: request.context as Record<string, cedar.CedarValueJson>,
        entities: requestEntities(request.principal, request.resource),
      });
      const errors = answer.errors.map((id, i) => `${id}: ${answer.errorMessages[i]}`);
      return this.#decide(state, answer.decision, answer.reason, errors, false);
    } catch (error) {
      // A malformed request (cedar-wasm answers "failure" for these): a deny that says why.
      return this.#decide(state, "deny", [], [describe(error)], false);
    }
  }

  /** Queues a sampled decision for cedar-wasm to decide again, off the hot path. */
  #shadowCheck(
    state: State,
    request: AuthorizationRequest,
    key: CachedEntry<Readonly<Decision>>,
    decision: Decision,
  ): void {
    const outcome = (d: Decision): ShadowOutcome => ({
      decision: d.decision,
      policies: d.policies,
      erroring: d.errors.map((e) => e.slice(0, e.indexOf(": "))).sort(),
    });
    const ours = outcome(decision);
    this.#shadow.enqueue({
      ours,
      theirs: () => {
        // Slices in cedar-wasm hold the set in force: a check queued before a reload is skipped.
        if (state !== this.#state) return undefined;
        const theirs = this.#cedarDecide(state, request, this.#prefix);
        return theirs.unavailable === undefined ? outcome(theirs) : undefined;
      },
      disagree: (theirs) => {
        // The safer decision wins for this entry; a later version starts a fresh cache.
        if (theirs.decision === "deny") {
          state.cache.replace(
            key,
            Object.freeze({
              ...this.#decide(state, "deny", [...theirs.policies], decision.errors, true),
              reason: `denied: cedar-wasm disagreed with the evaluator (${decision.reason})`,
            }),
          );
        }
        this.#onShadow?.({ request, ours, theirs, version: state.version });
      },
    });
  }

  /** Runs queued shadow checks now (for tests and shutdown). */
  flushShadow(): void {
    this.#shadow.flush();
  }

  /** Stops shadow verification: queued checks are dropped. */
  close(): void {
    this.#shadow.close();
  }

  /** Counters: who decides, fallbacks, shadow verification. */
  stats(): PolicyEngineStats {
    const state = this.#state;
    return {
      evaluator: state.compiled !== undefined ? "typescript" : "cedar-wasm",
      ...(state.fallback === undefined ? {} : { fallback: state.fallback }),
      fallbackSets: this.#fallbackSets,
      shadow: { ...this.#shadow.stats },
    };
  }

  /** The slice's preparsed set in cedar-wasm, preparsed on first use in each instance. */
  #prepareSlice(state: State, sliceKey: string, prefix: string): { principalAttrs: boolean } | { errors: string[] } {
    const known = state.prepared.get(sliceKey);
    if (known) return known;
    const policies = sliceKey === "*" ? state.global : { ...state.global, ...state.slices.get(sliceKey) };
    const prepared = this.#runtime.call((cedar) =>
      cedar.preparsePolicySet(`${prefix}:${sliceKey}`, { staticPolicies: policies })
    );
    if (prepared.type !== "success") return { errors: prepared.errors.map((e) => e.message) };
    // Each entity costs cedar-wasm 15-50 µs: pass the principal only to
    // slices whose policies read its attributes.
    const slice = { principalAttrs: Object.values(policies).some((text) => text.includes("principal.")) };
    state.prepared.set(sliceKey, slice);
    return slice;
  }

  /** Fail closed: a deny that says the engine could not decide; never cached. */
  #unavailable(state: State, reason: string): Decision {
    return {
      ...this.#decide(state, "deny", [], [reason], false),
      reason: `not decided: ${reason}`,
      unavailable: reason,
    };
  }

  /**
   * Decides a request with Cedar's plain `isAuthorized` over the whole set:
   * no slices, no cache. The reference the fast path is tested against.
   */
  authorizeUncached(request: AuthorizationRequest): Decision {
    const state = this.#state;
    const refused = checkRequestValues([request.principal, request.resource, request.context]);
    if (refused !== undefined) return this.#decide(state, "deny", [], [refused], false);
    if (this.#runtime.dead !== undefined) {
      this.#recover();
      return this.#unavailable(state, this.#reason());
    }
    const staticPolicies: Record<string, string> = {};
    for (const policy of state.policies.values()) staticPolicies[policy.id] = policy.text;
    try {
      const answer = this.#runtime.call((cedar) =>
        cedar.isAuthorized({
          principal: request.principal.uid,
          action: { type: "Action", id: request.action },
          resource: request.resource.uid,
          context: request.context,
          policies: { staticPolicies },
          entities: [request.principal, request.resource],
        } as unknown as cedar.AuthorizationCall)
      );
      return this.#fromAnswer(state, answer);
    } catch (error) {
      this.#recover();
      return this.#unavailable(state, `cedar-wasm failed (${describe(error)}); a fresh instance is being made`);
    }
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
    const deciding = sorted.map((id): DecidingPolicy => {
      const policy = state.policies.get(id);
      return { id, source: policy?.source ?? "", line: policy?.line ?? 0 };
    });
    return {
      decision,
      policies: sorted,
      errors,
      reason,
      version: state.version,
      policySet: state.hash,
      deciding,
      cached,
    };
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
    const validation = this.#cedar("(policy set)", (cedar) =>
      cedar.validate({
        schema: this.#schemaJson,
        policies: { staticPolicies },
        validationSettings: { mode: "strict" },
      } as unknown as cedar.ValidationCall));
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

  /**
   * Parses a source with keycard's TypeScript parser. Text it refuses goes to
   * cedar-wasm: its errors are reported, as before, or, when it accepts the
   * text, the set falls back to cedar-wasm for decisions (counted).
   */
  #parse(source: PolicySource, scan: { bytes: number }): ParsedSource | { problems: PolicyProblem[] } {
    let parsed: ReturnType<typeof parsePolicies>;
    try {
      // The scan bounds every construct first; the parser's own depth bound is past their sum.
      parsed = parsePolicies(source.text, { maxDepth: PARSER_DEPTH, maxBytes: POLICY_LIMITS.maxSourceBytes });
    } catch (error) {
      if (!(error instanceof CedarSyntaxError)) throw error;
      return this.#parseWithCedar(source, scan, `the TypeScript parser refused the text: ${error.message}`);
    }
    const template = parsed.find((policy) => policy.template);
    if (template) {
      return {
        problems: [{
          source: source.name,
          line: template.line,
          column: template.column,
          message: "Templates (?principal, ?resource) are not supported: write the entity into the policy",
        }],
      };
    }
    const policies: PolicyInfo[] = [];
    const scopes = new Map<string, string>();
    const namedHosts: string[] = [];
    const offsets: number[] = [];
    const json: ParsedPolicyJson[] = [];
    for (const [index, policy] of parsed.entries()) {
      const id = policy.json.annotations?.id ?? `${source.name}#${index + 1}`;
      policies.push({
        id,
        effect: policy.json.effect,
        source: source.name,
        line: policy.line,
        text: source.text.slice(policy.start, policy.end),
      });
      offsets.push(policy.start);
      json.push(policy.json);
      this.#scope(id, policy.json, scopes, namedHosts);
    }
    return { name: source.name, text: source.text, bytes: scan.bytes, policies, scopes, namedHosts, offsets, json };
  }

  /** Files a policy under its principal scope and collects the Hosts a permit names. */
  #scope(id: string, est: ParsedPolicyJson, scopes: Map<string, string>, namedHosts: string[]): void {
    const principal = est.principal as { op: string; entity?: { type: string; id: string } };
    const scope = principal.op === "==" && principal.entity ? `${principal.entity.type}::${principal.entity.id}` : "*";
    scopes.set(id, scope);
    if (est.effect === "permit") {
      const hosts: string[] = [];
      collectHosts(est, hosts);
      for (const host of hosts) namedHosts.push(`${scope} ${host}`);
    }
  }

  /** cedar-wasm's parse: its errors, or the source marked to fall back to it. */
  #parseWithCedar(
    source: PolicySource,
    scan: { bytes: number },
    why: string,
  ): ParsedSource | { problems: PolicyProblem[] } {
    const fail = (errors: cedar.DetailedError[], base = 0, policyId?: string) => ({
      problems: errors.map((e) => ({
        source: source.name,
        ...locate(source.text, e, base),
        ...(policyId === undefined ? {} : { policyId }),
        message: e.message,
      })),
    });
    const parts = this.#cedar(source.name, (cedar) => cedar.policySetTextToParts(source.text));
    if (parts.type !== "success") return fail(parts.errors);
    const policies: PolicyInfo[] = [];
    const scopes = new Map<string, string>();
    const namedHosts: string[] = [];
    const offsets: number[] = [];
    const json: ParsedPolicyJson[] = [];
    let cursor = 0;
    for (const [index, text] of parts.policies.entries()) {
      const offset = Math.max(0, source.text.indexOf(text, cursor));
      cursor = offset + text.length;
      const answer = this.#cedar(source.name, (cedar) => cedar.policyToJson(text));
      if (answer.type !== "success") return fail(answer.errors, offset);
      const est = answer.json as unknown as ParsedPolicyJson;
      const id = (est.annotations?.id as string | undefined) ?? `${source.name}#${index + 1}`;
      policies.push({ id, effect: est.effect, source: source.name, line: lineOf(source.text, offset), text });
      offsets.push(offset);
      json.push(est);
      this.#scope(id, est, scopes, namedHosts);
    }
    return {
      name: source.name,
      text: source.text,
      bytes: scan.bytes,
      policies,
      scopes,
      namedHosts,
      offsets,
      json,
      fallback: `${source.name}: ${why}`,
    };
  }
}

/** A built entity's request-bounds check, made once: "" when within them, else why not. */
function refusal(slot: EntitySlot, entity: Entity): string {
  return slot.refused ??= checkRequestValues([entity]) ?? "";
}

/** The principal's part of the cache key, after the request bounds; kept for a frozen principal. */
function principalKey(entity: Entity): string | { refused: string } {
  const slot = BuiltEntity.slotOf(entity);
  if (slot === undefined) {
    const refused = checkRequestValues([entity]);
    return refused === undefined ? JSON.stringify(entity) : { refused };
  }
  const refused = refusal(slot, entity);
  return refused === "" ? slot.json ??= JSON.stringify(entity) : { refused };
}

/** The slot of a resource built (frozen) by resources.ts that is within the request bounds. */
function checkedResource(entity: Entity): EntitySlot | undefined {
  const slot = BuiltEntity.slotOf(entity);
  return slot !== undefined && refusal(slot, entity) === "" ? slot : undefined;
}

/** The request's entities for the evaluator: two entities built by resources.ts are joined from their parsed selves. */
function requestEntities(principal: Entity, resource: Entity): EntityStore {
  const p = BuiltEntity.slotOf(principal);
  const r = p === undefined ? undefined : BuiltEntity.slotOf(resource);
  if (p !== undefined && r !== undefined) {
    const joined = EntityStore.join(
      (p.parsed ??= EntityStore.fromJson([principal as unknown as cedar.EntityJson])) as EntityStore,
      (r.parsed ??= EntityStore.fromJson([resource as unknown as cedar.EntityJson])) as EntityStore,
    );
    if (joined !== undefined) return joined;
  }
  return EntityStore.fromJson([principal, resource] as unknown as cedar.EntityJson[]);
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
