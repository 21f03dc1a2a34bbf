// The admission suite against real plugins in real isolates, under real Cedar.
import assert from "node:assert/strict";
import { examplePlugin, watFixture } from "../../tests/_test_utils.ts";
import { compileWat } from "../../tests/_wat.ts";
import { type Manifest, parseManifest } from "../registry/mod.ts";
import { type Check, type ConformanceReport, runConformance } from "./run_conformance.ts";

const ROOT = new URL("../../", import.meta.url);

const IDS = [
  "module.valid",
  "imports.known",
  "memory.cap",
  "exports.declared",
  "instantiate.empty-grant",
  "exports.run",
  "privileges.none",
  "capabilities.declared",
  "describe.matches",
];

async function manifestAt(path: string): Promise<Manifest> {
  return parseManifest(await Deno.readTextFile(new URL(path, ROOT)), path);
}

function check(report: ConformanceReport, id: string): Check {
  const found = report.checks.find((c) => c.id === id);
  assert.ok(found, `no check "${id}"`);
  return found;
}

/** Asserts exactly `failed` failed and `skipped` were skipped; every other check passed. */
function assertOutcome(report: ConformanceReport, failed: string[], skipped: string[] = []): void {
  assert.deepEqual(report.checks.map((c) => c.id), IDS);
  for (const c of report.checks) {
    const expected = failed.includes(c.id) ? "fail" : skipped.includes(c.id) ? "skip" : "pass";
    const actual = c.skipped ? "skip" : c.passed ? "pass" : "fail";
    assert.equal(actual, expected, `${c.id}: ${c.detail}`);
  }
  assert.equal(report.passed, failed.length === 0);
}

Deno.test("runConformance() passes hello with its manifest on every check", async () => {
  const manifest = await manifestAt("plugins/hello/plugin.yaml");
  const report = await runConformance(await examplePlugin("hello"), { manifest });
  assertOutcome(report, []);
  assert.equal(report.plugin, "hello");
  assert.equal(report.version, "1.0.0");
  assert.match(report.sha256, /^[0-9a-f]{64}$/);
  assert.deepEqual(report.footprint, []);
  assert.equal(check(report, "privileges.none").detail, "No host calls attempted");
  assert.match(check(report, "exports.run").detail, /^Ran 10 calls \("greet", "echo", .*\) without trapping/);
  assert.match(check(report, "describe.matches").detail, /matches the manifest: hello 1\.0\.0 with 6 exports/);
});

Deno.test("runConformance() passes stamp: every host call it attempts is denied and declared", async () => {
  const manifest = await manifestAt("plugins/stamp/plugin.yaml");
  const report = await runConformance(await examplePlugin("stamp"), { manifest });
  assertOutcome(report, []);
  const actions = new Set(report.footprint.map((e) => e.action));
  for (const action of ["clock.now", "random.get", "log.write", "kv.get", "fs.read"]) {
    assert.ok(actions.has(action), `footprint lacks ${action}: ${JSON.stringify(report.footprint)}`);
  }
  // kv_counter stops at its denied kv.get, so kv.set is never attempted.
  assert.ok(!actions.has("kv.set"));
  assert.ok(report.footprint.every((e) => e.declared));
  const stamp = report.footprint.find((e) => e.action === "clock.now");
  assert.deepEqual(stamp, { action: "clock.now", resource: 'Runtime::"clock"', count: 2, allowed: 0, declared: true });
  assert.ok(report.footprint.some((e) => e.resource === 'File::"/data/stamp/hello.txt"'));
  const attempts = report.footprint.reduce((sum, e) => sum + e.count, 0);
  assert.equal(check(report, "privileges.none").detail, `All ${attempts} host call attempts were denied`);
  // Denied host calls are values the plugin reports, not traps: handling them is conformant.
  assert.match(check(report, "exports.run").detail, /reported errors after a denied host call: "kv_counter" on empty/);
  assert.match(check(report, "exports.run").detail, /failed as the manifest expects: "read_file" on "data\/stamp/);
  assert.deepEqual(report.requestedLimits, {});
});

Deno.test("runConformance() fails capabilities.declared for an attempt the manifest does not declare", async () => {
  const manifest = await manifestAt("tests/testdata/conform_undeclared.yaml");
  const report = await runConformance(await watFixture("conform_undeclared"), { manifest });
  assertOutcome(report, ["capabilities.declared"], ["describe.matches"]);
  assert.match(check(report, "capabilities.declared").detail, /do not declare: "env\.get" \(1 attempt\)/);
  assert.deepEqual(report.footprint, [
    { action: "env.get", resource: 'EnvVar::"undeclared/REGION"', count: 1, allowed: 0, declared: false },
  ]);
  // Configured, and still not read: the grant is empty.
  assert.equal(check(report, "privileges.none").detail, "The one host call attempt was denied");
});

Deno.test("runConformance() fails exports.run for a trap, naming the export and the sample", async () => {
  const manifest = await manifestAt("tests/testdata/conform_trap.yaml");
  const report = await runConformance(await watFixture("trap"), { manifest });
  assertOutcome(report, ["exports.run"], ["describe.matches"]);
  assert.match(check(report, "exports.run").detail, /^"unreachable" on empty input failed: PluginTrapError: /);
});

Deno.test("runConformance() fails exports.run when a sample passes the deadline", async () => {
  const manifest = parseManifest(
    "name: spinner\nversion: 1.0.0\nexports: [{ name: spin, samples: [go] }]\n",
    "spinner.yaml",
  );
  const started = performance.now();
  const report = await runConformance(await watFixture("infinite_loop"), { manifest, limits: { deadlineMs: 200 } });
  assertOutcome(report, ["exports.run"], ["describe.matches"]);
  assert.match(check(report, "exports.run").detail, /"spin" on "go" failed: PluginDeadlineError: .*200 ms/);
  assert.ok(performance.now() - started < 5000);
});

Deno.test("runConformance() fails imports.known naming each unknown import, and does not instantiate", async () => {
  const report = await runConformance(await watFixture("unknown_import"));
  assertOutcome(report, ["imports.known", "instantiate.empty-grant"], [
    "exports.run",
    "privileges.none",
    "capabilities.declared",
    "describe.matches",
  ]);
  assert.match(check(report, "imports.known").detail, /"env" "abort" \(function\)/);
  assert.equal(report.plugin, "plugin");
  assert.equal(report.version, "0.0.0");
});

Deno.test("runConformance() fails module.valid for malformed bytes and skips the rest", async () => {
  const report = await runConformance(new TextEncoder().encode("not wasm at all"));
  assertOutcome(report, ["module.valid"], IDS.slice(1));
  assert.match(check(report, "module.valid").detail, /^Malformed module: .*byte 0/);
  assert.ok(report.checks.slice(1).every((c) => c.passed === false && c.skipped === true));
});

Deno.test("runConformance() fails module.valid for a well-framed module WebAssembly refuses", async () => {
  // Header and a type section that frame correctly, but type 0x00 is no valid form.
  const report = await runConformance(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 2, 1, 0]));
  assertOutcome(report, ["module.valid"], IDS.slice(1));
  assert.match(check(report, "module.valid").detail, /^Malformed module: /);
});

Deno.test("runConformance() fails exports.declared for a declared export the module lacks", async () => {
  const manifest = parseManifest(
    "name: hello\nversion: 1.0.0\nexports:\n  - { name: greet, samples: [x] }\n  - { name: nope, samples: [x] }\n",
    "plugin.yaml",
  );
  const report = await runConformance(await examplePlugin("hello"), { manifest });
  assertOutcome(report, ["exports.declared", "describe.matches"]);
  assert.match(check(report, "exports.declared").detail, /"nope" is not exported/);
  assert.match(check(report, "exports.run").detail, /Ran 1 call \("greet"\) /);
});

Deno.test("runConformance() fails describe.matches when describe disagrees with the manifest", async () => {
  const manifest = await manifestAt("tests/testdata/conform_describe_mismatch.yaml");
  const report = await runConformance(await watFixture("conform_describe_mismatch"), { manifest });
  assertOutcome(report, ["describe.matches"]);
  const { detail } = check(report, "describe.matches");
  assert.match(detail, /name "other" is not the manifest's "describer"/);
  assert.match(detail, /version "9\.9\.9" is not the manifest's "1\.0\.0"/);
  assert.match(detail, /exports add "extra"/);
});

Deno.test("runConformance() fails memory.cap for a maximum over the cap", async () => {
  const wasm = await compileWat(
    `(module (memory (export "memory") 1 512) (func (export "run") (result i32) (i32.const 0)))`,
  );
  const report = await runConformance(wasm, { limits: { memoryPages: 256 } });
  assertOutcome(report, ["memory.cap", "instantiate.empty-grant"], [
    "exports.run",
    "privileges.none",
    "capabilities.declared",
    "describe.matches",
  ]);
  assert.match(check(report, "memory.cap").detail, /maximum of 512 pages exceeds the cap of 256 pages/);
});

Deno.test("runConformance() without a manifest runs every Extism-shaped export once on empty input", async () => {
  const report = await runConformance(await examplePlugin("hello"));
  // fib refuses an empty input with an error of its own: only its manifest's samples make hello conformant.
  assertOutcome(report, ["exports.run"], ["describe.matches"]);
  assert.equal(check(report, "exports.declared").detail, "no manifest: nothing declared");
  assert.match(check(report, "exports.run").detail, /^"fib" on empty input failed: PluginReportedError: /);
  assert.equal(report.plugin, "plugin");
});
