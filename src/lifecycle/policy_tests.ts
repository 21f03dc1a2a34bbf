import { dirname, join, resolve } from "node:path";
import { isMap, isNode, LineCounter, parse, parseDocument } from "yaml";
import { z } from "zod";
import { type ConfigErrorOptions, expect, list, map, parseYaml, text } from "../config/mod.ts";
import { escapeXml } from "../conformance/mod.ts";
import type { Entity, PolicyEngine, PolicyInfo } from "../policy/mod.ts";
import {
  buildRequests,
  cedarJsonRequest,
  checkRequestSpec,
  decideRequests,
  type KnownPlugins,
  parseEntityJson,
  parseUid,
  REQUEST_FIELDS,
  type RequestOutcome,
  type RequestSpec,
} from "./_request_spec.ts";

/**
 * A policy test file cannot be used: unreadable, not YAML or JSON, or a case
 * that is malformed. `line` and `column` point at the offending node.
 *
 * @example
 * ```ts
 * import { PolicyTestError } from "./policy_tests.ts";
 * const error = new PolicyTestError('expected allow or deny, got "maybe"', { file: "base.yaml", line: 4, column: 13 });
 * error.message; // 'Invalid policy test file "base.yaml" at line 4, column 13: expected allow or deny, got "maybe"'
 * ```
 */
export class PolicyTestError extends SyntaxError {
  /** The test file. */
  readonly file: string;
  /** 1-based line of the offending node, when known. */
  readonly line: number | undefined;
  /** 1-based column of the offending node, when known. */
  readonly column: number | undefined;

  /**
   * Builds the error.
   * @param detail What is wrong, quoting the value.
   * @param options The file, the line and column when known, and what the file is (a policy test file by default).
   */
  constructor(
    detail: string,
    options: { file: string; line?: number; column?: number; cause?: unknown; kind?: string },
  ) {
    const where = options.line === undefined ? "" : ` at line ${options.line}, column ${options.column ?? 1}`;
    super(
      `Invalid ${options.kind ?? "policy test file"} "${options.file}"${where}: ${detail}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = "PolicyTestError";
    this.file = options.file;
    this.line = options.line;
    this.column = options.column;
  }
}

/** One test case, from a keycard YAML file or a Cedar `run-tests` JSON file. */
export interface PolicyTestCase {
  /** The file it is in. */
  file: string;
  /** 1-based line where it starts. */
  line: number;
  /** Its name, unique in its file. */
  name: string;
  /** `keycard`: a YAML case; `cedar`: a Cedar CLI `run-tests` case. */
  format: "keycard" | "cedar";
  /** A keycard case's request. */
  spec?: RequestSpec;
  /** A Cedar case's request and entities. */
  cedar?: {
    request: { principal: string; action: string; resource: string; context: Record<string, unknown> };
    entities: Entity[];
  };
  /** The expected decision. */
  expect: "allow" | "deny";
  /** keycard: exactly these policies decide. */
  policies?: string[];
  /** Cedar: each of these is among the deciding policies. */
  reason?: string[];
  /** The expected number of evaluation errors. */
  errors: number;
}

/** The cases of one file. */
export interface PolicyTestFile {
  /** The file, as found. */
  file: string;
  /** Its cases, in order. */
  cases: PolicyTestCase[];
}

const CASE = map({
  name: text("a name"),
  description: z.string(expect("text")).optional(),
  expect: z.enum(["allow", "deny"], expect("allow or deny")),
  policies: list(text("a policy id")).optional(),
  errors: z.int(expect("a number of evaluation errors")).min(0).optional(),
  ...REQUEST_FIELDS,
}, "a test case map");
const YAML_FILE = map({ tests: list(CASE) }, "a map with tests:");

const CEDAR_FILE = z.array(
  z.object({
    name: z.string(expect("a name")).optional(),
    request: z.object({
      principal: z.string(expect('an entity such as Plugin::"stamp"')),
      action: z.string(expect('an action such as Action::"fs.read"')),
      resource: z.string(expect('an entity such as File::"/data/a.txt"')),
      context: z.record(z.string(), z.unknown(), expect("a map")).optional(),
    }, expect("a request {principal, action, resource, context}")),
    entities: z.union([z.array(z.unknown()), z.string()], expect("a list of entities or an entities file")),
    decision: z.enum(["allow", "deny"], expect("allow or deny")),
    reason: z.array(z.string(expect("a policy id")), expect("a list of policy ids")),
    num_errors: z.int(expect("a number of errors")).min(0),
  }, expect("a test case {request, entities, decision, reason, num_errors}")),
  expect("a JSON list of test cases"),
);

/**
 * Parses one policy test file: a keycard YAML file (`tests:`, each case a
 * Cedar request or a host call with `expect`), or, for a `.json` file, the
 * Cedar CLI's `run-tests` format (a list of `{request, entities, decision,
 * reason, num_errors}`).
 *
 * @param text The file's text.
 * @param file Its path: `.json` selects the Cedar format; relative entities files resolve against its directory.
 * @returns Its cases.
 * @throws {PolicyTestError} On a syntax error, an unknown key, a value of the wrong type, a case that is
 * neither form or both, a duplicate name, an entities file that cannot be read or lies outside the
 * test file's directory.
 *
 * @example Parse a host-call case
 * ```ts
 * import { parsePolicyTests } from "./policy_tests.ts";
 * const { cases } = await parsePolicyTests(
 *   "tests:\n  - name: stamp reads its data\n    plugin: stamp\n    fs.read: data/stamp/a.txt\n    expect: allow\n",
 *   "stamp.yaml",
 * );
 * cases[0]?.line; // 2
 * ```
 */
export async function parsePolicyTests(text: string, file: string): Promise<PolicyTestFile> {
  return file.endsWith(".json") ? await parseCedarTests(text, file) : parseKeycardTests(text, file);
}

function parseKeycardTests(text: string, file: string): PolicyTestFile {
  let raw: unknown;
  try {
    raw = parse(text, { maxAliasCount: 100 });
  } catch {
    // parseYaml reports it with its position.
  }
  const rawCases = (raw as { tests?: unknown } | null)?.tests;
  const nameOf = (index: number): string | undefined => {
    const name = Array.isArray(rawCases) ? (rawCases[index] as { name?: unknown } | null)?.name : undefined;
    return typeof name === "string" ? name : undefined;
  };
  const parsed = parseYaml(text, file, YAML_FILE, "a test file is a map with tests:", {
    error: (detail: string, where: ConfigErrorOptions) => {
      const index = /^tests\[(\d+)\]/.exec(where.path ?? "")?.[1];
      const name = index === undefined ? undefined : nameOf(Number(index));
      const path = where.path ? `"${where.path}" ` : "";
      return new PolicyTestError(`${name === undefined ? "" : `case "${name}": `}${path}${detail}`, where);
    },
  });
  const positions = positionsOf(text);
  if (parsed.tests.length === 0) throw new PolicyTestError("has no tests (tests: is empty)", { file });
  const seen = new Set<string>();
  const cases = parsed.tests.map((item, index) => {
    const at = positions(["tests", index]);
    const fail = (detail: string, key?: string): never => {
      throw new PolicyTestError(`case "${item.name}": ${detail}`, {
        file,
        ...(key === undefined ? at : positions(["tests", index, key])),
      });
    };
    if (seen.has(item.name)) fail(`the name is used by another case of this file`, "name");
    seen.add(item.name);
    const { name: _name, description: _description, expect, policies, errors, ...spec } = item;
    const problem = checkRequestSpec(spec);
    if (problem) fail(problem.message, problem.key);
    return {
      file,
      line: at.line ?? 1,
      name: item.name,
      format: "keycard" as const,
      spec,
      expect,
      ...(policies === undefined ? {} : { policies }),
      errors: errors ?? 0,
    };
  });
  return { file, cases };
}

async function parseCedarTests(text: string, file: string): Promise<PolicyTestFile> {
  const parsed = parseYaml(text, file, CEDAR_FILE, "a run-tests file is a JSON list of test cases", {
    error: (detail: string, where: ConfigErrorOptions) =>
      new PolicyTestError(`${where.path ? `"${where.path}" ` : ""}${detail}`, where),
  });
  const positions = positionsOf(text);
  const cases: PolicyTestCase[] = [];
  for (const [index, item] of parsed.entries()) {
    const name = item.name ?? `(unnamed ${index + 1})`;
    const at = (path: (string | number)[]) => positions([index, ...path]);
    const fail = (detail: string, path: (string | number)[] = []): never => {
      throw new PolicyTestError(`case "${name}": ${detail}`, { file, ...at(path) });
    };
    for (const key of ["principal", "action", "resource"] as const) {
      try {
        parseUid(item.request[key]);
      } catch (error) {
        fail((error as Error).message, ["request", key]);
      }
    }
    let entities: Entity[] = [];
    let list = item.entities;
    if (typeof list === "string") {
      list = await readEntitiesFile(list, file).catch((error) => fail((error as Error).message, ["entities"]));
    }
    try {
      entities = (list as unknown[]).map(parseEntityJson).filter((e) => e.uid.type !== "Action");
    } catch (error) {
      fail(`"entities": ${(error as Error).message}`, ["entities"]);
    }
    cases.push({
      file,
      line: at([]).line ?? 1,
      name,
      format: "cedar",
      cedar: { request: { ...item.request, context: item.request.context ?? {} }, entities },
      expect: item.decision,
      reason: item.reason,
      errors: item.num_errors,
    });
  }
  return { file, cases };
}

/** An entities file named by a run-tests case: relative to the test file, and inside its directory. */
async function readEntitiesFile(name: string, file: string): Promise<unknown[]> {
  const dir = await Deno.realPath(dirname(resolve(file)));
  let path: string;
  try {
    path = await Deno.realPath(resolve(dir, name));
  } catch {
    throw new Error(`entities file "${name}" cannot be read: no such file next to the test file`);
  }
  if (!path.startsWith(`${dir}/`)) {
    throw new Error(`entities file "${name}" is outside of the test file's directory "${dir}"`);
  }
  let entities: unknown;
  try {
    entities = JSON.parse(await Deno.readTextFile(path));
  } catch (error) {
    throw new Error(`entities file "${name}" is not JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(entities)) throw new Error(`entities file "${name}" is not a JSON list of entities`);
  return entities;
}

/** Line and column of the node at a path (or of the nearest existing ancestor). */
function positionsOf(text: string): (path: (string | number)[]) => { line?: number; column?: number } {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter });
  return (path) => {
    for (let length = path.length; length >= 0; length--) {
      const parentPath = path.slice(0, length - 1);
      const key = path[length - 1];
      // A key's own position is where its line starts to read.
      const parent = length > 0 ? document.getIn(parentPath, true) : undefined;
      if (isMap(parent) && typeof key === "string") {
        const pair = parent.items.find((item) => isNode(item.key) && (item.key as { value?: unknown }).value === key);
        if (pair && isNode(pair.key) && pair.key.range) {
          const { line, col } = lineCounter.linePos(pair.key.range[0]);
          return { line, column: col };
        }
      }
      const node = document.getIn(path.slice(0, length), true);
      if (isNode(node) && node.range) {
        const { line, col } = lineCounter.linePos(node.range[0]);
        return { line, column: col };
      }
    }
    return {};
  };
}

/** What {@linkcode loadPolicyTests} found. */
export interface LoadedPolicyTests {
  /** The files read, in order, each with its cases. */
  files: PolicyTestFile[];
  /** Files that could not be read or parsed; when any, no verdict should be given. */
  problems: Error[];
}

/**
 * Reads policy test files: each path is a file, or a directory searched
 * (recursively, in name order) for `*.yaml`, `*.yml` and `*.json`.
 *
 * @param paths Files and directories.
 * @returns The files parsed, and a problem for each one that could not be (or for a path with no test files).
 *
 * @example Read the shipped policy tests
 * ```ts ignore
 * import { loadPolicyTests } from "./policy_tests.ts";
 * const { files, problems } = await loadPolicyTests(["policies/tests"]);
 * ```
 */
export async function loadPolicyTests(paths: readonly string[]): Promise<LoadedPolicyTests> {
  const files: PolicyTestFile[] = [];
  const problems: Error[] = [];
  for (const path of paths) {
    let found: string[];
    try {
      found = await testFiles(path);
    } catch (error) {
      problems.push(
        error instanceof Deno.errors.NotFound
          ? new Deno.errors.NotFound(`Cannot read policy tests "${path}": no such file or directory`)
          : error as Error,
      );
      continue;
    }
    if (found.length === 0) {
      problems.push(new Deno.errors.NotFound(`No policy test files (*.yaml, *.yml, *.json) in "${path}"`));
    }
    // An entities file a run-tests file names sits beside it: it is not a test file.
    const referenced = await entitiesFiles(found);
    for (const file of found[0] === path ? found : found.filter((f) => !referenced.has(resolve(f)))) {
      try {
        files.push(await parsePolicyTests(await Deno.readTextFile(file), file));
      } catch (error) {
        problems.push(error as Error);
      }
    }
  }
  return { files, problems };
}

/** The entities files that the run-tests files among `files` name. */
async function entitiesFiles(files: readonly string[]): Promise<Set<string>> {
  const named = new Set<string>();
  for (const file of files.filter((f) => f.endsWith(".json"))) {
    let data: unknown;
    try {
      data = JSON.parse(await Deno.readTextFile(file));
    } catch {
      continue; // reported when the file itself is parsed
    }
    if (!Array.isArray(data)) continue;
    for (const item of data) {
      const entities = (item as { entities?: unknown } | null)?.entities;
      if (typeof entities === "string") named.add(resolve(dirname(file), entities));
    }
  }
  return named;
}

async function testFiles(path: string): Promise<string[]> {
  const info = await Deno.stat(path);
  if (!info.isDirectory) return [path];
  const found: string[] = [];
  const entries = [];
  for await (const entry of Deno.readDir(path)) entries.push(entry);
  entries.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  for (const entry of entries) {
    const child = join(path, entry.name);
    if (entry.isDirectory) found.push(...await testFiles(child));
    else if (entry.isFile && /\.(ya?ml|json)$/.test(entry.name)) found.push(child);
  }
  return found;
}

/** One case's result. */
export interface PolicyTestResult {
  /** The file. */
  file: string;
  /** The case's line. */
  line: number;
  /** The case's name. */
  name: string;
  /** Whether it passed. */
  passed: boolean;
  /** Why it failed. */
  failure?: string;
  /** What the case expected. */
  expected: { decision: "allow" | "deny"; policies?: string[]; reason?: string[]; errors: number };
  /** What the policies decided. */
  actual: Omit<RequestOutcome, "requests" | "deciding">;
}

/** How often one policy decided a case. */
export interface PolicyCoverage {
  /** The policy's id. */
  id: string;
  /** `permit` or `forbid`. */
  effect: "permit" | "forbid";
  /** Its source (`base.cedar`, `grants/stamp`). */
  source: string;
  /** Its line in the source. */
  line: number;
  /** Cases it decided (any phase). */
  decided: number;
}

/** What {@linkcode runPolicyTests} returns. */
export interface PolicyTestReport {
  /** Every case's result, file by file. */
  results: PolicyTestResult[];
  /** Cases passed. */
  passed: number;
  /** Cases failed. */
  failed: number;
  /** Every policy of the set, with how many cases it decided. */
  coverage: PolicyCoverage[];
}

/** Options of {@linkcode runPolicyTests}. */
export interface RunPolicyTestsOptions {
  /** Known plugins' versions and hashes, for `Plugin` principals. @default {none: version "0.0.0", sha256 ""} */
  plugins?: KnownPlugins;
}

/**
 * Decides every case on the engine's policies and compares: the decision;
 * for a keycard case, exactly the deciding policies when it lists them; for
 * a Cedar case, each `reason` among the deciding policies (as the Cedar CLI
 * does); and the number of evaluation errors.
 *
 * @param files The cases.
 * @param engine The policies to test.
 * @param options Known plugins.
 * @returns Per-case results and coverage.
 *
 * @example Run one case
 * ```ts ignore
 * import { parsePolicyTests, runPolicyTests } from "./policy_tests.ts";
 * const report = runPolicyTests([await parsePolicyTests(text, "t.yaml")], engine);
 * report.failed; // 0
 * ```
 */
export function runPolicyTests(
  files: readonly PolicyTestFile[],
  engine: PolicyEngine,
  options: RunPolicyTestsOptions = {},
): PolicyTestReport {
  const plugins = options.plugins ?? new Map();
  const policies: PolicyInfo[] = engine.policies();
  const decided = new Map<string, number>(policies.map((p) => [p.id, 0]));
  const results: PolicyTestResult[] = [];
  for (const { cases } of files) {
    for (const test of cases) {
      const outcome = decideCase(test, engine, plugins);
      for (const id of outcome.deciding) decided.set(id, (decided.get(id) ?? 0) + 1);
      const failure = compare(test, outcome);
      const { requests: _requests, deciding: _deciding, ...actual } = outcome;
      results.push({
        file: test.file,
        line: test.line,
        name: test.name,
        passed: failure === undefined,
        ...(failure === undefined ? {} : { failure }),
        expected: {
          decision: test.expect,
          ...(test.policies ? { policies: test.policies } : {}),
          ...(test.reason ? { reason: test.reason } : {}),
          errors: test.errors,
        },
        actual,
      });
    }
  }
  const passed = results.filter((r) => r.passed).length;
  return {
    results,
    passed,
    failed: results.length - passed,
    coverage: policies.map((p) => ({
      id: p.id,
      effect: p.effect,
      source: p.source,
      line: p.line,
      decided: decided.get(p.id) ?? 0,
    })),
  };
}

function decideCase(test: PolicyTestCase, engine: PolicyEngine, plugins: KnownPlugins): RequestOutcome {
  if (test.cedar) {
    return decideRequests(engine, {
      requests: [{ request: cedarJsonRequest(test.cedar.request, test.cedar.entities) }],
    });
  }
  return decideRequests(engine, buildRequests(test.spec!, engine, plugins));
}

function compare(test: PolicyTestCase, outcome: RequestOutcome): string | undefined {
  const problems: string[] = [];
  const list = (ids: readonly string[]) => ids.length ? `[${ids.join(", ")}]` : "[]";
  if (outcome.decision !== test.expect) {
    problems.push(`expected ${test.expect}, got ${outcome.decision} (${outcome.reason})`);
  } else if (test.policies) {
    const want = [...new Set(test.policies)].sort();
    if (want.join("\n") !== outcome.policies.join("\n")) {
      problems.push(`expected deciding policies ${list(want)}, got ${list(outcome.policies)}`);
    }
  } else if (test.reason) {
    const missing = test.reason.filter((id) => !outcome.policies.includes(id));
    if (missing.length) {
      problems.push(`missing reason(s) ${list(missing)}, deciding policies ${list(outcome.policies)}`);
    }
  }
  if (outcome.errors.length !== test.errors) {
    problems.push(
      `expected ${test.errors} evaluation error(s), got ${outcome.errors.length}` +
        (outcome.errors.length ? `: ${outcome.errors.join("; ")}` : ""),
    );
  }
  return problems.length ? problems.join("; ") : undefined;
}

/** Report formats of {@linkcode formatPolicyTestReport}. */
export type PolicyTestFormat = "text" | "json" | "junit";

/** Options of {@linkcode formatPolicyTestReport}. */
export interface FormatPolicyTestReportOptions {
  /** Shows a file path (e.g. relative to the working directory). @default {the path as is} */
  showPath?: (file: string) => string;
  /** Lines printed first in the text format (what was tested). @default {[]} */
  header?: string[];
}

/**
 * Renders a report: `text` (a line per case, coverage, totals), `json` (the
 * report as is), or `junit` (JUnit XML, one `<testsuite>` per file).
 *
 * @param report The report.
 * @param format The format.
 * @param options How paths show, and a header for the text format.
 * @returns The text, ending with a newline.
 *
 * @example
 * ```ts
 * import { formatPolicyTestReport } from "./policy_tests.ts";
 * formatPolicyTestReport({ results: [], passed: 0, failed: 0, coverage: [] }, "text").includes("0 passed"); // true
 * ```
 */
export function formatPolicyTestReport(
  report: PolicyTestReport,
  format: PolicyTestFormat,
  options: FormatPolicyTestReportOptions = {},
): string {
  const showPath = options.showPath ?? ((file: string) => file);
  if (format === "json") {
    return `${
      JSON.stringify({ ...report, results: report.results.map((r) => ({ ...r, file: showPath(r.file) })) }, null, 2)
    }\n`;
  }
  if (format === "junit") return junit(report, showPath);
  const lines = [...(options.header ?? [])];
  for (const r of report.results) {
    const where = `${showPath(r.file)}:${r.line}`;
    const phase = r.actual.phase ? `, ${r.actual.phase} phase` : "";
    lines.push(
      r.passed
        ? `ok   ${where} ${r.name}: ${r.actual.decision} (${r.actual.reason}${phase})`
        : `FAIL ${where} ${r.name}: ${r.failure}${phase ? ` [${phase.slice(2)}]` : ""}`,
    );
    if (r.actual.note) lines.push(`     note: ${r.actual.note}`);
  }
  const unexercised = report.coverage.filter((p) => p.decided === 0);
  lines.push(
    "",
    `Coverage: ${report.coverage.length - unexercised.length} of ${report.coverage.length} policies decided a case`,
  );
  if (unexercised.length) {
    lines.push("  never decided a case:");
    for (const p of unexercised) lines.push(`    ${p.id} (${p.effect}, ${p.source}:${p.line})`);
  }
  const files = new Set(report.results.map((r) => r.file)).size;
  lines.push(
    "",
    `${report.failed === 0 ? "ok" : "FAILED"}: ${report.passed} passed, ${report.failed} failed ` +
      `(${report.results.length} cases in ${files} file${files === 1 ? "" : "s"})`,
  );
  return `${lines.join("\n")}\n`;
}

/** Characters XML 1.0 cannot carry: C0 controls but tab and newlines, U+FFFE/U+FFFF, lone surrogates. */
function junit(report: PolicyTestReport, showPath: (file: string) => string): string {
  const byFile = new Map<string, PolicyTestResult[]>();
  for (const r of report.results) byFile.set(r.file, [...(byFile.get(r.file) ?? []), r]);
  const out = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<testsuites name="keycard policy tests" tests="${report.results.length}" failures="${report.failed}" errors="0">`,
  ];
  for (const [file, results] of byFile) {
    const failures = results.filter((r) => !r.passed).length;
    const name = escapeXml(showPath(file));
    out.push(`  <testsuite name="${name}" tests="${results.length}" failures="${failures}" errors="0" skipped="0">`);
    for (const r of results) {
      const detail = `${r.actual.decision} (${r.actual.reason})${
        r.actual.phase ? ` in the ${r.actual.phase} phase` : ""
      }`;
      out.push(`    <testcase name="${escapeXml(r.name)}" classname="${name}" file="${name}" line="${r.line}">`);
      if (!r.passed) {
        out.push(
          `      <failure message="${escapeXml(r.failure ?? "")}" type="PolicyTestFailure">${
            escapeXml(detail)
          }</failure>`,
        );
      }
      out.push(`      <system-out>${escapeXml(detail)}</system-out>`, `    </testcase>`);
    }
    out.push(`  </testsuite>`);
  }
  const unexercised = report.coverage.filter((p) => p.decided === 0).map((p) => p.id);
  out.push(
    `  <!-- coverage: ${
      report.coverage.length - unexercised.length
    } of ${report.coverage.length} policies decided a case -->`,
  );
  out.push(`</testsuites>`);
  return `${out.join("\n")}\n`;
}
