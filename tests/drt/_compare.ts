// Runs one case through both implementations and compares what Cedar defines: the decision, the reason ids and the
// erroring policy ids (as sets), whether the policies parse and to which EST, whether the entities and context are
// accepted. Error messages are not compared (their wording is not part of Cedar's contract). A disagreement is
// shrunk (policies, clauses, sub-expressions, entities, attributes, context fields) and saved as a self-contained
// JSON case in tests/drt/regressions/, which the gate replays from then on.
import { cedar } from "./_cedar.ts";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { type Expr, type Policy, printPolicies, shrinkExpr } from "./_ast.ts";
import type { EntityJson, JsonValue, RequestJson } from "./_generate.ts";
import {
  type Answer,
  type Decide,
  type ParseAnswer,
  parseWithCedarWasm,
  parseWithTypeScript,
  prepare,
} from "./_subject.ts";

/** Where regression cases live. */
export const REGRESSIONS: string = fileURLToPath(new URL("./regressions/", import.meta.url));

/** A saved disagreement: everything needed to replay it. */
export type Case =
  | {
    kind: "request";
    /** What class of disagreement: `decision`, `reason`, `errors`, `refusal:...`, `crash`. */
    class: string;
    /** The class, the bend of the entities and the answers' messages without their values. */
    signature?: string;
    /** Where it was found: seed, set and request. */
    found: string;
    policies: string;
    entities: EntityJson[];
    request: RequestJson;
    typescript: unknown;
    cedarWasm: unknown;
  }
  | {
    kind: "parse";
    class: string;
    signature?: string;
    found: string;
    policies: string;
    typescript: unknown;
    cedarWasm: unknown;
  };

/** Turns bigints into numbers (as cedar-wasm's JSON numbers are) and sorts keys, for comparing ESTs. */
export function canonical(value: unknown): string {
  return JSON.stringify(normalize(value));
}

function normalize(value: unknown): unknown {
  if (typeof value === "bigint") return Number(value);
  if (Array.isArray(value)) return value.map(normalize);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = normalize(v);
    }
    return out;
  }
  return value;
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const x = new Set(a);
  const y = new Set(b);
  return x.size === y.size && [...x].every((i) => y.has(i));
}

/**
 * Whether keycard refused text for passing one of its parser's documented bounds (nesting depth, size), which
 * cedar-wasm does not have (it overflows its stack instead): such text is out of the comparison.
 */
export function beyondBounds(message: string): boolean {
  return /deeper than the limit of \d+ levels|bytes is over the limit of|nested too deeply/.test(message);
}

/**
 * The class of disagreement between two answers, or undefined when they agree.
 * Both refusing agrees whatever the wording; a refusal of the policies must be matched by one of the policies.
 */
export function disagreement(ts: Answer, wasm: Answer): string | undefined {
  if (ts.kind === "refused" || wasm.kind === "refused") {
    if (ts.kind === "refused" && wasm.kind === "refused") return ts.stage === wasm.stage ? undefined : "refusal:stage";
    if (ts.kind === "refused") return beyondBounds(ts.message) ? undefined : `refusal:typescript-${ts.stage}`;
    if (wasm.kind === "refused") return `refusal:cedar-wasm-${wasm.stage}`;
  }
  if (ts.decision !== wasm.decision) return "decision";
  if (!sameSet(ts.reason, wasm.reason)) return "reason";
  if (!sameSet(ts.errors, wasm.errors)) return "errors";
  return undefined;
}

/** The class of disagreement between two parses, or undefined when they agree. */
export function parseDisagreement(ts: ParseAnswer, wasm: ParseAnswer): string | undefined {
  if (ts.kind !== wasm.kind) {
    if (ts.kind === "refused") return beyondBounds(ts.message) ? undefined : "parse:typescript-refuses";
    return "parse:cedar-wasm-refuses";
  }
  if (ts.kind === "refused" || wasm.kind === "refused") return undefined;
  if (ts.ests.length !== wasm.ests.length) return "parse:count";
  for (let i = 0; i < ts.ests.length; i++) {
    if (canonical(ts.ests[i]) !== canonical(wasm.ests[i])) return "parse:est";
  }
  return undefined;
}

/** Parses on both sides; a crash of keycard's parser (anything but `CedarSyntaxError`) is an answer too. */
export function parseBoth(text: string): { ts: ParseAnswer; wasm: ParseAnswer; crash?: string } {
  const wasm = parseWithCedarWasm(text);
  try {
    return { ts: parseWithTypeScript(text), wasm };
  } catch (error) {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return { ts: { kind: "refused", message }, wasm, crash: message };
  }
}

/** Decides on both sides from scratch (as a replay or a shrink step does). */
export function decideBoth(text: string, input: Decide): { ts: Answer; wasm: Answer; class?: string } {
  let prepared;
  try {
    prepared = prepare(text);
  } catch (error) {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return {
      ts: { kind: "refused", stage: "policies", message },
      wasm: { kind: "refused", stage: "policies", message: "" },
      class: "crash",
    };
  }
  const wasm = prepared.cedarWasm(input);
  let ts: Answer;
  try {
    ts = prepared.typescript(input);
  } catch (error) {
    const message = error instanceof Error ? `${error.name}: ${error.message}\n${error.stack ?? ""}` : String(error);
    return { ts: { kind: "refused", stage: "request", message }, wasm, class: "crash" };
  }
  return { ts, wasm, class: disagreement(ts, wasm) };
}

/** Sorts the parts of answers (the messages stay for the reader). */
export function describeAnswer(a: Answer | ParseAnswer): unknown {
  if (a.kind === "parsed") return { kind: "parsed", ests: a.ests.map((e) => JSON.parse(canonical(e))) };
  return a;
}

// ---------------------------------------------------------------- shrinking

const SHRINK_BUDGET = 1500;

/** A request case being shrunk: the policy trees, so that clauses and sub-expressions can go one by one. */
interface RequestShape {
  policies: Policy[];
  style: number;
  entities: EntityJson[];
  request: RequestJson;
}

/**
 * Shrinks a request disagreement while it keeps its class: policies, annotations, scopes, clauses and
 * sub-expressions, then entities, their attributes, parents and tags, then context fields.
 */
export function shrinkRequest(start: RequestShape, cls: string): RequestShape {
  let best = start;
  let budget = SHRINK_BUDGET;
  const holds = (c: RequestShape): boolean => {
    if (budget-- <= 0) return false;
    const r = decideBoth(printPolicies(c.policies, c.style), { request: c.request, entities: c.entities });
    return r.class === cls;
  };
  const tryAll = (candidates: Iterable<RequestShape>): boolean => {
    for (const c of candidates) {
      if (budget <= 0) return false;
      if (holds(c)) {
        best = c;
        return true;
      }
    }
    return false;
  };
  let progress = true;
  while (progress && budget > 0) {
    progress = false;
    // Whole policies.
    progress ||= tryAll(function* () {
      for (let i = 0; i < best.policies.length && best.policies.length > 1; i++) {
        yield { ...best, policies: best.policies.filter((_, j) => j !== i) };
      }
    }());
    // Annotations, scopes, clauses.
    progress ||= tryAll(function* () {
      for (let i = 0; i < best.policies.length; i++) {
        const p = best.policies[i]!;
        const put = (q: Policy) => ({ ...best, policies: best.policies.map((x, j) => j === i ? q : x) });
        if (p.annotations.length > 0) yield put({ ...p, annotations: [] });
        if (p.principal.op !== "all") yield put({ ...p, principal: { op: "all" } });
        if (p.action.op !== "all") yield put({ ...p, action: { op: "all" } });
        if (p.resource.op !== "all") yield put({ ...p, resource: { op: "all" } });
        for (let c = 0; c < p.conditions.length; c++) {
          yield put({ ...p, conditions: p.conditions.filter((_, j) => j !== c) });
        }
      }
    }());
    // Sub-expressions.
    progress ||= tryAll(function* () {
      for (let i = 0; i < best.policies.length; i++) {
        const p = best.policies[i]!;
        for (let c = 0; c < p.conditions.length; c++) {
          const clause = p.conditions[c]!;
          let tried = 0;
          for (const body of shrinkExpr(clause.body) as Generator<Expr>) {
            if (tried++ > 200) break;
            const conditions = p.conditions.map((x, j) => j === c ? { ...x, body } : x);
            yield { ...best, policies: best.policies.map((x, j) => j === i ? { ...p, conditions } : x) };
          }
        }
      }
    }());
    // Entities, then their parts.
    progress ||= tryAll(function* () {
      for (let i = 0; i < best.entities.length; i++) {
        yield { ...best, entities: best.entities.filter((_, j) => j !== i) };
      }
    }());
    progress ||= tryAll(function* () {
      for (let i = 0; i < best.entities.length; i++) {
        const e = best.entities[i]!;
        const put = (x: EntityJson) => ({ ...best, entities: best.entities.map((y, j) => j === i ? x : y) });
        for (const key of Object.keys(e.attrs ?? {})) {
          const attrs = { ...e.attrs };
          delete attrs[key];
          yield put({ ...e, attrs });
        }
        for (let p = 0; p < (e.parents?.length ?? 0); p++) {
          yield put({
            ...e,
            parents: e.parents.filter((_, j) => j !== p),
          });
        }
        if (e.tags !== undefined) yield put({ ...e, tags: undefined });
      }
    }());
    progress ||= tryAll(function* () {
      const ctx = best.request.context;
      if (ctx !== null && typeof ctx === "object" && !Array.isArray(ctx)) {
        for (const key of Object.keys(ctx)) {
          const smaller: Record<string, JsonValue> = { ...ctx };
          delete smaller[key];
          yield { ...best, request: { ...best.request, context: smaller } };
        }
      }
    }());
  }
  // Drop `tags: undefined` left by shrinking, so the saved JSON is clean.
  return { ...best, entities: best.entities.map((e) => JSON.parse(JSON.stringify(e))) };
}

/** Shrinks a parse disagreement's text by deleting chunks (delta debugging) while it keeps its class. */
export function shrinkText(text: string, cls: string): string {
  let best = text;
  let budget = SHRINK_BUDGET;
  const holds = (t: string) => {
    budget--;
    const r = parseBoth(t);
    const c = r.crash !== undefined ? "parse:crash" : parseDisagreement(r.ts, r.wasm);
    return c === cls;
  };
  for (let chunk = Math.max(1, best.length >> 1); chunk >= 1 && budget > 0; chunk >>= 1) {
    for (let at = 0; at < best.length && budget > 0;) {
      const candidate = best.slice(0, at) + best.slice(at + chunk);
      if (candidate !== best && holds(candidate)) best = candidate;
      else at += chunk;
    }
  }
  return best;
}

// ---------------------------------------------------------------- saving and replaying

/** A case's file name: the first 16 hex digits of the SHA-256 of its inputs. */
export function caseName(c: Case): string {
  const inputs = c.kind === "request" ? [c.policies, c.entities, c.request] : [c.policies];
  return createHash("sha256").update(JSON.stringify(inputs)).digest("hex").slice(0, 16);
}

/** Writes a case to tests/drt/regressions/<hash>.json; returns the path. */
export async function saveCase(c: Case, dir: string = REGRESSIONS): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const path = join(dir, `${caseName(c)}.json`);
  await Deno.writeTextFile(path, JSON.stringify(c, null, 2) + "\n");
  return path;
}

/** Every saved case, sorted by file name. */
export async function loadCases(dir: string = REGRESSIONS): Promise<{ name: string; case: Case }[]> {
  const out: { name: string; case: Case }[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isFile && entry.name.endsWith(".json")) {
        out.push({ name: entry.name, case: JSON.parse(await Deno.readTextFile(join(dir, entry.name))) });
      }
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** Replays one saved case; returns the class of disagreement it still shows, if any, and both answers. */
export function replay(c: Case): { class?: string; typescript: unknown; cedarWasm: unknown } {
  if (c.kind === "parse") {
    const r = parseBoth(c.policies);
    const cls = r.crash !== undefined ? "parse:crash" : parseDisagreement(r.ts, r.wasm);
    return { class: cls, typescript: describeAnswer(r.ts), cedarWasm: describeAnswer(r.wasm) };
  }
  const r = decideBoth(c.policies, { request: c.request, entities: c.entities });
  return { class: r.class, typescript: r.ts, cedarWasm: r.wasm };
}

/** Cedar's own answer to a request, for the coverage of outcomes (kept apart from the comparison). */
export function wasmErrorKinds(answer: Answer): string[] {
  if (answer.kind !== "decision") return [];
  return answer.messages.map((m) => {
    if (/overflow/.test(m)) return "error:overflow";
    if (/does not have the tag/.test(m)) return "error:missing-tag";
    if (/does not have the attribute/.test(m)) return "error:missing-attribute";
    if (/does not exist/.test(m)) return "error:absent-entity";
    if (/extension function/.test(m)) return "error:extension";
    if (/type error/.test(m)) return "error:type";
    return "error:other";
  });
}

/** cedar-wasm's EST of one policy text, for coverage counting (undefined when it does not parse). */
export function wasmEst(text: string): unknown[] | undefined {
  const parts = cedar.policySetTextToParts(text);
  if (parts.type !== "success") return undefined;
  const out: unknown[] = [];
  for (const p of parts.policies) {
    const j = cedar.policyToJson(p);
    if (j.type === "success") out.push(j.json);
  }
  return out;
}
