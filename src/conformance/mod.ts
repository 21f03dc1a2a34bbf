/**
 * The admission suite: checks a plugin's module and manifest, runs it in a
 * real isolate under an empty grant, and reports whether it is conformant,
 * with the host calls it attempted as its capability footprint. One
 * implementation behind `deno task conform` and the gateway's conformance
 * endpoint.
 *
 * @example Check a plugin and print a JUnit report
 * ```ts ignore
 * import { formatReport, runConformance } from "./mod.ts";
 * import { parseManifest } from "../registry/mod.ts";
 * const manifest = parseManifest(await Deno.readTextFile("plugins/stamp/plugin.yaml"), "plugin.yaml");
 * const report = await runConformance(await Deno.readFile("plugins/stamp/build/plugin.wasm"), { manifest });
 * console.log(formatReport(report, "junit"));
 * ```
 *
 * @module
 */
export { escapeXml, formatProposal, formatReport, REPORT_FORMATS, type ReportFormat } from "./format_report.ts";
export {
  type Check,
  type ConformanceReport,
  type FootprintEntry,
  runConformance,
  type RunConformanceOptions,
} from "./run_conformance.ts";
// The types the options refer to, so that the documentation is complete here.
export type { Manifest, ManifestExport } from "../registry/mod.ts";
export type { Grant, GrantKinds } from "../policy/mod.ts";
export type { PluginLimits } from "../runtime/mod.ts";
