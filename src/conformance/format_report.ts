import type { ConformanceReport } from "./run_conformance.ts";

/** The output formats of {@linkcode formatReport}. */
export type ReportFormat = "text" | "json" | "junit";

/** The formats {@linkcode formatReport} accepts, for argument checks. */
export const REPORT_FORMATS: readonly ReportFormat[] = Object.freeze(["text", "json", "junit"]);

/**
 * Renders a conformance report for people, for programs or for CI.
 *
 * - `text`: one line per check (`PASS`, `FAIL` or `SKIP`, its id, its
 *   detail), the capability footprint, then a summary line.
 * - `json`: the report itself, indented.
 * - `junit`: JUnit XML, one `<testsuite name="keycard conformance: <plugin>">`
 *   with one `<testcase classname="keycard.conformance">` per check, so that
 *   CI systems show each check as a test.
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
export function formatReport(report: ConformanceReport, format: ReportFormat): string {
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

function _text(report: ConformanceReport): string {
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
      lines.push(`  ${entry.action} ${entry.resource} x${entry.count} (${declared}${allowed})`);
    }
  }
  const { tests, failures, skipped } = _tally(report);
  lines.push(
    `${report.plugin} ${report.version} is ${report.passed ? "conformant" : "not conformant"}: ` +
      `${tests - failures - skipped} passed, ${failures} failed, ${skipped} skipped in ${report.durationMs} ms`,
  );
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

/** Escapes text for XML content and attributes; what XML cannot carry becomes U+FFFD. */
function _xml(text: string): string {
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

function _junit(report: ConformanceReport): string {
  const { tests, failures, skipped } = _tally(report);
  const time = (report.durationMs / 1000).toFixed(3);
  const counts = `tests="${tests}" failures="${failures}" errors="0" skipped="${skipped}" time="${time}"`;
  const suite = _xml(`keycard conformance: ${report.plugin}`);
  const out = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<testsuites name="${suite}" ${counts}>`,
    `  <testsuite name="${suite}" ${counts}>`,
    `    <properties>`,
    `      <property name="plugin" value="${_xml(report.plugin)}"/>`,
    `      <property name="version" value="${_xml(report.version)}"/>`,
    `      <property name="sha256" value="${_xml(report.sha256)}"/>`,
    `      <property name="grants" value="${_xml(report.grants)}"/>`,
    `      <property name="requestedLimits" value="${_xml(_limits(report))}"/>`,
    `    </properties>`,
  ];
  for (const check of report.checks) {
    const name = _xml(`${check.id}: ${check.name}`);
    const open = `    <testcase classname="keycard.conformance" name="${name}"`;
    if (check.skipped) {
      out.push(`${open}>`, `      <skipped message="${_xml(check.detail)}"/>`, `    </testcase>`);
    } else if (!check.passed) {
      out.push(
        `${open}>`,
        `      <failure message="${_xml(check.detail)}" type="${_xml(check.id)}">${_xml(check.detail)}</failure>`,
        `    </testcase>`,
      );
    } else {
      out.push(`${open}>`, `      <system-out>${_xml(check.detail)}</system-out>`, `    </testcase>`);
    }
  }
  const footprint = report.footprint.map((e) =>
    `${e.action} ${e.resource} x${e.count}${e.declared ? "" : " (not declared)"}`
  );
  out.push(
    `    <system-out>${_xml(footprint.length ? footprint.join("\n") : "no host calls attempted")}</system-out>`,
    `  </testsuite>`,
    `</testsuites>`,
  );
  return `${out.join("\n")}\n`;
}
