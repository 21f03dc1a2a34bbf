// One DRT run: seeded policy sets, each asked a batch of seeded requests on both implementations, then seeded parse
// cases (generated texts, most of them mutated). Shared by the gate's test and the long-running `deno task drt`.
import type * as CedarTypes from "@cedar-policy/cedar-wasm/web";
import { printPolicies } from "./_ast.ts";
import {
  type Case,
  decideBoth,
  describeAnswer,
  disagreement,
  parseBoth,
  parseDisagreement,
  saveCase,
  shrinkRequest,
  shrinkText,
  wasmErrorKinds,
} from "./_compare.ts";
import { cedar } from "./_cedar.ts";
import { Coverage } from "./_coverage.ts";
import { generatePolicySet, generateRequest, type PolicySetCase, schemaJson } from "./_generate.ts";
import { bendEntities, mutateText } from "./_mutate.ts";
import { derive, Random } from "./_random.ts";
import { type Answer, prepare, type Prepared } from "./_subject.ts";

/** Options of {@linkcode runDrt}. */
export interface DrtOptions {
  /** The run's seed: the same seed generates the same cases. */
  seed: number;
  /** How many requests in all. */
  requests: number;
  /** Requests per policy set. @default {50} */
  requestsPerSet?: number;
  /** How many parse-agreement cases. @default {requests / 10} */
  parseCases?: number;
  /** Write each shrunk disagreement to tests/drt/regressions/. @default {false} */
  save?: boolean;
  /** Shrink at most this many disagreements (the rest are reported unshrunk). @default {10} */
  shrinkLimit?: number;
  /**
   * Every this many policy sets, check the generator against cedar-wasm's validator: the schema parses, the store
   * conforms to it, and how many policies are well-typed (strict mode). 0 never.
   * @default {0}
   */
  validateEvery?: number;
  /** Signatures of the saved regression cases: a disagreement of one of these is counted and reported, not saved. */
  knownSignatures?: ReadonlySet<string>;
  /** Called now and then with the stats so far. */
  onProgress?: (stats: DrtStats) => void;
  /** Called for each disagreement, after shrinking (and saving). */
  onFinding?: (finding: Finding) => void | Promise<void>;
}

/** Disagreements of one signature kept (shrunk, reported, saved); the rest are counted. */
const KEEP_PER_SIGNATURE = 2;

/** One disagreement. */
export interface Finding {
  class: string;
  /** The class, the bend of the entities and the messages without their values: one per kind of bug, roughly. */
  signature: string;
  label: string;
  case: Case;
  /** Where it was saved, when it was. */
  path?: string;
}

/** What a run did. */
export interface DrtStats {
  seed: number;
  sets: number;
  policies: number;
  requests: number;
  allow: number;
  deny: number;
  /** Requests where at least one policy raised an error (on cedar-wasm's side). */
  withErrors: number;
  /** Requests cedar-wasm refused (bent entities or context). */
  refused: number;
  parseCases: number;
  /** Parse cases cedar-wasm refused. */
  parseRefused: number;
  /** Every disagreement seen, kept or only counted. */
  disagreements: number;
  /** Disagreements by signature. */
  signatures: Map<string, number>;
  /** The disagreements kept: the first few of each signature. */
  findings: Finding[];
  coverage: Coverage;
  ms: number;
  /** What the validator said of a sample of sets (see {@linkcode DrtOptions.validateEvery}). */
  validity: { sets: number; schemas: number; stores: number; policies: number; wellTyped: number };
}

function pct(n: number, of: number): string {
  return of === 0 ? "0%" : `${(100 * n / of).toFixed(1)}%`;
}

/** The one-line summary the gate prints. */
export function summaryLine(s: DrtStats): string {
  const decided = s.allow + s.deny;
  return `drt: seed ${s.seed}, ${s.sets} policy sets (${s.policies} policies), ${s.requests} requests ` +
    `(allow ${pct(s.allow, decided)}, deny ${pct(s.deny, decided)}, with errors ${pct(s.withErrors, decided)}, ` +
    `refused ${pct(s.refused, s.requests)}), ${s.parseCases} parse cases (${
      pct(s.parseRefused, s.parseCases)
    } refused), ` +
    `${s.disagreements} disagreements (${s.signatures.size} kinds), ${(s.ms / 1000).toFixed(1)} s; ` +
    s.coverage.summary() + validityLine(s);
}

function validityLine(s: DrtStats): string {
  const v = s.validity;
  if (v.sets === 0) return "";
  return `; generator vs cedar-wasm's validator on ${v.sets} sets: schemas ${pct(v.schemas, v.sets)} valid, ` +
    `stores ${pct(v.stores, v.sets)} conform, policies ${pct(v.wellTyped, v.policies)} well-typed`;
}

/** Every finding, for a failure message. */
export function describeFindings(findings: readonly Finding[]): string {
  return findings.map((f) =>
    `${f.label} [${f.class}]${f.path ? ` saved ${f.path}` : ""}\n${JSON.stringify(f.case, null, 2).slice(0, 4000)}`
  ).join("\n\n");
}

function tally(stats: DrtStats, wasm: Answer): void {
  if (wasm.kind === "refused") {
    stats.refused++;
    if (wasm.stage === "request") stats.coverage.hit("refused:request");
    return;
  }
  if (wasm.decision === "allow") stats.allow++;
  else stats.deny++;
  stats.coverage.hit(wasm.decision);
  if (wasm.errors.length > 0) stats.withErrors++;
  for (const kind of wasmErrorKinds(wasm)) stats.coverage.hit(kind);
}

/**
 * Runs the DRT.
 * @param options Seed, budget, saving.
 * @returns The stats, with every disagreement.
 */
export async function runDrt(options: DrtOptions): Promise<DrtStats> {
  const perSet = options.requestsPerSet ?? 50;
  const parseCases = options.parseCases ?? Math.ceil(options.requests / 10);
  const shrinkLimit = options.shrinkLimit ?? 10;
  const stats: DrtStats = {
    seed: options.seed,
    sets: 0,
    policies: 0,
    requests: 0,
    allow: 0,
    deny: 0,
    withErrors: 0,
    refused: 0,
    parseCases: 0,
    parseRefused: 0,
    disagreements: 0,
    signatures: new Map(),
    findings: [],
    coverage: new Coverage(),
    ms: 0,
    validity: { sets: 0, schemas: 0, stores: 0, policies: 0, wellTyped: 0 },
  };
  const started = performance.now();
  let shrunk = 0;
  // A signature per kind of disagreement (class, bend, the messages without their values): the first few of each
  // are shrunk and kept, the rest only counted, so that one bug does not fill the report.
  const perSignature = new Map<string, number>();
  const record = async (cls: string, label: string, signature: string, make: (shrink: boolean) => Case) => {
    const n = (perSignature.get(signature) ?? 0) + 1;
    perSignature.set(signature, n);
    stats.disagreements++;
    if (n > KEEP_PER_SIGNATURE) return;
    const doShrink = shrunk < shrinkLimit;
    if (doShrink) shrunk++;
    const c = { ...make(doShrink), signature };
    const finding: Finding = { class: cls, label, signature, case: c };
    if (options.save && !options.knownSignatures?.has(signature)) finding.path = await saveCase(c);
    stats.findings.push(finding);
    await options.onFinding?.(finding);
  };
  stats.signatures = perSignature;

  let lastProgress = started;
  for (let set = 0; stats.requests < options.requests; set++) {
    const rng = new Random(derive(options.seed, set));
    // One set in five is chaotic: a fifth of its nodes of the wrong type, for error paths and short-circuits.
    const pc: PolicySetCase = generatePolicySet(rng, { illTyped: set % 5 === 4 ? 0.2 : 0.03, depth: 4 });
    stats.sets++;
    stats.policies += pc.policies.length;
    const label = `seed ${options.seed} set ${set}`;

    // The set's own text: parse agreement, and coverage from cedar-wasm's EST.
    const parsed = parseBoth(pc.text);
    stats.parseCases++;
    if (parsed.wasm.kind === "parsed") { for (const est of parsed.wasm.ests) stats.coverage.policy(est); }
    else stats.parseRefused++;
    const parseClass = parsed.crash !== undefined ? "parse:crash" : parseDisagreement(parsed.ts, parsed.wasm);
    if (parseClass !== undefined) {
      await record(
        parseClass,
        label,
        parseClass,
        (shrink) => parseCase(parseClass, label, shrink ? shrinkText(pc.text, parseClass) : pc.text),
      );
    }

    if (options.validateEvery && set % options.validateEvery === 0) checkValidity(stats, pc);

    let prepared: Prepared | undefined;
    try {
      prepared = prepare(pc.text);
    } catch {
      // A crash of keycard's compiler: each request below reports it through decideBoth.
    }
    for (let r = 0; r < perSet && stats.requests < options.requests; r++) {
      let request = generateRequest(rng, pc.world, pc.policies);
      let entities = pc.world.entities;
      let bend = "";
      if (rng.chance(0.04)) {
        const bent = bendEntities(rng, entities, request);
        entities = bent.entities;
        request = bent.request;
        stats.coverage.hit(`bend:${bent.bend}`);
        bend = bent.bend;
      }
      stats.requests++;
      const input = { request, entities };
      let ts: Answer;
      let wasm: Answer;
      let cls: string | undefined;
      if (prepared !== undefined) {
        wasm = prepared.cedarWasm(input);
        try {
          ts = prepared.typescript(input);
          cls = disagreement(ts, wasm);
        } catch (error) {
          ts = {
            kind: "refused",
            stage: "request",
            message: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
          };
          cls = "crash";
        }
      } else {
        ({ ts, wasm, class: cls } = decideBoth(pc.text, input));
      }
      tally(stats, wasm);
      if (cls !== undefined) {
        const at = `${label} request ${r}`;
        const reqClass = cls;
        // A refusal is told by the refusing side's message alone; a different decision by both sides' errors.
        const refusal = reqClass.startsWith("refusal");
        const signature = [
          reqClass,
          bend,
          refusal && ts.kind !== "refused" ? "" : messageShape(ts),
          refusal && wasm.kind !== "refused" ? "" : messageShape(wasm),
        ].join(" | ");
        await record(reqClass, at, signature, (shrink) => {
          const shape = shrink
            ? shrinkRequest({ policies: pc.policies, style: pc.style, entities: [...entities], request }, reqClass)
            : { policies: pc.policies, style: pc.style, entities: [...entities], request };
          const text = printPolicies(shape.policies, shape.style);
          const again = decideBoth(text, { request: shape.request, entities: shape.entities });
          return {
            kind: "request",
            class: reqClass,
            found: at,
            policies: text,
            entities: shape.entities,
            request: shape.request,
            typescript: again.ts,
            cedarWasm: again.wasm,
          };
        });
      }
    }
    if (options.onProgress && performance.now() - lastProgress > 5000) {
      lastProgress = performance.now();
      stats.ms = lastProgress - started;
      options.onProgress(stats);
    }
  }

  // Parse agreement on mutated texts (and a few unmutated ones).
  for (let k = 0; k < parseCases; k++) {
    const rng = new Random(derive(options.seed ^ 0x5eed, k));
    const base = generatePolicySet(rng, { illTyped: 0.05, depth: rng.range(1, 4) }).text;
    let text = rng.chance(0.85) ? mutateText(rng, base) : base;
    if (!text.isWellFormed()) text = text.toWellFormed(); // lone surrogates reach cedar-wasm as U+FFFD: not a Cedar question
    const r = parseBoth(text);
    stats.parseCases++;
    if (r.wasm.kind === "refused") stats.parseRefused++;
    const cls = r.crash !== undefined ? "parse:crash" : parseDisagreement(r.ts, r.wasm);
    if (cls !== undefined) {
      const label = `seed ${options.seed} parse case ${k}`;
      await record(cls, label, cls, (shrink) => parseCase(cls, label, shrink ? shrinkText(text, cls) : text));
    }
  }
  stats.ms = performance.now() - started;
  return stats;
}

function checkValidity(stats: DrtStats, pc: PolicySetCase): void {
  const v = stats.validity;
  const schema = schemaJson(pc.world.schema) as unknown as CedarTypes.SchemaJson<string>;
  v.sets++;
  if (cedar.checkParseSchema(schema).type !== "success") return;
  v.schemas++;
  const entities = pc.world.entities as unknown as CedarTypes.EntityJson[];
  if (cedar.checkParseEntities({ entities, schema }).type === "success") v.stores++;
  const answer = cedar.validate({
    schema,
    policies: { staticPolicies: pc.text },
    validationSettings: { mode: "strict" },
  });
  if (answer.type !== "success") return;
  const bad = new Set(answer.validationErrors.map((e) => e.policyId));
  v.policies += pc.policies.length;
  v.wellTyped += pc.policies.length - bad.size;
}

/** An answer's messages with their values taken out, so that one bug's disagreements share a signature. */
function messageShape(a: Answer): string {
  const text = a.kind === "refused" ? a.message : a.messages.join("; ");
  return text.replace(/policy\d+/g, "P").replace(/`[^`]*`|"(?:[^"\\]|\\.)*"|\d+/g, "_")
    .replace(/(?:[A-Za-z_]\w*::)+_/g, "E").slice(0, 120);
}

function parseCase(cls: string, found: string, text: string): Case {
  const r = parseBoth(text);
  return {
    kind: "parse",
    class: cls,
    found,
    policies: text,
    typescript: r.crash ?? describeAnswer(r.ts),
    cedarWasm: describeAnswer(r.wasm),
  };
}
