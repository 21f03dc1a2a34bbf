// The least grant, proposed by the shipped commands: `deno task conform --propose` as a subprocess (its YAML,
// pasted into a copy of stamp's manifest, makes stamp conformant under --grants), and
// `POST /v1/conformance?propose=true` on a gateway started with `deno task start`.
import assert from "node:assert/strict";
import { join } from "node:path";
import { examplePlugin, pluginForm } from "../_test_utils.ts";
import {
  bearer,
  builtPlugin,
  expectProblem,
  expectStatus,
  listPlugins,
  makeSite,
  pluginDir,
  Run,
  startKeycard,
} from "./_server.ts";

/** Runs a command to its end (bounded) and returns its exit code and output. */
async function run(args: string[]) {
  await using command = new Run(args);
  const status = await command.exit(120_000);
  return { code: status.code, stdout: command.stdout.text(), output: command.output() };
}

const STAMP_WASM = join(pluginDir("stamp"), "build", "plugin.wasm");
const STAMP_YAML = join(pluginDir("stamp"), "plugin.yaml");

/** The `grants:` snippet of a text report's proposal, as a user copies it (the report indents it by two). */
function proposedYaml(stdout: string): string {
  const lines = stdout.split("\n");
  const from = lines.findIndex((line) =>
    /^proposed least grant for \S+ \(from \d+ runs?\), for plugin\.yaml:$/.test(line)
  );
  const to = lines.findIndex((line, i) => i > from && line.startsWith("which compiles to"));
  assert.ok(from >= 0 && to > from, stdout);
  return lines.slice(from + 1, to).map((line) => line.slice(2)).join("\n") + "\n";
}

Deno.test("deno task conform --propose proposes stamp's least grant, which makes stamp conformant under --grants", async () => {
  await examplePlugin("stamp");
  const dir = await Deno.makeTempDir({ prefix: "keycard-e2e-propose-" });
  try {
    const proposed = await run(["task", "conform", STAMP_WASM, "--manifest", STAMP_YAML, "--propose"]);
    assert.equal(proposed.code, 0, proposed.output);
    assert.match(proposed.stdout, /^PASS privileges\.none /m);
    const yaml = proposedYaml(proposed.stdout);
    // Under the empty grant kv_counter stops at its denied kv.get: the run under the proposal sees its kv.set.
    assert.equal(
      yaml,
      [
        "grants:",
        "  - fs.read: { dir: data/stamp } # 1 attempt on /data/stamp/hello.txt",
        "  - kv: { namespace: stamp, actions: [get, set] } # 2 attempts on stamp/counter",
        "  - log.write: {} # 2 attempts",
        "  - clock.now: {} # 2 attempts",
        "  - random.get: {} # 2 attempts",
        "",
      ].join("\n"),
    );
    assert.match(proposed.stdout, /^ {4}resource in Dir::"\/data\/stamp"$/m);
    assert.match(
      proposed.stdout,
      /^warnings \(grants of the manifest wider than what was used\):\n {2}grant 4 \(kv: \{ namespace: stamp \}\) action delete is granted but never used$/m,
    );
    assert.match(proposed.stdout, /stamp 1\.0\.0 is conformant: 9 passed, 0 failed, 0 skipped in \d+ ms$/);

    // The proposal pasted into a copy of stamp's manifest in place of its grants.
    const manifest = await Deno.readTextFile(STAMP_YAML);
    const copy = manifest.replace(/^grants:\n(?: {2}- .*\n)+/m, yaml);
    assert.notEqual(copy, manifest);
    const copyPath = join(dir, "plugin.yaml");
    await Deno.writeTextFile(copyPath, copy);
    const granted = await run(["task", "conform", STAMP_WASM, "--manifest", copyPath, "--grants", "--propose"]);
    assert.equal(granted.code, 0, granted.output);
    assert.match(granted.stdout, /^PASS privileges\.granted +All \d+ host calls were permitted by its grants$/m);
    // Under its least grant, the proposal is the same and nothing is wider than used.
    assert.equal(proposedYaml(granted.stdout), yaml);
    assert.doesNotMatch(granted.stdout, /^warnings/m);

    // JSON: the `proposal` field. JUnit to --out: the proposal in the suite's system-out, and as text on stdout.
    const json = await run(["task", "conform", STAMP_WASM, "--manifest", STAMP_YAML, "--propose", "--format", "json"]);
    assert.equal(json.code, 0, json.output);
    const report = JSON.parse(json.stdout);
    assert.equal(report.proposal.yaml, yaml);
    assert.equal(report.proposal.runs, 3);
    assert.deepEqual(report.proposal.cannotGrant, []);
    assert.deepEqual(report.proposal.warnings, [
      { grant: 4, text: "kv: { namespace: stamp }", message: "action delete is granted but never used" },
    ]);
    const out = join(dir, "conformance.xml");
    const junit = await run([
      "task",
      "conform",
      STAMP_WASM,
      "--manifest",
      STAMP_YAML,
      "--propose",
      "--format",
      "junit",
      "--out",
      out,
    ]);
    assert.equal(junit.code, 0, junit.output);
    assert.equal(proposedYaml(junit.stdout), yaml);
    const xml = await Deno.readTextFile(out);
    assert.equal((xml.match(/<testcase /g) ?? []).length, 9);
    assert.match(xml, /<system-out>[^<]*proposed least grant for stamp \(from 3 runs\)[^<]*<\/system-out>/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("POST /v1/conformance?propose=true answers the report with the proposal; a bad value is a 400", async () => {
  await using site = await makeSite({ plugins: [pluginDir("hello")], routes: [] });
  await using kc = await startKeycard(site);
  const admin = bearer(kc.adminToken);
  const before = await listPlugins(kc);
  const form = async () => pluginForm(await builtPlugin("stamp"), await Deno.readTextFile(STAMP_YAML));

  const response = await kc.fetch("/v1/conformance?propose=true", {
    method: "POST",
    headers: admin,
    body: await form(),
  });
  const report = JSON.parse(await expectStatus(kc, response, 200));
  assert.equal(report.passed, true);
  assert.equal(report.grants, "empty");
  assert.deepEqual(report.proposal.grants, [
    { "fs.read": { dir: "data/stamp" } },
    { kv: { namespace: "stamp", actions: ["get", "set"] } },
    { "log.write": {} },
    { "clock.now": {} },
    { "random.get": {} },
  ]);
  assert.match(
    report.proposal.cedar,
    /@id\("grant\.stamp\.2"\)\npermit \(\n {2}principal == Plugin::"stamp",\n {2}action in \[Action::"kv\.get", Action::"kv\.set"\]/,
  );
  assert.equal(report.proposal.warnings.length, 1);

  const plain = await kc.fetch("/v1/conformance", { method: "POST", headers: admin, body: await form() });
  assert.equal("proposal" in JSON.parse(await expectStatus(kc, plain, 200)), false);

  const bad = await kc.fetch("/v1/conformance?propose=yes", { method: "POST", headers: admin, body: await form() });
  const problem = await expectProblem(bad, 400, "bad-request");
  assert.equal(problem.detail, '"propose" must be "true" or "false", got "yes"');
  assert.deepEqual(await listPlugins(kc), before);
});
