import type { ProposalReport } from "../lifecycle/mod.ts";
import type { ConformanceReport } from "./run_conformance.ts";

/** The output formats of {@linkcode formatReport}. */
export type ReportFormat = "text" | "json" | "junit";

/** The formats {@linkcode formatReport} accepts, for argument checks. */
export const REPORT_FORMATS: readonly ReportFormat[] = Object.freeze(["text", "json", "junit"]);

/**
 * Renders a conformance report for people, for programs or for CI.
 *
 * - `text`: one line per check (`PASS`, `FAIL` or `SKIP`, its id, its
 *   detail), the capability footprint, the proposal when there is one
 *   ({@linkcode formatProposal}), then a summary line.
 * - `json`: the report itself, indented (with its `proposal` field).
 * - `junit`: JUnit XML, one `<testsuite name="keycard conformance: <plugin>">`
 *   with one `<testcase classname="keycard.conformance">` per check, so that
 *   CI systems show each check as a test; the footprint, and the proposal as
 *   text, in the suite's `<system-out>` (a proposal is no test: it neither
 *   passes nor fails).
 *
 * @param report The report {@linkcode runConformance} returned.
 * @param format The output format.
 * @returns The rendered report, ending with a newline.
 * @throws {TypeError} When the format is not one of `text`, `json`, `junit`.
 *
 * @example Render a report as text
 * ```ts
 * import { formatReport } from "./format_report.ts";
 * const text = formatReport({
 *   plugin: "hello",
 *   version: "1.0.0",
 *   sha256: "0".repeat(64),
 *   passed: true,
 *   durationMs: 12,
 *   checks: [{ id: "module.valid", name: "Valid module", passed: true, detail: "Well-formed module" }],
 *   footprint: [],
 *   grants: "empty",
 *   requestedLimits: {},
 * }, "text");
 * text.includes("PASS module.valid"); // true
 * ```
 */
export function formatReport(report: ConformanceReport | ProposalReport, format: ReportFormat): string {
  switch (format) {
    case "text":
      return _text(report);
    case "json":
      return `${JSON.stringify(report, null, 2)}\n`;
    case "junit":
      return _junit(report);
    default:
      throw new TypeError(
        `Cannot format a report as ${JSON.stringify(format)}: expected one of ${REPORT_FORMATS.join(", ")}`,
      );
  }
}

function _status(check: ConformanceReport["checks"][number]): "PASS" | "FAIL" | "SKIP" {
  return check.skipped ? "SKIP" : check.passed ? "PASS" : "FAIL";
}

function _tally(report: ConformanceReport): { tests: number; failures: number; skipped: number } {
  const skipped = report.checks.filter((c) => c.skipped).length;
  const failures = report.checks.filter((c) => !c.skipped && !c.passed).length;
  return { tests: report.checks.length, failures, skipped };
}

function _text(report: ConformanceReport | ProposalReport): string {
  const lines = [`keycard conformance: ${report.plugin} ${report.version} (sha256 ${report.sha256})`];
  const width = Math.max(0, ...report.checks.map((c) => c.id.length));
  const indent = `\n${" ".repeat(width + 7)}`;
  for (const check of report.checks) {
    lines.push(`${_status(check)} ${check.id.padEnd(width)}  ${check.detail.replace(/\r?\n/g, indent)}`);
  }
  lines.push(`limits asked for: ${_limits(report)}`);
  if (report.footprint.length === 0) {
    lines.push("footprint: no host calls attempted");
  } else {
    lines.push(
      report.grants === "grants"
        ? "footprint (host calls attempted under its grants):"
        : "footprint (host calls attempted, all under an empty grant):",
    );
    for (const entry of report.footprint) {
      const declared = entry.declared ? "declared" : "NOT DECLARED";
      const allowed = report.grants === "grants" ? `, ${entry.allowed} permitted` : "";
      const http = entry.http ? `; ${entry.http.schemes.join(", ")} ${entry.http.methods.join(", ")}` : "";
      lines.push(`  ${entry.action} ${entry.resource} x${entry.count} (${declared}${allowed}${http})`);
    }
  }
  if ("proposal" in report) lines.push(formatProposal(report.proposal).trimEnd());
  const { tests, failures, skipped } = _tally(report);
  lines.push(
    `${report.plugin} ${report.version} is ${report.passed ? "conformant" : "not conformant"}: ` +
      `${tests - failures - skipped} passed, ${failures} failed, ${skipped} skipped in ${report.durationMs} ms`,
  );
  return `${lines.join("\n")}\n`;
}

/**
 * Renders a proposed least grant for people: the `plugin.yaml` snippet, the
 * Cedar it compiles to, the attempts that cannot be granted and the grants
 * of the manifest wider than what was used.
 *
 * @param proposal The proposal of a {@linkcode ProposalReport}.
 * @returns The text, ending with a newline.
 *
 * @example Render a proposal of one grant
 * ```ts
 * import { formatProposal } from "./format_report.ts";
 * const text = formatProposal({
 *   plugin: "stamp",
 *   grants: [{ "clock.now": {} }],
 *   yaml: "grants:\n  - clock.now: {} # 1 attempt\n",
 *   cedar: '@id("grant.stamp.1")\npermit (principal == Plugin::"stamp", action == Action::"clock.now", resource);',
 *   cannotGrant: [],
 *   warnings: [],
 *   runs: 2,
 *   footprint: [],
 * });
 * text.includes("  - clock.now: {}"); // true
 * ```
 */
export function formatProposal(proposal: ProposalReport["proposal"]): string {
  const indent = (text: string) => text.trimEnd().split("\n").map((line) => line === "" ? "" : `  ${line}`);
  const lines = [
    `proposed least grant for ${proposal.plugin} (from ${proposal.runs === 1 ? "1 run" : `${proposal.runs} runs`}), ` +
    "for plugin.yaml:",
    ...indent(proposal.yaml),
    proposal.cedar === "" ? "which compiles to no Cedar: nothing is permitted" : "which compiles to this Cedar:",
    ...(proposal.cedar === "" ? [] : indent(proposal.cedar)),
  ];
  if (proposal.cannotGrant.length > 0) {
    lines.push("cannot be granted (left out):");
    for (const a of proposal.cannotGrant) lines.push(`  ${a.action} ${a.resource} x${a.count}: ${a.reason}`);
  }
  if (proposal.warnings.length > 0) {
    lines.push("warnings (grants of the manifest wider than what was used):");
    for (const w of proposal.warnings) lines.push(`  grant ${w.grant} (${w.text}) ${w.message}`);
  }
  return `${lines.join("\n")}\n`;
}

/** The manifest's `limits`, as `deadlineMs 250, memoryPages 32`, or what applies without them. */
function _limits(report: ConformanceReport): string {
  const entries = Object.entries(report.requestedLimits);
  return entries.length === 0 ? "none (the host's defaults)" : entries.map(([k, v]) => `${k} ${v}`).join(", ");
}

/** Characters XML 1.0 cannot carry: C0 controls but tab and newlines, U+FFFE/U+FFFF, lone surrogates. */
const _NOT_XML =
  // deno-lint-ignore no-control-regex
  /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Escapes text for XML content and attributes; what XML cannot carry becomes U+FFFD.
 * @param text Any text.
 * @returns The text, safe inside an element or a quoted attribute.
 */
export function escapeXml(text: string): string {
  return text
    .replace(_NOT_XML, "\uFFFD")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;")
    // Attribute values normalize raw newlines and tabs away; keep them.
    .replace(/\n/g, "&#10;")
    .replace(/\r/g, "&#13;")
    .replace(/\t/g, "&#9;");
}

function _junit(report: ConformanceReport | ProposalReport): string {
  const { tests, failures, skipped } = _tally(report);
  const time = (report.durationMs / 1000).toFixed(3);
  const counts = `tests="${tests}" failures="${failures}" errors="0" skipped="${skipped}" time="${time}"`;
  const suite = escapeXml(`keycard conformance: ${report.plugin}`);
  const out = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<testsuites name="${suite}" ${counts}>`,
    `  <testsuite name="${suite}" ${counts}>`,
    `    <properties>`,
    `      <property name="plugin" value="${escapeXml(report.plugin)}"/>`,
    `      <property name="version" value="${escapeXml(report.version)}"/>`,
    `      <property name="sha256" value="${escapeXml(report.sha256)}"/>`,
    `      <property name="grants" value="${escapeXml(report.grants)}"/>`,
    `      <property name="requestedLimits" value="${escapeXml(_limits(report))}"/>`,
    `    </properties>`,
  ];
  for (const check of report.checks) {
    const name = escapeXml(`${check.id}: ${check.name}`);
    const open = `    <testcase classname="keycard.conformance" name="${name}"`;
    if (check.skipped) {
      out.push(`${open}>`, `      <skipped message="${escapeXml(check.detail)}"/>`, `    </testcase>`);
    } else if (!check.passed) {
      out.push(
        `${open}>`,
        `      <failure message="${escapeXml(check.detail)}" type="${escapeXml(check.id)}">${
          escapeXml(check.detail)
        }</failure>`,
        `    </testcase>`,
      );
    } else {
      out.push(`${open}>`, `      <system-out>${escapeXml(check.detail)}</system-out>`, `    </testcase>`);
    }
  }
  const footprint = report.footprint.map((e) =>
    `${e.action} ${e.resource} x${e.count}${e.declared ? "" : " (not declared)"}`
  );
  let systemOut = footprint.length ? footprint.join("\n") : "no host calls attempted";
  if ("proposal" in report) systemOut += `\n\n${formatProposal(report.proposal)}`;
  out.push(
    `    <system-out>${escapeXml(systemOut)}</system-out>`,
    `  </testsuite>`,
    `</testsuites>`,
  );
  return `${out.join("\n")}\n`;
}
