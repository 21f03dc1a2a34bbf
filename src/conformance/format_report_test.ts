import assert from "node:assert/strict";
import { watFixture } from "../../tests/_test_utils.ts";
import { parseManifest } from "../registry/mod.ts";
import { formatReport, type ReportFormat } from "./format_report.ts";
import { type ConformanceReport, runConformance } from "./run_conformance.ts";

const NASTY = `quote " apostrophe ' <tag> & amp; control \u0001 lone \uD800 newline\nend`;

const SYNTHETIC: ConformanceReport = {
  plugin: `a"b<c>&d`,
  version: "1.0.0",
  sha256: "0".repeat(64),
  passed: false,
  durationMs: 1234,
  grants: "empty",
  requestedLimits: { deadlineMs: 250, memoryPages: 32 },
  checks: [
    { id: "module.valid", name: "Valid module", passed: true, detail: "Well-formed" },
    { id: "exports.run", name: "Declared exports run on their samples", passed: false, detail: NASTY },
    { id: "describe.matches", name: "Describe matches the manifest", passed: false, skipped: true, detail: "No" },
  ],
  footprint: [{ action: "fs.read", resource: 'File::"/a&b.txt"', count: 3, allowed: 0, declared: false }],
};

interface Element {
  name: string;
  attributes: Record<string, string>;
  children: Element[];
  text: string;
}

/**
 * A loose XML parser, enough to prove the JUnit output well formed: tags
 * balance, attribute values are quoted and hold no raw `<` or `"`, every `&`
 * starts an entity, no character XML forbids. Throws otherwise.
 */
function parseXml(xml: string): Element {
  // deno-lint-ignore no-control-regex
  assert.doesNotMatch(xml, /[\u0000-\u0008\u000B\u000C\u000E-\u001F]/, "a control character XML forbids");
  assert.doesNotMatch(xml, /&(?!(?:amp|lt|gt|quot|apos|#\d+);)/, "a bare &");
  const body = xml.replace(/^<\?xml [^?]*\?>\s*/, "");
  const root: Element = { name: "#document", attributes: {}, children: [], text: "" };
  const stack = [root];
  const token = /<\/([\w.-]+)\s*>|<([\w.-]+)((?:\s+[\w.-]+="[^"<]*")*)\s*(\/?)>|([^<]+)/gy;
  let match: RegExpExecArray | null;
  let consumed = 0;
  while ((match = token.exec(body)) !== null) {
    consumed = token.lastIndex;
    const [, close, open, attributeText, selfClosing, text] = match;
    const top = stack.at(-1)!;
    if (close !== undefined) {
      assert.equal(close, top.name, `</${close}> closes <${top.name}>`);
      stack.pop();
    } else if (open !== undefined) {
      const attributes: Record<string, string> = {};
      for (const [, key, value] of (attributeText ?? "").matchAll(/([\w.-]+)="([^"]*)"/g)) {
        assert.ok(!(key! in attributes), `duplicate attribute ${key}`);
        attributes[key!] = _unescape(value!);
      }
      const element: Element = { name: open, attributes, children: [], text: "" };
      top.children.push(element);
      if (!selfClosing) stack.push(element);
    } else {
      top.text += _unescape(text!);
    }
  }
  assert.equal(consumed, body.length, `unparsable XML at ${JSON.stringify(body.slice(consumed, consumed + 40))}`);
  assert.equal(stack.length, 1, `unclosed <${stack.at(-1)!.name}>`);
  assert.equal(root.children.length, 1, "one root element");
  return root.children[0]!;
}

function _unescape(text: string): string {
  return text.replace(
    /&(amp|lt|gt|quot|apos|#\d+);/g,
    (_, entity: string) =>
      entity.startsWith("#")
        ? String.fromCharCode(Number(entity.slice(1)))
        : { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" }[entity]!,
  );
}

function all(element: Element, name: string): Element[] {
  return [
    ...element.children.filter((c) => c.name === name),
    ...element.children.flatMap((c) => all(c, name)),
  ];
}

function assertJunitMatches(xml: string, report: ConformanceReport): void {
  const root = parseXml(xml);
  assert.equal(root.name, "testsuites");
  const [suite, ...more] = all(root, "testsuite");
  assert.ok(suite);
  assert.equal(more.length, 0);
  assert.equal(suite.attributes.name, `keycard conformance: ${report.plugin}`);
  const failures = report.checks.filter((c) => !c.passed && !c.skipped);
  const skipped = report.checks.filter((c) => c.skipped);
  for (const element of [root, suite]) {
    assert.equal(element.attributes.tests, String(report.checks.length));
    assert.equal(element.attributes.failures, String(failures.length));
    assert.equal(element.attributes.skipped, String(skipped.length));
    assert.equal(element.attributes.time, (report.durationMs / 1000).toFixed(3));
  }
  const cases = all(suite, "testcase");
  assert.deepEqual(cases.map((c) => c.attributes.name), report.checks.map((c) => `${c.id}: ${c.name}`));
  assert.ok(cases.every((c) => c.attributes.classname === "keycard.conformance"));
  assert.equal(all(suite, "failure").length, failures.length);
  assert.equal(all(suite, "skipped").length, skipped.length);
  for (const [index, check] of report.checks.entries()) {
    const failure = all(cases[index]!, "failure")[0];
    if (!check.passed && !check.skipped) {
      assert.ok(failure, `${check.id} has no <failure>`);
      assert.equal(
        failure.attributes.message,
        check.detail.replaceAll("\u0001", "\uFFFD").replaceAll("\uD800", "\uFFFD"),
      );
      assert.equal(failure.text, failure.attributes.message);
    } else {
      assert.equal(failure, undefined);
    }
  }
}

Deno.test("formatReport() writes well-formed JUnit whose counts match, escaping what XML cannot hold", () => {
  const xml = formatReport(SYNTHETIC, "junit");
  assertJunitMatches(xml, SYNTHETIC);
  assert.ok(xml.includes("&quot;"));
  assert.ok(!xml.includes("\u0001"));
});

Deno.test("formatReport() writes JUnit for a real failing run", async () => {
  const manifest = parseManifest(
    "name: trap\nversion: 1.0.0\nexports: [{ name: unreachable, samples: [''] }]\n",
    "plugin.yaml",
  );
  const report = await runConformance(await watFixture("trap"), { manifest });
  assert.equal(report.passed, false);
  assertJunitMatches(formatReport(report, "junit"), report);
});

Deno.test("formatReport() writes one text line per check, the footprint and a summary", () => {
  const lines = formatReport(SYNTHETIC, "text").trimEnd().split("\n");
  assert.match(lines[0]!, /^keycard conformance: a"b<c>&d 1\.0\.0 \(sha256 0{64}\)$/);
  assert.match(lines[1]!, /^PASS module\.valid +Well-formed$/);
  assert.match(lines[2]!, /^FAIL exports\.run +quote " apostrophe/);
  assert.ok(lines.some((l) => /^SKIP describe\.matches +No$/.test(l)));
  assert.ok(lines.includes('  fs.read File::"/a&b.txt" x3 (NOT DECLARED)'));
  assert.equal(lines.at(-1), 'a"b<c>&d 1.0.0 is not conformant: 1 passed, 1 failed, 1 skipped in 1234 ms');
});

Deno.test("formatReport() writes the report itself as JSON", () => {
  assert.deepEqual(JSON.parse(formatReport(SYNTHETIC, "json")), SYNTHETIC);
});

Deno.test("formatReport() refuses an unknown format", () => {
  assert.throws(
    () => formatReport(SYNTHETIC, "xml" as ReportFormat),
    new TypeError('Cannot format a report as "xml": expected one of text, json, junit'),
  );
});
