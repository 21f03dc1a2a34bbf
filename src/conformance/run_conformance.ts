import type { Manifest } from "../registry/mod.ts";
import {
  DEFAULT_LIMITS,
  EXTISM_HOST_FUNCTIONS,
  inspectModule,
  type ModuleInfo,
  type PluginLimits,
  PluginReportedError,
  PluginRuntimeError,
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
  /** Whether the manifest lists the action in its `capabilities`. */
  declared: boolean;
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
  /** Every check, always all of them, in a fixed order. */
  checks: Check[];
  /** Every host call attempted (and denied) during the run, by action and resource. */
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
}

const CHECKS = [
  ["module.valid", "Valid module"],
  ["imports.known", "Imports only host functions"],
  ["memory.cap", "One memory within the cap"],
  ["exports.declared", "Declared exports exist"],
  ["instantiate.empty-grant", "Instantiates under an empty grant"],
  ["exports.run", "Declared exports run on their samples"],
  ["privileges.none", "Performs no privileged operation"],
  ["capabilities.declared", "Attempts only declared capabilities"],
  ["describe.matches", "Describe matches the manifest"],
] as const;

type CheckId = (typeof CHECKS)[number][0];
type Outcome = { passed: boolean; skipped?: true; detail: string };

const CALLER = { caller: "conformance" };

/**
 * Runs keycard's admission suite on a plugin: static checks of the module,
 * then a real run in a worker isolate under an empty grant (only
 * `policies/base.cedar`, nothing permitted, a fresh temp data root and
 * key-value store), every declared export on each of its manifest samples,
 * with the host calls it attempts recorded as its capability footprint.
 *
 * The checks, in order: `module.valid`, `imports.known`, `memory.cap`,
 * `exports.declared`, `instantiate.empty-grant`, `exports.run`,
 * `privileges.none`, `capabilities.declared`, `describe.matches`. A malformed
 * module fails `module.valid` and every other check is skipped; a plugin that
 * does not instantiate skips the checks that need it to run.
 *
 * @param wasm The module's bytes.
 * @param options The manifest, and the limits of the run.
 * @returns The report; `passed` says whether the plugin is conformant. A
 * failing plugin is a report, never an exception.
 * @throws {Deno.errors.NotFound} When `policies/keycard.cedarschema` or
 * `policies/base.cedar` cannot be read.
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
  const outcomes = new Map<CheckId, Outcome>();
  const footprint: FootprintEntry[] = [];
  const sha256 = await _sha256(wasm);

  const report = (): ConformanceReport => {
    const checks = CHECKS.map(([id, name]): Check => {
      const outcome = outcomes.get(id) ?? { passed: false, skipped: true, detail: "Skipped: the module is malformed" };
      return { id, name, ...outcome };
    });
    return {
      plugin,
      version,
      sha256,
      passed: checks.every((check) => check.passed || check.skipped),
      durationMs: Math.round(performance.now() - started),
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

  await using sandbox = await _openSandbox(limits, manifest?.config ?? {});
  outcomes.set("imports.known", _checkImports(info, sandbox.hostFunctionNames));
  outcomes.set("memory.cap", _checkMemory(info, limits.memoryPages));
  outcomes.set("exports.declared", _checkDeclaredExports(info, manifest));

  const skipped = (detail: string): Outcome => ({ passed: false, skipped: true, detail });
  const loadStarted = performance.now();
  try {
    await sandbox.host.load(wasm, { name: plugin, version, config: { ...manifest?.config } });
    outcomes.set("instantiate.empty-grant", {
      passed: true,
      detail: `Instantiated with no grants in ${Math.round(performance.now() - loadStarted)} ms`,
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

  outcomes.set("exports.run", await _runSamples(sandbox, plugin, info, manifest));
  const describe = info.exports.some((e) => e.name === "describe" && e.kind === "function")
    ? await _callDescribe(sandbox, plugin)
    : undefined;

  footprint.push(..._footprint(sandbox.events, manifest));
  outcomes.set("privileges.none", _checkPrivileges(sandbox.events));
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

async function _runSamples(
  sandbox: _Sandbox,
  plugin: string,
  info: ModuleInfo,
  manifest: Manifest | undefined,
): Promise<Outcome> {
  if (manifest === undefined) return { passed: true, detail: "No manifest: nothing to run" };
  const failures: string[] = [];
  const reported: string[] = [];
  const unsampled: string[] = [];
  let runs = 0;
  for (const { name, samples } of manifest.exports) {
    // A declared export the module lacks already fails exports.declared.
    if (!info.exports.some((e) => e.name === name && e.kind === "function")) continue;
    if (samples.length === 0) unsampled.push(name);
    for (const sample of samples) {
      runs++;
      const where = `${JSON.stringify(name)} on sample ${JSON.stringify(sample)}`;
      try {
        await sandbox.host.invoke(plugin, name, sample, { hostContext: CALLER });
      } catch (error) {
        if (error instanceof PluginReportedError) reported.push(where);
        else if (error instanceof PluginRuntimeError) failures.push(`${where} failed: ${error.name}: ${error.message}`);
        else throw error;
      }
    }
  }
  if (failures.length > 0) return { passed: false, detail: failures.join("; ") };
  let detail = runs === 0
    ? "No declared export has samples: nothing ran"
    : `Ran ${_count(runs, "sample")} without trapping, within deadline and memory`;
  if (reported.length > 0) detail += `; reported errors of their own: ${reported.join(", ")}`;
  if (unsampled.length > 0 && runs > 0) detail += `; no samples for ${_quoteList(unsampled)}`;
  return { passed: true, detail };
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

function _footprint(events: readonly { action: string; resource: string }[], manifest: Manifest | undefined) {
  const byKey = new Map<string, FootprintEntry>();
  for (const { action, resource } of events) {
    const key = `${action}\0${resource}`;
    const entry = byKey.get(key);
    if (entry) entry.count++;
    else byKey.set(key, { action, resource, count: 1, declared: manifest?.capabilities.includes(action) ?? false });
  }
  return [...byKey.values()];
}

function _checkPrivileges(events: readonly { action: string; resource: string; decision: string }[]): Outcome {
  const allowed = events.filter((e) => e.decision === "allow");
  if (allowed.length > 0) {
    const names = [...new Set(allowed.map((e) => `${e.action} ${e.resource}`))];
    return {
      passed: false,
      detail: `${_count(allowed.length, "host call was", "host calls were")} allowed under an empty grant: ` +
        names.join(", "),
    };
  }
  return {
    passed: true,
    detail: events.length === 0
      ? "No host calls attempted"
      : `${_all(events.length, "host call attempt was", "host call attempts were")} denied`,
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
