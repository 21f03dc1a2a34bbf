// --grants: the plugin runs under the base policies plus its manifest's
// compiled grants, in the same sandbox; the privileges check asks that every
// attempted operation was permitted.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { denoCommand, examplePlugin, watFixture } from "../../tests/_test_utils.ts";
import { compileWat } from "../../tests/_wat.ts";
import { parseManifest } from "../registry/mod.ts";
import { formatReport } from "./format_report.ts";
import { type Check, type ConformanceReport, runConformance } from "./run_conformance.ts";

const ROOT = new URL("../../", import.meta.url);

function check(report: ConformanceReport, id: string): Check {
  const found = report.checks.find((c) => c.id === id);
  assert.ok(found, `no check "${id}" in ${report.checks.map((c) => c.id).join(", ")}`);
  return found;
}

Deno.test("runConformance() with grants runs stamp under its grants: every attempt permitted", async () => {
  const manifest = parseManifest(await Deno.readTextFile(new URL("plugins/stamp/plugin.yaml", ROOT)), "stamp.yaml");
  const report = await runConformance(await examplePlugin("stamp"), { manifest, grants: true });
  assert.equal(report.passed, true, JSON.stringify(report.checks.filter((c) => !c.passed)));
  assert.equal(report.grants, "grants");
  assert.deepEqual(report.checks.map((c) => c.id), [
    "module.valid",
    "imports.known",
    "memory.cap",
    "exports.declared",
    "instantiate.grants",
    "exports.run",
    "privileges.granted",
    "capabilities.declared",
    "describe.matches",
  ]);
  assert.match(check(report, "privileges.granted").detail, /^All \d+ host calls were permitted by its grants$/);
  // With its kv grant, kv_counter goes on to kv.set; the sample file is permitted and absent.
  const actions = new Set(report.footprint.map((e) => e.action));
  assert.ok(actions.has("kv.set"), JSON.stringify(report.footprint));
  assert.ok(report.footprint.every((e) => e.allowed === e.count));
  assert.match(formatReport(report, "text"), /footprint \(host calls attempted under its grants\):/);
});

Deno.test("runConformance() with grants fails privileges.granted for an attempt its grants do not permit", async () => {
  const manifest = parseManifest(
    await Deno.readTextFile(new URL("tests/testdata/conform_undeclared.yaml", ROOT)),
    "undeclared.yaml",
  );
  const report = await runConformance(await watFixture("conform_undeclared"), { manifest, grants: true });
  assert.equal(report.passed, false);
  const { passed, detail } = check(report, "privileges.granted");
  assert.equal(passed, false);
  assert.equal(detail, '1 host call was denied: its grants do not permit env.get EnvVar::"undeclared/REGION"');
});

Deno.test("runConformance() with grants passes a plugin whose HTTP call its grants permit (no name resolves)", async () => {
  const manifest = parseManifest(
    [
      "name: fetcher",
      "version: 1.0.0",
      "exports:",
      `  - { name: http_request, samples: ['{"url":"https://api.example.com/items?x=1","method":"GET"}'] }`,
      "capabilities: [http.request]",
      "grants:",
      "  - http.request: { host: api.example.com, methods: [GET] }",
    ].join("\n"),
    "fetcher.yaml",
  );
  const report = await runConformance(await watFixture("relay"), { manifest, grants: true });
  assert.equal(check(report, "privileges.granted").passed, true, check(report, "privileges.granted").detail);
  const http = report.footprint.filter((e) => e.action === "http.request");
  assert.equal(http.length, 1, JSON.stringify(report.footprint));
  assert.equal(http[0]!.allowed, http[0]!.count, "decided by name, permitted; nothing resolved or contacted");
  // Under the empty grant the same call is denied by name, before any lookup.
  const empty = await runConformance(await watFixture("relay"), { manifest });
  assert.equal(check(empty, "privileges.none").passed, true, check(empty, "privileges.none").detail);
});

Deno.test("runConformance() reports the limits the manifest asks for, in JSON and text", async () => {
  const manifest = parseManifest(
    "name: hello\nversion: 1.0.0\nexports: [{ name: greet, samples: [x] }]\nlimits: { deadlineMs: 250, memoryPages: 32 }\n",
    "hello.yaml",
  );
  const report = await runConformance(await examplePlugin("hello"), { manifest });
  assert.deepEqual(report.requestedLimits, { deadlineMs: 250, memoryPages: 32 });
  assert.deepEqual(JSON.parse(formatReport(report, "json")).requestedLimits, { deadlineMs: 250, memoryPages: 32 });
  assert.match(formatReport(report, "text"), /^limits asked for: deadlineMs 250, memoryPages 32$/m);
  assert.match(
    formatReport(report, "junit"),
    /<property name="requestedLimits" value="deadlineMs 250, memoryPages 32"\/>/,
  );
});

Deno.test({
  name: "runConformance() writes only under tempDir, and reads no policies when given them",
  ignore: denoCommand === undefined,
}, async () => {
  const tmp = await Deno.makeTempDir({ prefix: "keycard-conform-perm-" });
  try {
    const manifest = parseManifest(await Deno.readTextFile(new URL("plugins/stamp/plugin.yaml", ROOT)), "stamp.yaml");
    const wasm = `${tmp}/stamp.wasm`;
    await Deno.writeFile(wasm, await examplePlugin("stamp"));
    const [schema, base] = await Promise.all([
      Deno.readTextFile(new URL("policies/keycard.cedarschema", ROOT)),
      Deno.readTextFile(new URL("policies/base.cedar", ROOT)),
    ]);
    const input = `${tmp}/input.json`;
    await Deno.writeTextFile(
      input,
      JSON.stringify({ manifest, schema, policies: [{ name: "base.cedar", text: base }] }),
    );
    // The child may read only its input and the code, and write only under the temp dir it passes.
    const script = `
      import { runConformance } from ${JSON.stringify(new URL("src/conformance/mod.ts", ROOT).href)};
      const { manifest, schema, policies } = JSON.parse(await Deno.readTextFile(${JSON.stringify(input)}));
      const wasm = await Deno.readFile(${JSON.stringify(wasm)});
      const report = await runConformance(wasm, { manifest, schema, policies, tempDir: ${
      JSON.stringify(`${tmp}/work`)
    } });
      const granted = await runConformance(wasm, { manifest, schema, policies, grants: true, tempDir: ${
      JSON.stringify(`${tmp}/work`)
    } });
      console.log(JSON.stringify([report.passed, granted.passed, report.checks.filter((c) => !c.passed && !c.skipped)]));
    `;
    const output = await new Deno.Command(denoCommand!, {
      args: [
        "eval",
        `--config=${fileURLToPath(new URL("deno.json", ROOT))}`,
        `--allow-read=${tmp}`,
        `--allow-write=${tmp}/work`,
        "--v8-flags=--wasm-max-mem-pages=16384,--expose-gc",
        script,
      ],
      cwd: tmp,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, stderr);
    assert.deepEqual(JSON.parse(new TextDecoder().decode(output.stdout)), [true, true, []]);
    // Each run's data root and key-value store were made under tempDir and removed after.
    assert.deepEqual([...Deno.readDirSync(`${tmp}/work`)], []);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("runConformance() counts every host call in the footprint, those refused past the hostCalls cap too", async () => {
  const wasm = await compileWat(`(module
    (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
    (import "extism:host/env" "free" (func $free (param i64)))
    (import "extism:host/user" "keycard_clock_now" (func $now (param i64) (result i64)))
    (memory (export "memory") 1)
    (func (export "twenty") (result i32) (local $i i32) (local $request i64)
      (local.set $request (call $alloc (i64.const 0)))
      (loop $more
        (call $free (call $now (local.get $request)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $more (i32.lt_u (local.get $i) (i32.const 20))))
      (i32.const 0)))`);
  const manifest = parseManifest("name: twenty\nexports: [{ name: twenty }]\ncapabilities: [clock.now]\n", "t.yaml");
  const report = await runConformance(wasm, { manifest, limits: { hostCalls: 5 } });
  // 5 decided by Cedar on Runtime::"clock", 15 refused by the runtime before any request was read.
  assert.deepEqual(
    report.footprint.map(({ action, resource, count, allowed }) => ({ action, resource, count, allowed })),
    [
      { action: "clock.now", resource: 'Runtime::"clock"', count: 5, allowed: 0 },
      { action: "clock.now", resource: "(unresolved)", count: 15, allowed: 0 },
    ],
  );
  assert.match(check(report, "privileges.none").detail, /20 host call attempts were denied/);
});
