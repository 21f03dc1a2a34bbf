import { compileGrants, type PolicySource } from "../policy/mod.ts";
import type { Manifest, ManifestSample } from "../registry/mod.ts";
import {
  DEFAULT_LIMITS,
  EXTISM_HOST_FUNCTIONS,
  inspectModule,
  type ModuleInfo,
  type PluginLimits,
  PluginReportedError,
  PluginRuntimeError,
  PluginTrapError,
  WASI_FUNCTIONS,
} from "../runtime/mod.ts";
import { _openSandbox, type _Sandbox } from "./_sandbox.ts";

/** The outcome of one conformance check. */
export interface Check {
  /** Stable identifier, e.g. `"imports.known"`; see {@linkcode runConformance} for the list. */
  id: string;
  /** What the check asks, for people. */
  name: string;
  /** Whether the check passed; `false` for a skipped check, which neither passed nor failed. */
  passed: boolean;
  /** Present and `true` when the check did not apply or could not run. */
  skipped?: boolean;
  /** What was found: the reason of a failure, or what a pass rests on. */
  detail: string;
}

/** Host calls of one action on one resource that the plugin attempted during the run. */
export interface FootprintEntry {
  /** The Cedar action, e.g. `"fs.read"`. */
  action: string;
  /** The Cedar resource, e.g. `'File::"/data/hello.txt"'`, or `"(unresolved)"` for a malformed request. */
  resource: string;
  /** How many times it was attempted. */
  count: number;
  /** How many of the attempts were permitted (always 0 under the empty grant). */
  allowed: number;
  /** Whether the manifest lists the action in its `capabilities`. */
  declared: boolean;
  /** For `http.request`: the schemes and methods attempted on this host, sorted (the resource names neither). */
  http?: { schemes: string[]; methods: string[] };
}

/** What {@linkcode runConformance} found. */
export interface ConformanceReport {
  /** The plugin's name: the manifest's, or `"plugin"` without one. */
  plugin: string;
  /** The manifest's version, or `"0.0.0"` without one. */
  version: string;
  /** Hex sha256 of the module's bytes. */
  sha256: string;
  /** Whether the plugin is conformant: no check failed (skipped checks do not count). */
  passed: boolean;
  /** Wall-clock time of the whole run, in milliseconds. */
  durationMs: number;
  /**
   * What the plugin ran under: `"empty"` (base policies only, nothing
   * permitted) or `"grants"` (base policies and the manifest's compiled grants).
   */
  grants: "empty" | "grants";
  /** The limits the manifest asks for (its `limits`), as written; `{}` without any. */
  requestedLimits: Partial<PluginLimits>;
  /** Every check, always all of them, in a fixed order. */
  checks: Check[];
  /** Every host call attempted during the run, by action and resource. */
  footprint: FootprintEntry[];
}

/** Options of {@linkcode runConformance}. */
export interface RunConformanceOptions {
  /** The plugin's manifest: its name, declared exports with samples, capabilities and describe metadata. */
  manifest?: Manifest;
  /**
   * Limits the plugin is admitted under, over keycard's defaults; the
   * manifest's own `limits` are not applied (a plugin does not pick its bounds
   * at admission). One instance unless given.
   *
   * @default {{ deadlineMs: 1000, memoryPages: 256 }}
   */
  limits?: Partial<PluginLimits>;
  /**
   * Run under the base policies plus the manifest's compiled grants instead
   * of the empty grant, as the gateway does when an operator installs the
   * plugin with its grants; the privileges check then asks that every
   * attempted operation was permitted. The sandbox is the same either way.
   *
   * @default {false}
   */
  grants?: boolean;
  /**
   * The directory under which the run's data root and key-value store are
   * made (created when missing) and removed after; nothing else is written.
   *
   * @default {the system's temp dir (`Deno.makeTempDir`)}
   */
  tempDir?: string;
  /** The Cedar schema text. @default {the text of the repository's `policies/keycard.cedarschema`} */
  schema?: string;
  /**
   * The base policies, always in force (the grants, when used, are added).
   *
   * @default {the repository's `policies/base.cedar`}
   */
  policies?: readonly PolicySource[];
}

const CHECKS = [
  ["module.valid", "Valid module"],
  ["imports.known", "Imports only host functions"],
  ["memory.cap", "One memory within the cap"],
  ["exports.declared", "Declared exports exist"],
  ["instantiate.empty-grant", "Instantiates under an empty grant"],
  ["exports.run", "Exports run on their samples"],
  ["privileges.none", "Performs no privileged operation"],
  ["capabilities.declared", "Attempts only declared capabilities"],
  ["describe.matches", "Describe matches the manifest"],
] as const;

/** The checks whose question changes when the plugin runs under its grants: other ids and names. */
const GRANTED: Partial<Record<CheckId, readonly [string, string]>> = {
  "instantiate.empty-grant": ["instantiate.grants", "Instantiates under its grants"],
  "privileges.none": ["privileges.granted", "Attempts only what its grants permit"],
};

type CheckId = (typeof CHECKS)[number][0];
type Outcome = { passed: boolean; skipped?: true; detail: string };

const POLICIES = new URL("../../policies/", import.meta.url);

/** Exports that are start code: the runtime runs them at instantiation, never as calls. */
const START_CODE = new Set(["_start", "_initialize", "hs_init"]);
/** Allocator and ABI helpers toolchains export; called by hosts, never on their own. */
const ABI_HELPERS = new Set([
  "alloc",
  "free",
  "malloc",
  "realloc",
  "calloc",
  "aligned_alloc",
  "posix_memalign",
  "cabi_realloc",
  "dealloc",
]);

const CALLER = { caller: "conformance" };

/**
 * Runs keycard's admission suite on a plugin: static checks of the module,
 * then a real run in a worker isolate under an empty grant (only the base
 * policies, nothing permitted; with `grants`, the manifest's grants too), in a
 * fresh data root and key-value store under `tempDir`, with a resolver that
 * answers only an unroutable documentation address. The host calls the plugin
 * attempts are recorded as its capability footprint.
 *
 * What runs: every declared export on each of its samples, or once on empty
 * input when it has none; without a manifest, every exported function of
 * Extism's shape (`() -> i32`) but start code (`_start`, `_initialize`,
 * `hs_init`) and allocator helpers (`alloc`, `malloc`, `cabi_realloc`, names
 * starting with `__`, ...), once on empty input. A trap, deadline, memory
 * overrun or the plugin's own error fails `exports.run`, unless the sample
 * says `expect: error` (then a return fails it, and a reported error or a
 * trap passes). Under the empty grant, a reported error that follows a denied
 * host call is the plugin handling the denial, and passes.
 *
 * The checks, in order: `module.valid`, `imports.known`, `memory.cap`,
 * `exports.declared`, `instantiate.empty-grant`, `exports.run`,
 * `privileges.none`, `capabilities.declared`, `describe.matches`; with
 * `grants`, `instantiate.grants` and `privileges.granted` (every attempt
 * permitted) in place of the two empty-grant ones. A malformed module fails
 * `module.valid` and every other check is skipped; a plugin that does not
 * instantiate skips the checks that need it to run.
 *
 * @param wasm The module's bytes.
 * @param options The manifest, the limits, the grant mode, the temp dir and the policies.
 * @returns The report; `passed` says whether the plugin is conformant. A
 * failing plugin is a report, never an exception.
 * @throws {Deno.errors.NotFound} When `schema` or `policies` is not given and
 * `policies/keycard.cedarschema` or `policies/base.cedar` cannot be read.
 * @throws {PolicyValidationError} When the schema or a base policy is invalid.
 * @throws {GrantError} With `grants`, when a grant of the manifest does not compile.
 * @throws {RangeError} When a limit is out of range.
 *
 * @example Check the hello plugin against its manifest
 * ```ts ignore
 * import { runConformance } from "./run_conformance.ts";
 * import { parseManifest } from "../registry/mod.ts";
 * const manifest = parseManifest(await Deno.readTextFile("plugins/hello/plugin.yaml"), "plugin.yaml");
 * const report = await runConformance(await Deno.readFile("plugins/hello/build/plugin.wasm"), { manifest });
 * report.passed; // true
 * ```
 */
export async function runConformance(
  wasm: Uint8Array,
  options: RunConformanceOptions = {},
): Promise<ConformanceReport> {
  const started = performance.now();
  const { manifest } = options;
  const plugin = manifest?.name ?? "plugin";
  const version = manifest?.version ?? "0.0.0";
  const limits: PluginLimits = { ...DEFAULT_LIMITS, instances: 1, ...options.limits };
  const granted = options.grants === true;
  const outcomes = new Map<CheckId, Outcome>();
  const footprint: FootprintEntry[] = [];
  const sha256 = await _sha256(wasm);

  const report = (): ConformanceReport => {
    const checks = CHECKS.map(([id, name]): Check => {
      const outcome = outcomes.get(id) ?? { passed: false, skipped: true, detail: "Skipped: the module is malformed" };
      const [shownId, shownName] = (granted ? GRANTED[id] : undefined) ?? [id, name];
      return { id: shownId, name: shownName, ...outcome };
    });
    return {
      plugin,
      version,
      sha256,
      passed: checks.every((check) => check.passed || check.skipped),
      durationMs: Math.round(performance.now() - started),
      grants: granted ? "grants" : "empty",
      requestedLimits: { ...manifest?.limits },
      checks,
      footprint,
    };
  };

  const malformed = await _malformed(wasm);
  if (malformed !== undefined) {
    outcomes.set("module.valid", { passed: false, detail: `Malformed module: ${malformed}` });
    return report();
  }
  const info = inspectModule(wasm);
  outcomes.set("module.valid", {
    passed: true,
    detail: `Well-formed module with ${_count(info.imports.length, "import")}, ` +
      `${_count(info.exports.length, "export")} and ${_count(info.memories.length, "memory", "memories")}`,
  });

  const policies = await _policies(options, manifest, granted);
  await using sandbox = _openSandbox({ limits, config: manifest?.config ?? {}, tempDir: options.tempDir, ...policies });
  outcomes.set("imports.known", _checkImports(info, sandbox.hostFunctionNames));
  outcomes.set("memory.cap", _checkMemory(info, limits.memoryPages));
  outcomes.set("exports.declared", _checkDeclaredExports(info, manifest));

  const skipped = (detail: string): Outcome => ({ passed: false, skipped: true, detail });
  const loadStarted = performance.now();
  try {
    // A module that can reach a host function gets its world before it runs, so no call waits for it.
    if (_mayCallHost(info)) await sandbox.prepare();
    await sandbox.host.load(wasm, { name: plugin, version, config: { ...manifest?.config } });
    outcomes.set("instantiate.empty-grant", {
      passed: true,
      detail: `Instantiated ${granted ? "under its grants" : "with no grants"} in ${
        Math.round(performance.now() - loadStarted)
      } ms`,
    });
  } catch (error) {
    if (!(error instanceof PluginRuntimeError)) throw error;
    outcomes.set("instantiate.empty-grant", { passed: false, detail: error.message });
    const why = "Skipped: the plugin did not instantiate";
    for (const id of ["exports.run", "privileges.none", "capabilities.declared", "describe.matches"] as const) {
      outcomes.set(id, skipped(why));
    }
    return report();
  }

  outcomes.set("exports.run", await _runExports(sandbox, plugin, info, manifest, granted));
  const describe = info.exports.some((e) => e.name === "describe" && e.kind === "function")
    ? await _callDescribe(sandbox, plugin)
    : undefined;

  footprint.push(..._footprint(sandbox.events, manifest));
  _httpDetails(footprint, sandbox.events);
  outcomes.set("privileges.none", granted ? _checkGranted(sandbox.events) : _checkPrivileges(sandbox.events));
  outcomes.set("capabilities.declared", _checkCapabilities(footprint, manifest));
  outcomes.set(
    "describe.matches",
    describe === undefined
      ? skipped(`Skipped: the module has no "describe" export`)
      : manifest === undefined
      ? skipped(`Skipped: no manifest to compare "describe" with`)
      : _checkDescribe(describe, manifest),
  );
  return report();
}

/** The schema and the policies in force: the base set, and the compiled grants when the run uses them. */
async function _policies(
  options: RunConformanceOptions,
  manifest: Manifest | undefined,
  granted: boolean,
): Promise<{ schema: string; policies: PolicySource[] }> {
  const [schema, base] = await Promise.all([
    options.schema ?? Deno.readTextFile(new URL("keycard.cedarschema", POLICIES)),
    options.policies ??
      Deno.readTextFile(new URL("base.cedar", POLICIES)).then((text) => [{ name: "base.cedar", text }]),
  ]);
  const policies = [...base];
  if (granted && manifest !== undefined && manifest.grants.length > 0) {
    policies.push({ name: `grants/${manifest.name}.cedar`, text: compileGrants(manifest.name, manifest.grants) });
  }
  return { schema, policies };
}

/** Extism ABI imports that only move bytes within the instance: no host function behind them. */
const LOCAL_ABI = new Set([
  "alloc",
  "free",
  "length",
  "length_unsafe",
  "load_u8",
  "load_u64",
  "store_u8",
  "store_u64",
  "input_length",
  "input_load_u8",
  "input_load_u64",
  "input_offset",
  "output_set",
  "error_set",
  "error_get",
]);

/** Whether some import of the module can lead to a keycard host function (and so to a Cedar decision). */
function _mayCallHost(info: ModuleInfo): boolean {
  return info.imports.some((i) => !(i.module === "extism:host/env" && LOCAL_ABI.has(i.name)));
}

async function _sha256(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as BufferSource);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Why the bytes are not a module WebAssembly accepts, or undefined when they are. */
async function _malformed(wasm: Uint8Array): Promise<string | undefined> {
  try {
    inspectModule(wasm);
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
  if (WebAssembly.validate(wasm as BufferSource)) return undefined;
  // validate() says only no; compiling says why, with the byte offset.
  return await WebAssembly.compile(wasm as BufferSource).then(
    () => "WebAssembly.validate refused the module",
    (error: unknown) => error instanceof Error ? error.message : String(error),
  );
}

function _count(n: number, singular: string, plural = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : plural}`;
}

/** "The one x is" or "All n xs are", for pass details. */
function _all(n: number, singular: string, plural: string): string {
  return n === 1 ? `The one ${singular}` : `All ${n} ${plural}`;
}

function _quoteList(values: Iterable<string>): string {
  return [...values].map((v) => JSON.stringify(v)).join(", ");
}

function _checkImports(info: ModuleInfo, hostFunctionNames: readonly string[]): Outcome {
  const keycard = new Set(hostFunctionNames);
  const unknown = info.imports.filter((i) =>
    !(i.kind === "function" &&
      ((i.module === "extism:host/env" && EXTISM_HOST_FUNCTIONS.has(i.name)) ||
        (i.module === "wasi_snapshot_preview1" && WASI_FUNCTIONS.has(i.name)) ||
        (i.module === "extism:host/user" && keycard.has(i.name))))
  );
  if (unknown.length > 0) {
    const names = unknown.map((i) => `${JSON.stringify(i.module)} ${JSON.stringify(i.name)} (${i.kind})`);
    return {
      passed: false,
      detail: `Imports not provided by the host: ${names.join(", ")}; plugins may import only Extism's ` +
        `"extism:host/env" functions and keycard's "extism:host/user" host functions`,
    };
  }
  const user = info.imports.filter((i) => i.module === "extism:host/user").map((i) => i.name);
  return {
    passed: true,
    detail: info.imports.length === 0
      ? "No imports"
      : `${_all(info.imports.length, "import is", "imports are")} provided by the host` +
        (user.length > 0 ? `, keycard's: ${_quoteList(user)}` : ""),
  };
}

function _checkMemory(info: ModuleInfo, cap: number): Outcome {
  if (info.memories.length === 0) return { passed: true, detail: "No memory of its own" };
  if (info.memories.length > 1) {
    return { passed: false, detail: `Declares ${info.memories.length} memories: keycard runs one linear memory` };
  }
  const memory = info.memories[0]!;
  const problems: string[] = [];
  if (memory.imported) problems.push("it is imported (keycard gives each plugin its own memory)");
  if (memory.shared) problems.push("it is shared");
  if (memory.memory64) problems.push("it is 64-bit");
  if (memory.min > cap) problems.push(`its initial size of ${memory.min} pages exceeds the cap of ${cap} pages`);
  if (memory.max !== undefined && memory.max > cap) {
    problems.push(`its maximum of ${memory.max} pages exceeds the cap of ${cap} pages`);
  }
  if (problems.length > 0) return { passed: false, detail: `The memory is refused: ${problems.join("; ")}` };
  return {
    passed: true,
    detail: memory.max === undefined
      ? `One memory of ${_count(memory.min, "page")}, no declared maximum (held to the cap of ${cap} pages)`
      : `One memory of ${_count(memory.min, "page")}, maximum ${memory.max} within the cap of ${cap} pages`,
  };
}

function _checkDeclaredExports(info: ModuleInfo, manifest: Manifest | undefined): Outcome {
  if (manifest === undefined) return { passed: true, detail: "no manifest: nothing declared" };
  const problems: string[] = [];
  for (const { name } of manifest.exports) {
    const found = info.exports.find((e) => e.name === name);
    if (found === undefined) problems.push(`${JSON.stringify(name)} is not exported`);
    else if (found.kind !== "function") problems.push(`${JSON.stringify(name)} is a ${found.kind}, not a function`);
  }
  if (problems.length > 0) return { passed: false, detail: `Declared exports missing: ${problems.join("; ")}` };
  return {
    passed: true,
    detail: manifest.exports.length === 0
      ? "The manifest declares no exports"
      : `${_all(manifest.exports.length, "declared export is a function", "declared exports are functions")} ` +
        "of the module",
  };
}

/** One run of an export on one input, and what the manifest expects of it. */
interface Run {
  name: string;
  sample: ManifestSample;
}

/** The runs of `exports.run`: the manifest's samples, or Extism-shaped exports once each without a manifest. */
function _plannedRuns(info: ModuleInfo, manifest: Manifest | undefined): Run[] {
  const empty: ManifestSample = { input: "", expect: "ok" };
  if (manifest !== undefined) {
    // A declared export the module lacks already fails exports.declared.
    return manifest.exports
      .filter(({ name }) => info.exports.some((e) => e.name === name && e.kind === "function"))
      .flatMap(({ name, samples }) => (samples.length > 0 ? samples : [empty]).map((sample) => ({ name, sample })));
  }
  return info.exports
    .filter((e) =>
      e.kind === "function" && e.signature?.params.length === 0 && e.signature.results.length === 1 &&
      e.signature.results[0] === "i32" && !START_CODE.has(e.name) && !ABI_HELPERS.has(e.name) &&
      !e.name.startsWith("__")
    )
    .map(({ name }) => ({ name, sample: empty }));
}

async function _runExports(
  sandbox: _Sandbox,
  plugin: string,
  info: ModuleInfo,
  manifest: Manifest | undefined,
  granted: boolean,
): Promise<Outcome> {
  const runs = _plannedRuns(info, manifest);
  if (runs.length === 0) {
    return {
      passed: true,
      detail: manifest === undefined
        ? "No export of Extism's shape (() -> i32) to run; start code and allocator helpers are not run as calls"
        : "The manifest declares no exports: nothing ran",
    };
  }
  const failures: string[] = [];
  const expectedErrors: string[] = [];
  const denied: string[] = [];
  for (const { name, sample } of runs) {
    const where = `${JSON.stringify(name)} on ${sample.input === "" ? "empty input" : JSON.stringify(sample.input)}`;
    const before = sandbox.events.length;
    let error: PluginRuntimeError | undefined;
    try {
      await sandbox.host.invoke(plugin, name, sample.input, { hostContext: CALLER });
    } catch (caught) {
      if (!(caught instanceof PluginRuntimeError)) throw caught;
      error = caught;
    }
    const failed = error === undefined ? "" : `${error.name}: ${error.message}`;
    const ownError = error instanceof PluginReportedError || error instanceof PluginTrapError;
    if (sample.expect === "error") {
      if (error === undefined) failures.push(`${where} returned, but the manifest expects an error`);
      else if (ownError) expectedErrors.push(where);
      else failures.push(`${where} failed: ${failed}`);
    } else if (error instanceof PluginReportedError && !granted && _deniedSince(sandbox, before)) {
      denied.push(where);
    } else if (error !== undefined) {
      failures.push(`${where} failed: ${failed}`);
    }
  }
  if (failures.length > 0) return { passed: false, detail: failures.join("; ") };
  let detail = `Ran ${_count(runs.length, "call")} (${_quoteList(new Set(runs.map((r) => r.name)))}) ` +
    "without trapping, within deadline and memory";
  if (expectedErrors.length > 0) detail += `; failed as the manifest expects: ${expectedErrors.join(", ")}`;
  if (denied.length > 0) detail += `; reported errors after a denied host call: ${denied.join(", ")}`;
  return { passed: true, detail };
}

/** Whether a host call was denied since the `before`-th audit event. */
function _deniedSince(sandbox: _Sandbox, before: number): boolean {
  return sandbox.events.slice(before).some((e) => e.decision === "deny");
}

type DescribeResult = { output: string } | { error: string };

async function _callDescribe(sandbox: _Sandbox, plugin: string): Promise<DescribeResult> {
  try {
    const out = await sandbox.host.invoke(plugin, "describe", "", { hostContext: CALLER });
    return { output: new TextDecoder().decode(out) };
  } catch (error) {
    if (!(error instanceof PluginRuntimeError)) throw error;
    return { error: `${error.name}: ${error.message}` };
  }
}

/** An audit event as the checks read it; `count` when it stands for several decisions (e.g. calls past the cap). */
type Decided = { action: string; resource: string; decision: string; count?: number };

/** Decisions an event stands for. */
function _decisions(events: readonly Decided[]): number {
  return events.reduce((sum, e) => sum + (e.count ?? 1), 0);
}

function _footprint(events: readonly Decided[], manifest: Manifest | undefined): FootprintEntry[] {
  const byKey = new Map<string, FootprintEntry>();
  for (const { action, resource, decision, count = 1 } of events) {
    const key = `${action}\0${resource}`;
    const entry = byKey.get(key);
    const allowed = decision === "allow" ? count : 0;
    if (entry) {
      entry.count += count;
      entry.allowed += allowed;
    } else {
      byKey.set(key, {
        action,
        resource,
        count,
        allowed,
        declared: manifest?.capabilities.includes(action) ?? false,
      });
    }
  }
  return [...byKey.values()];
}

/** An audit event with the Cedar request it decided, when it has one. */
type DecidedRequest = Decided & {
  request?: { resource: { attrs: Record<string, unknown> }; context: Record<string, unknown> };
};

/** Adds the schemes and methods of `http.request` entries, which their resource (`Host::"name:port"`) lacks. */
function _httpDetails(footprint: FootprintEntry[], events: readonly DecidedRequest[]): void {
  const seen = new Map<string, { schemes: Set<string>; methods: Set<string> }>();
  for (const { action, resource, request } of events) {
    if (action !== "http.request" || request === undefined) continue;
    const details = seen.get(resource) ?? { schemes: new Set(), methods: new Set() };
    seen.set(resource, details);
    details.schemes.add(String(request.resource.attrs.scheme));
    details.methods.add(String(request.context.method));
  }
  for (const entry of footprint) {
    const details = entry.action === "http.request" ? seen.get(entry.resource) : undefined;
    if (details) entry.http = { schemes: [...details.schemes].sort(), methods: [...details.methods].sort() };
  }
}

function _checkPrivileges(events: readonly Decided[]): Outcome {
  const allowed = events.filter((e) => e.decision === "allow");
  if (allowed.length > 0) {
    const names = [...new Set(allowed.map((e) => `${e.action} ${e.resource}`))];
    return {
      passed: false,
      detail: `${_count(_decisions(allowed), "host call was", "host calls were")} allowed under an empty grant: ` +
        names.join(", "),
    };
  }
  return {
    passed: true,
    detail: events.length === 0
      ? "No host calls attempted"
      : `${_all(_decisions(events), "host call attempt was", "host call attempts were")} denied`,
  };
}

function _checkGranted(events: readonly Decided[]): Outcome {
  const refused = events.filter((e) => e.decision !== "allow");
  if (refused.length > 0) {
    const names = [...new Set(refused.map((e) => `${e.action} ${e.resource}`))];
    return {
      passed: false,
      detail: `${_count(_decisions(refused), "host call was", "host calls were")} denied: its grants do not permit ` +
        names.join(", "),
    };
  }
  return {
    passed: true,
    detail: events.length === 0
      ? "No host calls attempted"
      : `${_all(_decisions(events), "host call was", "host calls were")} permitted by its grants`,
  };
}

function _checkCapabilities(footprint: readonly FootprintEntry[], manifest: Manifest | undefined): Outcome {
  const attempts = new Map<string, number>();
  for (const { action, count } of footprint) attempts.set(action, (attempts.get(action) ?? 0) + count);
  const undeclared = footprint.filter((e) => !e.declared).map((e) => e.action);
  if (undeclared.length > 0) {
    const names = [...new Set(undeclared)].map((a) => `${JSON.stringify(a)} (${_count(attempts.get(a)!, "attempt")})`);
    return {
      passed: false,
      detail: `Attempted actions the manifest's capabilities do not declare: ${names.join(", ")}` +
        (manifest === undefined ? " (no manifest)" : ""),
    };
  }
  return {
    passed: true,
    detail: attempts.size === 0
      ? "No actions attempted"
      : `Every attempted action is declared: ${_quoteList(attempts.keys())}`,
  };
}

function _checkDescribe(result: DescribeResult, manifest: Manifest): Outcome {
  if ("error" in result) return { passed: false, detail: `"describe" failed: ${result.error}` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(result.output);
  } catch (error) {
    return {
      passed: false,
      detail: `"describe" output ${JSON.stringify(result.output.slice(0, 200))} is not JSON: ${
        (error as Error).message
      }`,
    };
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return { passed: false, detail: `"describe" output is not a JSON object: ${result.output.slice(0, 200)}` };
  }
  const { name, version, exports } = parsed as Record<string, unknown>;
  const problems: string[] = [];
  if (name !== manifest.name) {
    problems.push(`name ${JSON.stringify(name)} is not the manifest's ${JSON.stringify(manifest.name)}`);
  }
  if (version !== manifest.version) {
    problems.push(`version ${JSON.stringify(version)} is not the manifest's ${JSON.stringify(manifest.version)}`);
  }
  if (!Array.isArray(exports) || !exports.every((e) => typeof e === "string")) {
    problems.push(`exports ${JSON.stringify(exports)} is not a list of names`);
  } else {
    const declared = new Set(manifest.exports.map((e) => e.name));
    const described = new Set(exports);
    const missing = [...declared].filter((e) => !described.has(e));
    const extra = [...described].filter((e) => !declared.has(e));
    if (missing.length > 0) problems.push(`exports lack ${_quoteList(missing)}`);
    if (extra.length > 0) problems.push(`exports add ${_quoteList(extra)}, which the manifest does not declare`);
  }
  if (problems.length > 0) {
    return { passed: false, detail: `"describe" does not match the manifest: ${problems.join("; ")}` };
  }
  return {
    passed: true,
    detail: `"describe" matches the manifest: ${manifest.name} ${manifest.version} with ${
      _count(manifest.exports.length, "export")
    }`,
  };
}
