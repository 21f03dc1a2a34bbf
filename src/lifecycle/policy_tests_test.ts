import assert from "node:assert/strict";
import { join } from "node:path";
import { parse as parseYamlText } from "yaml";
import { compileGrants, PolicyEngine } from "../policy/mod.ts";
import { buildRequests, checkRequestSpec, type RequestSpec } from "./_request_spec.ts";
import {
  formatPolicyTestReport,
  loadPolicyTests,
  parsePolicyTests,
  PolicyTestError,
  runPolicyTests,
} from "./policy_tests.ts";

const policies = new URL("../../policies/", import.meta.url);
const schema = await Deno.readTextFile(new URL("keycard.cedarschema", policies));
const base = await Deno.readTextFile(new URL("base.cedar", policies));
const GRANTS = [
  { "clock.now": {} },
  { "kv": { namespace: "stamp" } },
  { "fs.read": { dir: "./data/stamp" } },
  { "http.request": { host: "api.example.com", methods: ["GET"] } },
  { "http.request": { host: "10.0.0.5", port: 8443 } },
  { "env.get": { names: ["REGION"] } },
];
const engine = await PolicyEngine.create({
  schema,
  sources: [{ name: "base.cedar", text: base }, { name: "grants/fetch", text: compileGrants("fetch", GRANTS) }],
});
const plugins = new Map([["fetch", { version: "2.1.0", sha256: "ab".repeat(32) }]]);

async function rejects(text: string, file: string, pattern: RegExp, line?: number): Promise<void> {
  await assert.rejects(parsePolicyTests(text, file), (error: unknown) => {
    assert.ok(error instanceof PolicyTestError, String(error));
    assert.match(error.message, pattern);
    assert.equal(error.file, file);
    if (line !== undefined) assert.equal(error.line, line, error.message);
    return true;
  });
}

/** The requests a YAML request builds. */
function requests(yaml: string) {
  const spec = parseYamlText(yaml) as RequestSpec;
  assert.equal(checkRequestSpec(spec), undefined);
  return buildRequests(spec, engine, plugins);
}

Deno.test("parsePolicyTests() refuses malformed cases naming the file, line and case", async () => {
  const head = "tests:\n  - name: ok\n    plugin: fetch\n    clock.now:\n    expect: allow\n";
  await rejects("tests: [\n", "a.yaml", /not valid YAML/);
  await rejects("tests:\n", "a.yaml", /has no tests/);
  await rejects(
    `${head}  - name: typo\n    plugin: fetch\n    clock.now:\n    expect: deny\n    expct: allow\n`,
    "a.yaml",
    /case "typo".*expct.*is not a known key/,
    10,
  );
  await rejects(
    `${head}  - name: no expect\n    plugin: fetch\n    clock.now:\n`,
    "a.yaml",
    /case "no expect".*expect.*allow or deny/,
    6,
  );
  await rejects(
    `${head}  - name: maybe\n    plugin: fetch\n    clock.now:\n    expect: maybe\n`,
    "a.yaml",
    /expected allow or deny, got "maybe"/,
    9,
  );
  await rejects(
    `${head}  - name: ok\n    plugin: fetch\n    clock.now:\n    expect: deny\n`,
    "a.yaml",
    /case "ok": the name is used by another case/,
    6,
  );
  await rejects(
    `${head}  - name: both\n    plugin: fetch\n    principal: Plugin::"fetch"\n    action: fs.read\n    resource: File::"/a"\n    expect: deny\n`,
    "a.yaml",
    /case "both": mixes a Cedar request .* with a host call/,
    7,
  );
  await rejects(
    `${head}  - name: two calls\n    plugin: fetch\n    clock.now:\n    random.get:\n    expect: deny\n`,
    "a.yaml",
    /one call, got clock.now and random.get/,
    9,
  );
  await rejects(`${head}  - name: no call\n    plugin: fetch\n    expect: deny\n`, "a.yaml", /needs one of fs.read/, 6);
  await rejects(`${head}  - name: nothing\n    expect: deny\n`, "a.yaml", /needs a host call .* or a Cedar request/, 6);
  await rejects(
    `${head}  - name: ip for kv\n    plugin: fetch\n    kv.get: a\n    ip: 10.0.0.1\n    expect: deny\n`,
    "a.yaml",
    /"ip" belongs to an http.request call/,
    9,
  );
  await rejects(
    `${head}  - name: bad ip\n    plugin: fetch\n    http.request: https://x.example/\n    ip: ten\n    expect: deny\n`,
    "a.yaml",
    /"ip" expected an IP address, got "ten"/,
    9,
  );
  await rejects(
    `${head}  - name: bad principal\n    principal: alice\n    action: fs.read\n    resource: File::"/a"\n    expect: deny\n`,
    "a.yaml",
    /Cannot read entity "alice": expected Type::"id"/,
    7,
  );
  await rejects(
    `${head}  - name: half\n    principal: Plugin::"fetch"\n    action: fs.read\n    expect: deny\n`,
    "a.yaml",
    /a Cedar request needs "resource"/,
    6,
  );
  await rejects(
    `${head}  - name: bad plugin\n    plugin: .hidden\n    clock.now:\n    expect: deny\n`,
    "a.yaml",
    /case "bad plugin":/,
    7,
  );
});

Deno.test("parsePolicyTests() reads a Cedar run-tests file and refuses a malformed one with its line", async () => {
  const ok = JSON.stringify([{
    request: { principal: 'Plugin::"fetch"', action: 'Action::"clock.now"', resource: 'Runtime::"clock"', context: {} },
    entities: [],
    decision: "allow",
    reason: ["grant.fetch.1"],
    num_errors: 0,
  }]);
  const { cases } = await parsePolicyTests(ok, "t.json");
  assert.equal(cases[0]?.name, "(unnamed 1)");
  assert.equal(cases[0]?.format, "cedar");
  await rejects(
    '[\n  {\n    "request": { "principal": "nope", "action": "Action::\\"a\\"", "resource": "R::\\"r\\"" },\n' +
      '    "entities": [], "decision": "deny", "reason": [], "num_errors": 0\n  }\n]\n',
    "t.json",
    /case "\(unnamed 1\)": Cannot read entity "nope"/,
    3,
  );
  await rejects('[{ "request": {}, "entities": [], "decision": "deny", "reason": [] }]', "t.json", /num_errors/);
  await rejects('{"tests": []}', "t.json", /a run-tests file is a JSON list of test cases/);
});

Deno.test("buildRequests() makes exactly the Cedar requests keycard's host functions make, for every host call", () => {
  const one = (yaml: string) => {
    const built = requests(yaml);
    assert.ok("requests" in built && built.requests.length === 1, JSON.stringify(built));
    return built.requests[0]!.request;
  };
  const read = one("plugin: fetch\nfs.read: ./data/stamp/../stamp/a.txt\n");
  assert.deepEqual(read.principal.uid, { type: "Plugin", id: "fetch" });
  assert.deepEqual(read.principal.attrs, { name: "fetch", version: "2.1.0", sha256: "ab".repeat(32), tenant: "" });
  assert.equal(read.action, "fs.read");
  assert.deepEqual(read.resource.uid, { type: "File", id: "/data/stamp/a.txt" });
  assert.deepEqual(read.resource.parents.map((p) => p.id), ["/data/stamp", "/data", "/"]);
  assert.deepEqual(read.context, { caller: "" });
  assert.deepEqual(one("plugin: fetch\nfs.write: a.txt\ncaller: app\n").context, { caller: "app" });
  assert.deepEqual(one("plugin: fetch\nfs.list: /data\n").resource.uid, { type: "Dir", id: "/data" });
  assert.deepEqual(one("plugin: fetch\nfs.delete: /x\n").resource.uid, { type: "File", id: "/x" });
  const kv = one("plugin: fetch\nkv.get: counter\n").resource;
  assert.deepEqual([kv.uid.id, kv.parents], ["fetch/fetch/counter", [{ type: "Namespace", id: "fetch/fetch" }]]);
  assert.equal(one("plugin: fetch\nkv.set: stamp/a/b\n").resource.uid.id, "fetch/stamp/a/b");
  assert.equal(one("plugin: fetch\nkv.delete: { namespace: n, key: k }\n").resource.uid.id, "fetch/n/k");
  assert.deepEqual(one("plugin: fetch\nenv.get: REGION\n").resource.uid, { type: "EnvVar", id: "fetch/REGION" });
  const log = one("plugin: fetch\nlog.write: { level: warn, message: héllo }\n");
  assert.deepEqual([log.resource.uid, log.context], [{ type: "Runtime", id: "log" }, {
    caller: "",
    level: "warn",
    bytes: 6,
  }]);
  assert.deepEqual(one("plugin: fetch\nlog.write:\n").context, { caller: "", level: "info", bytes: 0 });
  assert.deepEqual(one("plugin: fetch\nclock.now:\n").resource.uid, { type: "Runtime", id: "clock" });
  assert.deepEqual(one("plugin: fetch\nrandom.get: 8\n").resource.uid, { type: "Runtime", id: "random" });
  const pinned = one("plugin: { name: fetch, version: 9.9.9, sha256: '', tenant: acme }\nclock.now:\n").principal;
  assert.deepEqual(pinned.attrs, { name: "fetch", version: "9.9.9", sha256: "", tenant: "acme" });
  assert.equal(one("plugin: other\nclock.now:\n").principal.attrs.version, "0.0.0");
});

Deno.test("buildRequests() decides HTTP by name, then by the address given, and an address once", () => {
  const named = requests("plugin: fetch\nhttp.request: https://API.example.com/v1?q=1\nmethod: post\nip: 10.0.0.1\n");
  assert.ok("requests" in named);
  assert.deepEqual(named.requests.map((r) => r.phase), ["name", "address"]);
  const [byName, byAddress] = named.requests.map((r) => r.request);
  assert.deepEqual(byName!.resource.uid, { type: "Host", id: "api.example.com:443" });
  assert.equal("ip" in byName!.resource.attrs, false);
  assert.deepEqual(byName!.context, { caller: "", method: "POST", path: "/v1?q=1", hop: 0 });
  assert.deepEqual(byAddress!.resource.attrs.ip, { __extn: { fn: "ip", arg: "10.0.0.1" } });
  const nameOnly = requests("plugin: fetch\nhttp.request: http://api.example.com:8080/\n");
  assert.ok("requests" in nameOnly && nameOnly.requests.length === 1 && nameOnly.note !== undefined);
  const literal = requests("plugin: fetch\nhttp.request: http://[::ffff:10.0.0.5]:8443/\n");
  assert.ok("requests" in literal);
  assert.deepEqual(literal.requests.map((r) => r.phase), ["address"]);
  const host = literal.requests[0]!.request.resource;
  assert.deepEqual([host.uid.id, host.attrs.named], ["10.0.0.5:8443", true], "the grant names this exact address");
  const other = requests("plugin: other\nhttp.request: http://10.0.0.5:8443/\n");
  assert.ok("requests" in other);
  assert.equal(other.requests[0]?.request.resource.attrs.named, false, "another plugin's grant names nothing for it");
  for (
    const refused of [
      "http.request: https://u:p@x.example/",
      "http.request: not a url",
      "fs.read: ../../etc/passwd",
      "kv.get: { namespace: 'a b', key: k }",
      "env.get: 1BAD",
      "log.write: loud",
      "http.request: https://x.example/\nmethod: TRACE",
    ]
  ) {
    const built = requests(`plugin: fetch\n${refused}\n`);
    assert.ok("refused" in built && built.refused.startsWith("refused before policy evaluation: "), refused);
  }
});

Deno.test("runPolicyTests() compares decisions, deciding policies and errors, and reports coverage", async () => {
  const file = await parsePolicyTests(
    [
      "tests:",
      "  - { name: reads, plugin: fetch, fs.read: data/stamp/a.txt, expect: allow, policies: [grant.fetch.3] }",
      "  - { name: metadata, plugin: fetch, http.request: 'http://169.254.169.254/', expect: deny, policies: [base.http.private-addresses] }",
      "  - { name: api by name and address, plugin: fetch, http.request: 'https://api.example.com/', ip: 93.184.215.14, expect: allow }",
      "  - { name: api resolving to private, plugin: fetch, http.request: 'https://api.example.com/', ip: 10.1.1.1, expect: deny, policies: [base.http.private-addresses] }",
      "  - { name: named address lifts the forbid, plugin: fetch, http.request: 'http://10.0.0.5:8443/', expect: allow, policies: [grant.fetch.5] }",
      "  - { name: wrong policies, plugin: fetch, clock.now: null, expect: allow, policies: [grant.fetch.2] }",
      "  - { name: wrong decision, plugin: fetch, env.get: HOME, expect: allow }",
      "  - { name: escapes, plugin: fetch, fs.read: ../x, expect: deny, policies: [] }",
    ].join("\n"),
    "t.yaml",
  );
  const report = runPolicyTests([file], engine, { plugins });
  assert.deepEqual(report.results.map((r) => [r.name, r.passed]), [
    ["reads", true],
    ["metadata", true],
    ["api by name and address", true],
    ["api resolving to private", true],
    ["named address lifts the forbid", true],
    ["wrong policies", false],
    ["wrong decision", false],
    ["escapes", true],
  ]);
  assert.equal(report.results[3]?.actual.phase, "address");
  assert.match(report.results[5]!.failure!, /expected deciding policies \[grant.fetch.2\], got \[grant.fetch.1\]/);
  assert.match(report.results[6]!.failure!, /expected allow, got deny \(denied by default\)/);
  assert.deepEqual([report.passed, report.failed], [6, 2]);
  const decided = Object.fromEntries(report.coverage.map((p) => [p.id, p.decided]));
  assert.deepEqual(decided, {
    "base.http.private-addresses": 2,
    "base.http.schemes": 0,
    "grant.fetch.1": 1,
    "grant.fetch.2": 0,
    "grant.fetch.3": 1,
    "grant.fetch.4": 2,
    "grant.fetch.5": 1,
    "grant.fetch.6": 0,
  });

  const text = formatPolicyTestReport(report, "text");
  assert.match(text, /^FAIL t\.yaml:7 wrong policies: expected deciding policies/m);
  assert.match(text, /^ok {3}t\.yaml:3 metadata: deny \(forbidden by base\.http\.private-addresses, address phase\)$/m);
  assert.match(
    text,
    /Coverage: 5 of 8 policies decided a case\n {2}never decided a case:\n {4}base\.http\.schemes \(forbid, base\.cedar:\d+\)/,
  );
  assert.match(text, /FAILED: 6 passed, 2 failed \(8 cases in 1 file\)\n$/);
  const json = JSON.parse(formatPolicyTestReport(report, "json"));
  assert.deepEqual([json.passed, json.failed, json.results.length, json.coverage.length], [6, 2, 8, 8]);
  const junit = formatPolicyTestReport(report, "junit");
  assert.match(junit, /<testsuites name="keycard policy tests" tests="8" failures="2" errors="0">/);
  assert.match(junit, /<testsuite name="t\.yaml" tests="8" failures="2"/);
  assert.equal(junit.match(/<failure /g)?.length, 2);
});

Deno.test("runPolicyTests() runs Cedar run-tests cases as the Cedar CLI does: reason a subset, errors counted", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const entity = (type: string, id: string, parents: [string, string][] = [], attrs = {}) => ({
      uid: { type, id },
      attrs,
      parents: parents.map(([t, i]) => ({ type: t, id: i })),
    });
    await Deno.writeTextFile(
      join(dir, "entities.json"),
      JSON.stringify([
        entity("File", "/data/stamp/deep/a.txt", [["Dir", "/data/stamp/deep"]]),
        entity("Dir", "/data/stamp/deep", [["Dir", "/data/stamp"]]),
      ]),
    );
    const request = (action: string, resource: string) => ({
      principal: 'Plugin::"fetch"',
      action: `Action::"${action}"`,
      resource,
      context: { caller: "" },
    });
    const cases = [
      // The hierarchy is followed through the entities file: /data/stamp is two levels up.
      {
        name: "via file",
        request: request("fs.read", 'File::"/data/stamp/deep/a.txt"'),
        entities: "entities.json",
        decision: "allow",
        reason: ["grant.fetch.3"],
        num_errors: 0,
      },
      {
        name: "reason is a subset",
        request: request("fs.read", 'File::"/data/stamp/deep/a.txt"'),
        entities: "entities.json",
        decision: "allow",
        reason: [],
        num_errors: 0,
      },
      {
        name: "missing reason",
        request: request("fs.read", 'File::"/data/stamp/deep/a.txt"'),
        entities: "entities.json",
        decision: "allow",
        reason: ["grant.fetch.9"],
        num_errors: 0,
      },
      {
        name: "no hierarchy, no permit",
        request: request("fs.read", 'File::"/data/stamp/deep/a.txt"'),
        entities: [],
        decision: "deny",
        reason: [],
        num_errors: 0,
      },
      // A principal without attributes: no policy reads them, no error.
      {
        name: "errors",
        request: request("clock.now", 'Runtime::"clock"'),
        entities: [],
        decision: "allow",
        reason: [],
        num_errors: 1,
      },
    ];
    await Deno.writeTextFile(join(dir, "t.json"), JSON.stringify(cases, null, 2));
    const { files, problems } = await loadPolicyTests([dir]);
    assert.deepEqual(problems, []);
    const report = runPolicyTests(files, engine, { plugins });
    assert.deepEqual(report.results.map((r) => r.passed), [true, true, false, true, false]);
    assert.match(report.results[2]!.failure!, /missing reason\(s\) \[grant\.fetch\.9\]/);
    assert.match(report.results[4]!.failure!, /expected 1 evaluation error\(s\), got 0/);

    await Deno.mkdir(join(dir, "sub"));
    await Deno.writeTextFile(
      join(dir, "sub", "t.json"),
      JSON.stringify([{ ...cases[0], entities: "../entities.json" }]),
    );
    const outside = await loadPolicyTests([join(dir, "sub", "t.json")]);
    assert.match(outside.problems[0]!.message, /case "via file": entities file "\.\.\/entities\.json" is outside/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadPolicyTests() names a missing path and a directory without test files", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { files, problems } = await loadPolicyTests([join(dir, "nope"), dir]);
    assert.deepEqual(files, []);
    assert.match(problems[0]!.message, /Cannot read policy tests ".*nope": no such file or directory/);
    assert.match(problems[1]!.message, /No policy test files \(\*\.yaml, \*\.yml, \*\.json\) in/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
