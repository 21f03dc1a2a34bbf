// exports.run exercises the plugin: Extism's own loop-forever and fail
// plugins (as WAT), with and without a manifest naming the export, start code
// that is never run as a call, and samples that expect an error.
import assert from "node:assert/strict";
import { examplePlugin, watFixture } from "../../tests/_test_utils.ts";
import { parseManifest } from "../registry/mod.ts";
import { type Check, type ConformanceReport, runConformance } from "./run_conformance.ts";

function check(report: ConformanceReport, id: string): Check {
  const found = report.checks.find((c) => c.id === id);
  assert.ok(found, `no check "${id}"`);
  return found;
}

/** The ids of the checks that failed. */
function failed(report: ConformanceReport): string[] {
  return report.checks.filter((c) => !c.passed && !c.skipped).map((c) => c.id);
}

Deno.test("runConformance() fails Extism's loop-forever at its deadline, without a manifest", async () => {
  const report = await runConformance(await watFixture("extism_loop_forever"), { limits: { deadlineMs: 200 } });
  assert.equal(report.passed, false);
  assert.deepEqual(failed(report), ["exports.run"]);
  assert.match(check(report, "exports.run").detail, /^"loop" on empty input failed: PluginDeadlineError: .*200 ms/);
});

Deno.test("runConformance() fails Extism's loop-forever when the manifest names the export without samples", async () => {
  const manifest = parseManifest("name: loop-forever\nexports: [loop]\n", "loop.yaml");
  const report = await runConformance(await watFixture("extism_loop_forever"), {
    manifest,
    limits: { deadlineMs: 200 },
  });
  assert.deepEqual(failed(report), ["exports.run"]);
  assert.match(check(report, "exports.run").detail, /^"loop" on empty input failed: PluginDeadlineError/);
});

Deno.test("runConformance() fails Extism's fail plugin on its reported error, with and without a manifest", async () => {
  const wasm = await watFixture("extism_fail");
  for (const manifest of [undefined, parseManifest("name: fail\nexports: [run_test]\n", "fail.yaml")]) {
    const report = await runConformance(wasm, manifest ? { manifest } : {});
    assert.deepEqual(failed(report), ["exports.run"], JSON.stringify(report.checks));
    assert.match(
      check(report, "exports.run").detail,
      /^"run_test" on empty input failed: PluginReportedError: .*Some error message/,
    );
  }
});

Deno.test("runConformance() passes an error the manifest expects, and fails a return it does not", async () => {
  const fail = parseManifest(
    "name: fail\nexports:\n  - { name: run_test, samples: [{ input: '', expect: error }] }\n",
    "fail.yaml",
  );
  const expected = await runConformance(await watFixture("extism_fail"), { manifest: fail });
  assert.equal(expected.passed, true, JSON.stringify(expected.checks));
  assert.match(check(expected, "exports.run").detail, /failed as the manifest expects: "run_test" on empty input/);

  const greet = parseManifest(
    "name: hello\nversion: 1.0.0\nexports:\n  - { name: greet, samples: [{ input: x, expect: error }] }\n",
    "hello.yaml",
  );
  const returned = await runConformance(await examplePlugin("hello"), { manifest: greet });
  assert.ok(failed(returned).includes("exports.run"));
  assert.match(check(returned, "exports.run").detail, /"greet" on "x" returned, but the manifest expects an error/);
});

Deno.test("runConformance() never runs a deadline as an expected error", async () => {
  const manifest = parseManifest(
    "name: loop-forever\nexports:\n  - { name: loop, samples: [{ input: '', expect: error }] }\n",
    "loop.yaml",
  );
  const report = await runConformance(await watFixture("extism_loop_forever"), {
    manifest,
    limits: { deadlineMs: 200 },
  });
  assert.deepEqual(failed(report), ["exports.run"]);
  assert.match(check(report, "exports.run").detail, /PluginDeadlineError/);
});

Deno.test("runConformance() without a manifest runs no start code as a call", async () => {
  const reactor = await runConformance(await watFixture("ghc_reactor"));
  // Its start code's WASI calls are its footprint (undeclared without a manifest); only "ready" is a call.
  assert.ok(!failed(reactor).includes("exports.run"), JSON.stringify(reactor.checks));
  assert.equal(
    check(reactor, "exports.run").detail,
    'Ran 1 call ("ready") without trapping, within deadline and memory',
  );
  const command = await runConformance(await watFixture("wasi_command_exit"));
  assert.equal(command.passed, true, JSON.stringify(command.checks));
  assert.match(check(command, "exports.run").detail, /^No export of Extism's shape \(\(\) -> i32\) to run/);
});
