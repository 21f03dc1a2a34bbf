// `deno task policy test | validate | explain | compile` as a user runs them: subprocesses in the checkout, with a
// keycard.yaml, a copy of policies/ and a data dir in a temp dir outside it. The first test gates the shipped
// policies: every case of policies/tests/ must pass against the shipped keycard.yaml.
import assert from "node:assert/strict";
import { join } from "node:path";
import { examplePlugin } from "../_test_utils.ts";
import { FileStore, parseManifest, Registry } from "../../src/registry/mod.ts";
import { makeSite, REPO, Run } from "./_server.ts";

/** Runs `deno task policy ...` to its end (bounded) and returns its exit code and output. */
async function policy(args: string[], env: Record<string, string> = {}) {
  await using command = new Run(["task", "policy", ...args], env);
  const status = await command.exit(60_000);
  const stderr = command.stderr.lines.filter((line) => line !== "" && !line.startsWith("Task ")).join("\n");
  return { code: status.code, stdout: command.stdout.text(), stderr, output: command.output() };
}

/** The elements of an XML document, checked for well-formedness (nesting, quoting, escapes) on the way. */
function parseXml(text: string): { name: string; attrs: Record<string, string> }[] {
  const body = text.replace(/^<\?xml [^?]*\?>\n/, "").replace(/<!--[\s\S]*?-->/g, "");
  const elements: { name: string; attrs: Record<string, string> }[] = [];
  const open: string[] = [];
  const token = /<(\/?)([A-Za-z_][\w.-]*)((?:\s+[A-Za-z_][\w.-]*="[^"<]*")*)\s*(\/?)>|([^<]+)/gy;
  const entity = /&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/;
  let match: RegExpExecArray | null;
  let at = 0;
  while (at < body.length && (match = token.exec(body)) !== null) {
    at = token.lastIndex;
    const [, closing, name, attrText, selfClosing, textNode] = match;
    if (textNode !== undefined) {
      assert.doesNotMatch(textNode, entity, "a bare & in text");
      if (open.length === 0) assert.match(textNode, /^\s*$/, "text outside the root element");
      continue;
    }
    if (closing) {
      assert.equal(open.pop(), name, `</${name}> closes another element`);
      continue;
    }
    const attrs: Record<string, string> = {};
    for (const [, key, value] of (attrText ?? "").matchAll(/([A-Za-z_][\w.-]*)="([^"]*)"/g)) {
      assert.doesNotMatch(value!, entity, `a bare & in ${key}`);
      attrs[key!] = value!;
    }
    elements.push({ name: name!, attrs });
    if (!selfClosing) open.push(name!);
  }
  assert.equal(at, body.length, `not XML at offset ${at}: ${body.slice(at, at + 40)}`);
  assert.deepEqual(open, [], "unclosed elements");
  return elements;
}

Deno.test("deno task policy test passes every case of policies/tests/ against the shipped keycard.yaml", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "keycard-e2e-policy-gate-" });
  try {
    // The shipped config, with an empty data dir so that nothing a developer installed locally counts.
    const result = await policy(["test"], { KEYCARD_DATA_DIR: dataDir });
    assert.equal(result.code, 0, result.output);
    assert.match(result.stdout, /^ok: \d+ passed, 0 failed \(\d+ cases in \d+ files\)$/m);
    assert.doesNotMatch(result.stdout, /^FAIL /m);
    assert.match(result.stdout, /^Coverage: (\d+) of \1 policies decided a case$/m, "every shipped policy is tested");
    assert.match(result.stdout, /grants of 5 plugin\(s\) \(header-guard 1\.0\.0, hello 1\.0\.0, quoter/);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("deno task policy test, validate, explain and compile on an operator's site", async (t) => {
  await using site = await makeSite();
  const config = site.configPath;
  const file = (name: string, text: string) =>
    Deno.writeTextFile(join(site.dir, name), text).then(() => join(site.dir, name));
  const passing = await file(
    "stamp.yaml",
    [
      "tests:",
      "  - name: stamp reads its data dir",
      "    plugin: stamp",
      "    fs.read: data/stamp/hello.txt",
      "    expect: allow",
      "    policies: [grant.stamp.5]",
      "  - name: stamp cannot read /etc/passwd",
      "    plugin: stamp",
      "    fs.read: /etc/passwd",
      "    expect: deny",
      "  - name: stamp cannot reach the metadata address",
      "    plugin: stamp",
      "    http.request: http://169.254.169.254/latest/meta-data/",
      "    expect: deny",
      "    policies: [base.http.private-addresses]",
      "",
    ].join("\n"),
  );

  await t.step("a passing file exits 0 and reports coverage", async () => {
    const result = await policy(["test", passing, "--config", config]);
    assert.equal(result.code, 0, result.output);
    assert.match(
      result.stdout,
      /^ok {3}\S*\/stamp\.yaml:2 stamp reads its data dir: allow \(permitted by grant\.stamp\.5\)$/m,
    );
    assert.match(result.stdout, /^Coverage: 2 of 9 policies decided a case$/m);
    assert.match(result.stdout, /^ {4}api\.admin \(permit, api\.cedar:\d+\)$/m);
    assert.match(result.stdout, /^ok: 3 passed, 0 failed \(3 cases in 1 file\)$/m);
  });

  await t.step("a failing case exits 1 naming the case, the expected and actual decision and policies", async () => {
    const failing = await file(
      "failing.yaml",
      "tests:\n  - name: stamp may write\n    plugin: stamp\n    fs.write: data/stamp/x\n    expect: allow\n" +
        "  - name: clock by the wrong grant\n    plugin: stamp\n    clock.now:\n    expect: allow\n    policies: [grant.stamp.2]\n",
    );
    const result = await policy(["test", failing, "--config", config]);
    assert.equal(result.code, 1, result.output);
    assert.match(
      result.stdout,
      /^FAIL \S*\/failing\.yaml:2 stamp may write: expected allow, got deny \(denied by default\)$/m,
    );
    assert.match(
      result.stdout,
      /^FAIL \S*\/failing\.yaml:6 clock by the wrong grant: expected deciding policies \[grant\.stamp\.2\], got \[grant\.stamp\.1\]$/m,
    );
    assert.match(result.stdout, /^FAILED: 0 passed, 2 failed/m);
  });

  await t.step("a malformed file exits 2 with its file and line, and runs nothing", async () => {
    const bad = await file(
      "bad.yaml",
      "tests:\n  - name: typo\n    plugin: stamp\n    fs.reed: a.txt\n    expect: deny\n",
    );
    const result = await policy(["test", passing, bad, "--config", config]);
    assert.equal(result.code, 2, result.output);
    assert.match(
      result.stderr,
      /Invalid policy test file ".*bad\.yaml" at line 4, column 5: case "typo": "tests\[0\]\.fs\.reed" is not a known key/,
    );
    assert.equal(result.stdout, "");
  });

  await t.step("--format junit --out FILE writes XML with the right counts", async () => {
    const out = join(site.dir, "reports", "policy.xml");
    const failing = join(site.dir, "failing.yaml");
    const result = await policy(["test", passing, failing, "--config", config, "--format", "junit", "--out", out]);
    assert.equal(result.code, 1, result.output);
    assert.equal(result.stdout, "");
    const elements = parseXml(await Deno.readTextFile(out));
    const root = elements.find((e) => e.name === "testsuites")!;
    assert.deepEqual([root.attrs.tests, root.attrs.failures], ["5", "2"]);
    assert.deepEqual(
      elements.filter((e) => e.name === "testsuite").map((e) => [e.attrs.name, e.attrs.tests, e.attrs.failures]),
      [[passing, "3", "0"], [failing, "2", "2"]],
    );
    assert.equal(elements.filter((e) => e.name === "testcase").length, 5);
    assert.equal(elements.filter((e) => e.name === "failure").length, 2);
  });

  await t.step("--format json, and Cedar run-tests JSON files run as they are", async () => {
    const cedar = await file(
      "run-tests.json",
      JSON.stringify([{
        name: "stamp reads",
        request: {
          principal: 'Plugin::"stamp"',
          action: 'Action::"fs.read"',
          resource: 'File::"/data/stamp/a"',
          context: {},
        },
        entities: [{
          uid: { type: "File", id: "/data/stamp/a" },
          attrs: {},
          parents: [{ type: "Dir", id: "/data/stamp" }],
        }],
        decision: "allow",
        reason: ["grant.stamp.5"],
        num_errors: 0,
      }, {
        request: {
          principal: 'Plugin::"stamp"',
          action: 'Action::"fs.read"',
          resource: 'File::"/data/stamp/a"',
          context: {},
        },
        entities: [],
        decision: "allow",
        reason: [],
        num_errors: 0,
      }]),
    );
    const result = await policy(["test", cedar, "--config", config, "--format", "json"]);
    assert.equal(result.code, 1, result.output);
    const report = JSON.parse(result.stdout);
    assert.deepEqual(report.results.map((r: { name: string; passed: boolean }) => [r.name, r.passed]), [
      ["stamp reads", true],
      ["(unnamed 2)", false],
    ]);
    assert.match(report.results[1].failure, /expected allow, got deny/);
  });

  await t.step("--policies DIR tests another policy set with the config's grants", async () => {
    const candidate = join(site.dir, "candidate");
    await Deno.mkdir(candidate);
    await Deno.writeTextFile(
      join(candidate, "ops.cedar"),
      '@id("ops.no-stamp-files")\nforbid (principal == Plugin::"stamp", action == Action::"fs.read", resource);\n',
    );
    const result = await policy(["test", passing, "--config", config, "--policies", candidate]);
    assert.equal(result.code, 1, result.output);
    assert.match(
      result.stdout,
      /^FAIL \S*\/stamp\.yaml:2 stamp reads its data dir: expected allow, got deny \(forbidden by ops\.no-stamp-files\)$/m,
    );
    assert.match(
      result.stdout,
      /^FAIL \S*\/stamp\.yaml:11 stamp cannot reach the metadata address: expected deciding policies/m,
    );
  });

  await t.step("a plugin installed in the data dir has its grants in force by default", async () => {
    const tests = await file(
      "fetch.yaml",
      "tests:\n  - name: fetch calls its API\n    plugin: fetch\n    http.request: https://api.example.com/v1\n" +
        "    ip: 93.184.215.14\n    expect: allow\n    policies: [grant.fetch.1]\n",
    );
    assert.equal((await policy(["test", tests, "--config", config])).code, 1, "not installed yet: denied");
    const manifest = parseManifest(
      "name: fetch\nversion: 1.0.0\ngrants:\n  - http.request: { host: api.example.com, scheme: https }\n",
      "plugin.yaml",
    );
    // The gateway installs into this registry the same way.
    await new Registry(new FileStore(site.dataDir)).install(await examplePlugin("hello"), manifest);
    const result = await policy(["test", tests, "--config", config]);
    assert.equal(result.code, 0, result.output);
    assert.match(result.stdout, /grants of 6 plugin\(s\) \(fetch 1\.0\.0, /);
  });

  await t.step("validate: exit 0 for the policies in force, 1 with file:line:column for an invalid one", async () => {
    const ok = await policy(["validate", "--config", config]);
    assert.equal(ok.code, 0, ok.output);
    assert.match(ok.stdout, /^valid: \d+ policies from 2 policy files in .* and the grants of 6 plugins/m);
    const broken = join(site.dir, "broken");
    await Deno.mkdir(broken);
    await Deno.writeTextFile(
      join(broken, "ops.cedar"),
      '// ops\n@id("ops.typo")\npermit (principal, action == Action::"fs.read", resource)\nwhen { resource.nmae == "x" };\n',
    );
    const bad = await policy(["validate", broken, "--config", config]);
    assert.equal(bad.code, 1, bad.output);
    assert.match(bad.stdout, /^.*broken\/ops\.cedar:\d+:\d+: .*nmae/m);
    assert.match(bad.stdout, /^INVALID: 2 problem\(s\) in 1 policy file in /m);
    const missing = await policy(["validate", join(site.dir, "nope"), "--config", config]);
    assert.equal(missing.code, 2, missing.output);
    assert.match(missing.stderr, /Cannot read policies directory ".*nope": no such directory/);
  });

  await t.step("explain prints the decision and the deciding policy's source, line and text", async () => {
    const request = await file("request.yaml", "plugin: stamp\nhttp.request: http://[::ffff:169.254.169.254]/\n");
    const result = await policy(["explain", request, "--config", config]);
    assert.equal(result.code, 0, result.output);
    assert.match(result.stdout, /^Decision: deny \(forbidden by base\.http\.private-addresses\)$/m);
    assert.match(result.stdout, /^ {2}base\.http\.private-addresses \(forbid\) at .*policies\/base\.cedar:15$/m);
    assert.match(result.stdout, /^ {4}forbid \(principal, action == Action::"http\.request", resource\)$/m);
    const grant = await policy([
      "explain",
      await file("r2.yaml", "plugin: stamp\nkv.get: counter\n"),
      "--config",
      config,
    ]);
    assert.match(
      grant.stdout,
      /^ {2}grant\.stamp\.4 \(permit\) at grants\/stamp \(from .*plugins\/stamp\/plugin\.yaml\):\d+$/m,
    );
    const bad = await policy(["explain", await file("r3.yaml", "plugin: stamp\n"), "--config", config]);
    assert.equal(bad.code, 2, bad.output);
    assert.match(bad.stderr, /Invalid request file ".*r3\.yaml".*a host call needs one of fs\.read/);
  });

  await t.step("compile prints a manifest's Cedar; an invalid manifest exits 2", async () => {
    const result = await policy(["compile", join(REPO, "plugins", "stamp", "plugin.yaml")]);
    assert.equal(result.code, 0, result.output);
    assert.match(result.stdout, /^@id\("grant\.stamp\.5"\)\npermit \(\n {2}principal == Plugin::"stamp",/m);
    const bad = await file("bad-plugin.yaml", "name: bad\ngrants:\n  - fs.rm: { dir: x }\n");
    const refused = await policy(["compile", bad]);
    assert.equal(refused.code, 2, refused.output);
    assert.match(refused.stderr, /bad-plugin\.yaml/);
    assert.match(refused.stderr, /fs\.rm/);
  });
});
